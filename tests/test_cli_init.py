"""`anjian init`, the help of every command, and what an uninitialized database tells the user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from support import snapshot

from anjian.states.campaign import builtin_text
from anjian.workflow.cli import COMMANDS, cli
from anjian.workflow.services.officials import os_login
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Meta, Unit

HEADER = "code,name,level,parent_code,cohorts\n"
SMALL = (HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n"
         + "130821106,高寺台镇,township,130821,provincial_demo\n130821100,下板城镇,township,130821,\n")


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand of `anjian`, e.g. ('init',), ('audit', 'verify')."""
    ctx = click.Context(cli)
    paths: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            paths += [(name, sub) for sub in command.list_commands(ctx)]
    return paths


def contents(db_url: str) -> dict:
    """The unit count, the audit rows and the registry/campaign digests of a loaded database."""
    db = Database(db_url)
    try:
        with db.read() as session:
            return {
                "units": session.scalar(select(func.count()).select_from(Unit)),
                "audit": list(session.execute(select(AuditRow.seq, AuditRow.action, AuditRow.hash)).all()),
                "meta": {m.key: m.value for m in session.scalars(select(Meta))},
            }
    finally:
        db.dispose()


@pytest.fixture
def english(monkeypatch):
    """The messages of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def write_file(tmp_path):
    """A factory: write text (in an encoding) to a file in tmp_path and return its path as a string."""

    def write(text: str, name: str = "registry.csv", encoding: str = "utf-8") -> str:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return str(path)

    return write


def test_root_help_has_an_example():
    """`anjian --help` exits 0, lists every command and shows an example."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "示例：" in result.output  # Chinese by default; the English is checked in test_cli_help
    for name in COMMANDS:
        assert name in result.output


def test_every_command_is_listed_in_the_meta_test():
    """The meta-test below covers every command, including the `audit verify` subcommand."""
    assert ("audit", "verify") in command_paths()
    assert {p[0] for p in command_paths()} == set(COMMANDS)


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    """Each command's `--help` exits 0 and contains an example (示例 in Chinese, the default)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "示例：" in result.output
    assert f"用法：cli {' '.join(path)}" in result.output


def test_root_help_does_not_import_sqlalchemy():
    """`anjian --help` answers without importing SQLAlchemy (or transitions), so it is instant."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from anjian.workflow.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('sqlalchemy' in sys.modules, 'transitions' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_status_on_an_empty_database_says_to_run_init(cli, db_url):
    """`anjian status` on an empty database exits 2 telling the user to run `anjian init`, creating nothing."""
    result = cli("status")
    assert result.exit_code == 2
    assert "anjian init" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_init_loads_the_builtin_registry_and_campaign(cli, db_url):
    """`anjian init` creates the schema, loads 232 units and chengde-2014, and makes this OS account the
    database's admin, saying so."""
    result = cli("init", user=None)
    assert result.exit_code == 0, result.output
    assert "已载入登记册 chengde：232 个单位" in result.output
    assert "已载入工作方案 chengde-2014" in result.output
    assert "市 1、县区 12、乡镇 219" in result.output
    snap = contents(db_url)
    assert snap["units"] == 232
    assert [a[1] for a in snap["audit"]] == ["registry_load", "campaign_load", "user_add"]
    assert f"已将操作系统账户 {os_login()} 设为本数据库的管理员（admin）" in result.output


def test_status_works_after_init(cli):
    """After `anjian init`, `anjian status` exits 0 and shows the campaign."""
    assert cli("init").exit_code == 0
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert "chengde-2014" in result.output


def test_init_twice_changes_nothing_and_says_so(cli, db_url):
    """A second `anjian init` (by the admin, later) exits 0, says nothing changed, and adds no audit row."""
    assert cli("init", user=None).exit_code == 0
    before = snapshot(db_url)
    result = cli("init", now="2015-01-05T10:00", user=None)
    assert result.exit_code == 0, result.output
    assert "无变化" in result.output
    assert "未做任何更改" in result.output
    assert snapshot(db_url) == before


def test_init_with_the_same_builtin_registry_named_changes_nothing(cli, db_url):
    """`anjian init --registry chengde --campaign chengde-2014` on a loaded database changes nothing."""
    assert cli("init", user=None).exit_code == 0
    before = snapshot(db_url)
    result = cli("init", "--registry", "chengde", "--campaign", "chengde-2014", user=None)
    assert result.exit_code == 0, result.output
    assert "未做任何更改" in result.output
    assert snapshot(db_url) == before


def test_init_with_a_custom_registry(cli, db_url, write_file):
    """`anjian init --registry FILE.csv` loads that file's units with one registry_load row."""
    path = write_file(SMALL)
    result = cli("init", "--registry", path)
    assert result.exit_code == 0, result.output
    assert f"已载入登记册 {path}：4 个单位" in result.output
    snap = contents(db_url)
    assert snap["units"] == 4
    assert [a[1] for a in snap["audit"]].count("registry_load") == 1
    assert snap["meta"]["registry_name"] == path


def test_init_with_a_gbk_registry(cli, db_url, write_file):
    """A registry saved as GBK with CRLF (Excel on Chinese Windows) loads through the CLI."""
    result = cli("init", "--registry", write_file(SMALL.replace("\n", "\r\n"), encoding="gbk"))
    assert result.exit_code == 0, result.output
    shown = cli("show", "高寺台镇", "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert '"code": "130821106"' in shown.output


def test_init_with_a_utf8_bom_registry(cli, db_url, write_file):
    """A registry saved as UTF-8 with BOM loads through the CLI."""
    result = cli("init", "--registry", write_file("\ufeff" + SMALL))
    assert result.exit_code == 0, result.output
    assert contents(db_url)["units"] == 4


BAD_FILES = [
    pytest.param(SMALL + "13082X,坏县,county,130800,\n", ["line 6: code '13082X' is not"], id="bad-code"),
    pytest.param(SMALL + "130821,承德县二,county,130800,\n", ["line 6: code 130821 also on line 3"], id="duplicate-code"),
    pytest.param(SMALL + "130822,兴隆县,district,130800,\n", ["line 6: level 'district' is not one of"], id="unknown-level"),
    pytest.param(SMALL + "130899100,某镇,township,130899,\n", ["line 6: parent_code 130899 is not in the file"],
                 id="parent-not-in-file"),
    pytest.param(SMALL + "130822,兴隆县,county,130821106,\n", ["line 6: parent 130821106 is a township, not above a county"],
                 id="parent-of-lower-level"),
    pytest.param(SMALL + "130821101,某镇,township,130821,heroic\n", ["line 6: cohort 'heroic' is not one of"],
                 id="unknown-cohort"),
    pytest.param(SMALL + "130822,兴隆县,county,130800,key\n", ["line 6: only townships carry cohorts"], id="cohort-on-county"),
    pytest.param(SMALL + "130821101,某镇,township\n", ["line 6: 3 fields where the header has 5"], id="too-few-fields"),
    pytest.param(SMALL + "130821101,某镇,township,130821,,x\n", ["line 6: 6 fields where the header has 5"],
                 id="too-many-fields"),
    pytest.param(SMALL.replace("parent_code,", ""), ["line 1: missing column(s) parent_code"], id="missing-column"),
    pytest.param(SMALL.replace("cohorts\n", "cohorts,colour\n", 1), ["line 1: unknown column(s) colour"],
                 id="unknown-column"),
    pytest.param("", ["the file is empty"], id="empty-file"),
    pytest.param(HEADER, ["the file has no units"], id="header-only"),
    pytest.param(SMALL.replace("130800,承德市", '130800,"承德\n市"') + "13082X,坏县,county,130800,\n",
                 ["line 2: name '承德\\n市' contains a line break", "line 7: code '13082X' is not"], id="embedded-newline"),
    pytest.param(SMALL + "13082X,坏县,county,130800,\n130821,重复,county,130800,\n130823,某县,county,130800,heroic\n",
                 ["line 6: code '13082X'", "line 7: code 130821 also on line 3", "line 8: cohort 'heroic'",
                  "line 8: only townships carry cohorts"], id="several-bad-rows"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
@pytest.mark.usefixtures("english")
def test_bad_registry_exits_2_naming_each_bad_line_and_writes_nothing(cli, db_url, write_file, text, expected):
    """A bad registry file exits 2, names every bad row with its line, and leaves the fresh database empty."""
    path = write_file(text)
    result = cli("init", "--registry", path)
    assert result.exit_code == 2, result.output
    assert path in result.output
    for fragment in expected:
        assert fragment in result.output
    assert snapshot(db_url) == {}, "no table at all"


@pytest.mark.usefixtures("english")
def test_bad_row_on_line_9999_of_10000(cli, db_url, write_file):
    """In a generated 10,000-row registry, a bad code on line 9,999 is reported as line 9999; nothing loads."""
    rows = ["130800,承德市,city,130000"] + [f"1308{n},县{n},county,130800" for n in range(21, 31)]
    rows += [f"1308{n}{t:03d},镇{n}{t:03d},township,1308{n}" for n in range(21, 31) for t in range(1, 1000)]
    rows = rows[:10_000]
    rows[9999 - 2] = "1308X,坏镇,township,130821"  # line 1 is the header, line 2 the first row
    result = cli("init", "--registry", write_file("code,name,level,parent_code\n" + "\n".join(rows) + "\n"))
    assert result.exit_code == 2, result.output
    assert "1 bad row(s)" in result.output
    assert "line 9999: code '1308X' is not a 6-, 9- or 12-digit division code" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_directory_as_registry_exits_2(cli, db_url, tmp_path):
    """A directory given as the registry file exits 2 naming it; nothing is created."""
    result = cli("init", "--registry", str(tmp_path))
    assert result.exit_code == 2
    assert f"单位名录文件 {tmp_path} 是文件夹，不是文件" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_missing_registry_file_exits_2(cli, db_url, tmp_path):
    """A registry file that does not exist exits 2 naming it; nothing is created."""
    missing = tmp_path / "nope.csv"
    result = cli("init", "--registry", str(missing))
    assert result.exit_code == 2
    assert f"单位名录文件 {missing} 不存在" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_registry_neither_utf8_nor_gbk_exits_2(cli, db_url, tmp_path):
    """Bytes that are not text are refused with exit 2 and the line of the first bad byte."""
    path = tmp_path / "binary.csv"
    path.write_bytes(HEADER.encode() + b"\xff\xfe\xff\n")
    result = cli("init", "--registry", str(path))
    assert result.exit_code == 2
    assert "第 2 行：不是 UTF-8 或 GBK 文本" in result.output
    assert snapshot(db_url) == {}, "no table at all"


@pytest.mark.usefixtures("english")
def test_different_registry_on_an_initialized_database_is_refused(cli, db_url, write_file):
    """`init --registry OTHER.csv` on a loaded database exits 2 naming the registry loaded; nothing changes."""
    assert cli("init", user=None).exit_code == 0
    before = snapshot(db_url)
    result = cli("init", "--registry", write_file(SMALL), user=None)
    assert result.exit_code == 2, result.output
    assert "already holds the registry chengde" in result.output
    assert snapshot(db_url) == before


def out_of_order_campaign(tmp_path: Path) -> tuple[str, int]:
    """A copy of chengde-2014 with demo_review due before county_demo; its path and the bad line."""
    text = builtin_text("chengde-2014")
    bad = text.replace("deadline = 2015-07-31", "deadline = 2015-01-31", 1)
    assert bad != text
    path = tmp_path / "campaign.toml"
    path.write_text(bad, encoding="utf-8")
    return str(path), bad.splitlines().index("deadline = 2015-01-31") + 1


def test_bad_campaign_on_a_fresh_database_exits_2_with_the_line(cli, db_url, tmp_path):
    """A campaign with out-of-order dates exits 2 naming its line, and the fresh database stays empty."""
    path, line = out_of_order_campaign(tmp_path)
    result = cli("init", "--campaign", path)
    assert result.exit_code == 2
    assert path in result.output
    assert f"line {line}, milestones[3].deadline: 2015-01-31 is before" in result.output
    assert "out of order" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_bad_campaign_on_an_initialized_database_changes_nothing(cli, db_url, tmp_path):
    """A bad campaign given to a loaded database exits 2 and leaves the campaign and audit log as they were."""
    assert cli("init").exit_code == 0
    before = snapshot(db_url)
    path, line = out_of_order_campaign(tmp_path)
    result = cli("init", "--campaign", path)
    assert result.exit_code == 2
    assert f"line {line}," in result.output
    assert snapshot(db_url) == before


def test_missing_campaign_file_exits_2(cli, db_url, tmp_path):
    """A campaign file that does not exist exits 2 naming it."""
    result = cli("init", "--campaign", str(tmp_path / "none.toml"))
    assert result.exit_code == 2
    assert "none.toml 不存在" in result.output
    assert snapshot(db_url) == {}, "no table at all"


def test_the_schema_head_the_cli_expects_is_alembic_s_head():
    """Commands check the schema without importing Alembic; the constant they use must be its head."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from anjian.workflow.store.db import SCHEMA_HEAD

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("anjian.workflow.store") / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_an_older_schema_asks_for_init(chengde, cli):
    """A database left at an older migration is not used as it is: the message says to run init."""
    from sqlalchemy import text

    with chengde.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    r = cli("status")
    assert r.exit_code == 2, r.output
    assert "0002" in r.output and "anjian init" in r.output


# -- nothing is left behind before `init` (issue 13, point 9) ----------------------------------------
@pytest.mark.parametrize("args", [
    ("status",), ("user", "list"), ("contact", "list"), ("notices",), ("remind", "--dry-run"), ("audit", "verify"),
    ("history",), ("record", "宽城县", "x", "1"), ("user", "add", "a", "--role", "admin", "--unit", "承德市"),
])
@pytest.mark.parametrize("url", ["{path}", "sqlite:///{path}", "sqlite:///file:{path}?uri=true"],
                         ids=["path", "url", "file-uri"])
def test_a_command_before_init_creates_no_database(tmp_path, monkeypatch, args, url):
    """Any command but init, run before init, leaves no anjian.db behind and says in Chinese to run init."""
    path = tmp_path / "anjian.db"
    monkeypatch.setenv("ANJIAN_DB", url.format(path=path))
    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "先运行 anjian init" in r.output
    assert not path.exists() and not list(tmp_path.glob("anjian.db*"))


@pytest.mark.parametrize("args", [("--registry", "missing.csv"), ("--campaign", "missing.toml"), ("--registry", "{bad}")],
                         ids=["no-registry-file", "no-campaign-file", "bad-registry"])
def test_a_failed_first_init_leaves_no_database(tmp_path, monkeypatch, args):
    """A first `init` that fails (a missing or bad registry or campaign) removes the database it created:
    the next command is told to run init, not that the database is empty."""
    path = tmp_path / "anjian.db"
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n", encoding="utf-8")
    monkeypatch.setenv("ANJIAN_DB", str(path))
    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["init", *(a.format(bad=bad) for a in args)], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert not list(tmp_path.glob("anjian.db*"))
    assert CliRunner().invoke(cli, ["init"], catch_exceptions=False).exit_code == 0  # and init then works


def test_a_bad_registry_is_named_in_chinese_by_default(cli, tmp_path):
    """Without ANJIAN_LANG a bad registry row is refused in Chinese, naming its line."""
    path = tmp_path / "reg.csv"
    path.write_text(HEADER + "130800,承德市,city,130000,\n130821,承德县,village,130800,\n", encoding="utf-8")
    r = cli("init", "--registry", str(path), user=None)
    assert r.exit_code == 2, r.output
    assert "第 3 行：级别 'village' 不是以下之一" in r.output


def test_a_registry_may_name_levels_and_cohorts_in_chinese(cli, tmp_path):
    """A registry CSV's level and cohorts cells take the Chinese names (市, 县区, 乡镇, 重点) beside the identifiers."""
    path = tmp_path / "reg.csv"
    path.write_text(HEADER + "130800,承德市,市,130000,\n130821,承德县,县区,130800,\n130821106,高寺台镇,乡镇,130821,重点\n",
                    encoding="utf-8")
    r = cli("init", "--registry", str(path), user=None)
    assert r.exit_code == 0, r.output
    units = cli("units", "--format", "json", user=None)
    assert [(u["code"], u["level"], u["cohorts"]) for u in __import__("json").loads(units.output)
            if u["code"] == "130821106"] == [("130821106", "township", ["key"])]
