"""Bad input, tried for real (issue 4, section 6): impossible dates, look-alike and ambiguous names, broken
CSV files, header-injection payloads, template syntax and unusable evidence paths. Each is refused with a
message naming what and where, exit 2, and nothing written — or, where it is only text, kept as text."""

from __future__ import annotations

import email
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.utils import getaddresses
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import Result
from support import TEST_OFFICIALS, add_officials, snapshot

from anjian.workflow.store.db import Database

YUERYA = "130827102"  # 宽城满族自治县峪耳崖镇
GAOSITAI = "130821106"  # 承德县高寺台镇
DAGE = "130826100"  # 丰宁满族自治县大阁镇
AS_ROOT = os.geteuid() == 0  # chmod 000 does not keep root out
UNREADABLE = Path("/proc/self/mem")  # a regular file whose read fails with EIO, even for root
GBK_BYTES = "张三".encode("gbk").decode("utf-8", "surrogateescape")  # typed in a GBK terminal, as argv arrives
TEMPLATE = "{{ 7*7 }}<script>x</script>{% for x in range(10**9) %}"


# -- what "nothing written" means: support.snapshot -----------------------------------------------
@pytest.fixture
def english(monkeypatch):
    """The messages of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def folders(tmp_path, monkeypatch) -> SimpleNamespace:
    """This test's file outbox and evidence store (ANJIAN_OUTBOX, ANJIAN_EVIDENCE)."""
    out = SimpleNamespace(outbox=tmp_path / "outbox", evidence=tmp_path / "evidence")
    monkeypatch.setenv("ANJIAN_OUTBOX", str(out.outbox))
    monkeypatch.setenv("ANJIAN_EVIDENCE", str(out.evidence))
    return out


@pytest.fixture
def untouched(chengde, folders):
    """A context manager asserting that its block leaves every table, the outbox and the evidence store as they were."""

    @contextmanager
    def check(db: Database = chengde) -> Iterator[None]:
        before = snapshot(db, folders.outbox, folders.evidence)
        yield
        assert snapshot(db, folders.outbox, folders.evidence) == before, "a refused command wrote something"

    return check


def refused(r: Result, *words: str, code: int = 2) -> None:
    """The contract's exit code, a message with each of `words`, and no traceback or internal error."""
    assert r.exit_code == code, r.output
    for w in words:
        assert w in r.output, (w, r.output)
    assert "Traceback" not in r.output and "内部错误" not in r.output


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def chengde_registry() -> str:
    return resources.files("anjian.states").joinpath("registries", "chengde.csv").read_text("utf-8")


def big_registry() -> list[str]:
    """The lines of the 承德市 registry followed by about 11,000 made-up townships in its counties."""
    base = chengde_registry().splitlines()
    counties = [line.split(",")[0] for line in base[1:] if ",county," in line]
    taken = {line.split(",")[0] for line in base[1:]}
    return base + [f"{c}{k:03d},试点{c}{k:03d}镇,township,{c}," for c in counties for k in range(1000)
                   if f"{c}{k:03d}" not in taken]


# -- dates ----------------------------------------------------------------------------------------
BAD_TIMES = [
    pytest.param("2015-02-29", "不是真实存在的日期或时间", id="29-feb-non-leap"),
    pytest.param("2015-13-01", "不是真实存在的日期或时间", id="month-13"),
    pytest.param("2015-00-10", "不是真实存在的日期或时间", id="month-0"),
    pytest.param("2015-03-31T24:00", "不是真实存在的日期或时间", id="hour-24"),
    pytest.param("2015-03-31T08:60", "不是真实存在的日期或时间", id="minute-60"),
    pytest.param("２０１５-０３-３１", "不是 ISO 8601 格式", id="full-width-digits"),
    pytest.param("٢٠١٥-٠٣-٣١", "不是 ISO 8601 格式", id="arabic-indic-digits"),
    pytest.param("२०१५-०३-३१", "不是 ISO 8601 格式", id="devanagari-digits"),
    pytest.param("2015-03-31T08:00+25:00", "的时区偏移", id="offset-25h"),
    pytest.param("2015-03-31T08:00+24:00", "的时区偏移", id="offset-24h"),
    pytest.param("2015-03-31T08:00+05:75", "的时区偏移", id="offset-75min"),
    pytest.param("2015-03-31x", "不是 ISO 8601 格式", id="trailing-junk"),
    pytest.param("2015-03-31T08:30 then", "不是 ISO 8601 格式", id="trailing-word"),
    pytest.param("2015-3-31", "不是 ISO 8601 格式", id="unpadded"),
    pytest.param("31/03/2015", "不是 ISO 8601 格式", id="day-first"),
    pytest.param("2015年3月31日", "不是 ISO 8601 格式", id="chinese-date"),
]


@pytest.mark.parametrize(("text", "why"), BAD_TIMES)
def test_bad_now_is_refused_before_anything_is_written(untouched, cli, text, why):
    """A --now that is no real ISO 8601 time exits 2 quoting it; the trigger is not fired."""
    with untouched():
        r = cli("--now", text, "advance", YUERYA, "start", now=None)
    refused(r, "--now", f"“{text}”", why)


@pytest.mark.parametrize(("text", "why"), BAD_TIMES)
def test_bad_since_is_refused(untouched, cli, text, why):
    """`history --since` with an impossible date exits 2 quoting it, rather than listing from some other day."""
    with untouched():
        r = cli("history", "--since", text)
    refused(r, "--since", f"“{text}”", why)


def test_bad_anjian_now_in_the_environment_is_refused(untouched, cli, monkeypatch):
    """ANJIAN_NOW with Arabic-Indic digits exits 2 naming the variable; nothing is recorded."""
    monkeypatch.setenv("ANJIAN_NOW", "٢٠١٥-٠٣-٣١")
    with untouched():
        r = cli("record", YUERYA, "staff.full_time", "4", now=None)
    refused(r, "ANJIAN_NOW", "٢٠١٥-٠٣-٣١")


@pytest.mark.parametrize("text", ["2016-02-29", "2015-03-31T08:30+08:00", "2015-03-31T00:30Z", "2015-03-31T08:30:05.123"])
def test_real_times_are_accepted(chengde, cli, text):
    """A leap day, an offset, UTC and fractions are real times: the command runs."""
    r = cli("status", now=text)
    assert r.exit_code == 0, r.output


def test_empty_now_is_refused(untouched, cli):
    """`--now ''` exits 2 instead of silently acting at the real clock."""
    with untouched():
        r = cli("--now", "", "advance", YUERYA, "start", now=None)
    refused(r, "--now")


def test_empty_since_is_refused(untouched, cli):
    """`history --since ''` exits 2 instead of silently listing every row."""
    with untouched():
        r = cli("history", "--since", "")
    refused(r, "--since")


@pytest.mark.usefixtures("english")
def test_impossible_dates_in_a_calendar_file_are_each_named(untouched, cli, tmp_path):
    """`calendar load` names every line whose date is not a real YYYY-MM-DD day and loads none of the file."""
    path = write(tmp_path / "2015.csv", "date,workday\n2015-01-01,休\n2015-02-29,班\n2015-13-01,班\n2015-00-10,休\n"
                                        "２０１５-０３-０１,班\n٢٠١٥-٠٣-٠٢,班\n")
    with untouched():
        r = cli("calendar", "load", str(path))
    refused(r, str(path), "nothing was written", *(f"line {n}:" for n in range(3, 8)))
    assert "line 2:" not in r.output


def test_impossible_deadline_in_a_campaign_file_is_refused(untouched, cli, tmp_path):
    """`init --campaign` with a deadline of 2015-02-29 exits 2 naming the line and key; the campaign in force stays."""
    from anjian.states.campaign import builtin_text

    path = write(tmp_path / "campaign.toml", builtin_text("chengde-2014").replace("2015-03-31", "2015-02-29", 1))
    with untouched():
        r = cli("init", "--campaign", str(path), user=None)
    refused(r, "campaign.toml", "line ", "deadline")


# -- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "code"), [
    pytest.param("宽城\u3000峪耳崖镇", YUERYA, id="ideographic-space"),
    pytest.param("宽城 峪耳崖镇 ", YUERYA, id="ascii-spaces"),
    pytest.param("１３０８２７１０２", YUERYA, id="full-width-code"),
    pytest.param("𝟏𝟑𝟎𝟖𝟐𝟕𝟏𝟎𝟐", YUERYA, id="math-bold-code"),
    pytest.param("\u2fbc寺台镇", GAOSITAI, id="kangxi-radical-gao"),
    pytest.param("承德县高寺台镇", GAOSITAI, id="county-in-front"),
    pytest.param("平泉县卧龙镇", "130881107", id="renamed-county"),
    pytest.param("\uf9dc化县", "130825", id="compatibility-ideograph-long"),
])
def test_forms_nfkc_folds_resolve(chengde, cli, typed, code):
    """What NFKC folds (full-width, compatibility forms, spaces) names the same unit."""
    r = cli("show", typed, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["code"] == code


@pytest.mark.parametrize("typed", [
    pytest.param("宽城峪耳崖鎮", id="traditional-zhen"),
    pytest.param("寬城峪耳崖镇", id="traditional-kuan"),
    pytest.param("١٣٠٨٢٧١٠٢", id="arabic-indic-code"),
    pytest.param("13О827102", id="cyrillic-o-in-code"),
    pytest.param("1308271O2", id="latin-o-in-code"),
    pytest.param("高寺台镇\u200b", id="zero-width-space"),
    pytest.param("ＸＸ镇", id="unknown-full-width"),
])
def test_look_alikes_nfkc_does_not_fold_are_refused_never_guessed(untouched, cli, typed):
    """A look-alike NFKC leaves alone (traditional forms, other scripts' digits and letters, invisible
    characters) is no unit: exit 2 quoting it, and the trigger is not fired on a near match."""
    with untouched():
        r = cli("advance", typed, "start")
    refused(r, f"“{typed}”", "名录中没有这个单位")


@pytest.mark.parametrize(("typed", "real"), [
    pytest.param("宽城县大阁镇", "丰宁满族自治县大阁镇（130826100）", id="daige-is-in-fengning"),
    pytest.param("丰宁县高寺台镇", "承德县高寺台镇（130821106）", id="gaositai-is-in-chengde-county"),
    pytest.param("滦平峪耳崖镇", "宽城满族自治县峪耳崖镇（130827102）", id="yuerya-is-in-kuancheng"),
])
def test_county_in_front_that_does_not_contain_the_township_is_refused(untouched, cli, typed, real):
    """A township written after a county it is not in is not found (never moved to its real county), and the
    message points at where that township really is."""
    with untouched():
        r = cli("advance", typed, "start")
    refused(r, f"“{typed}”", "名录中没有这个单位", "是否指", real)


def test_unit_typed_in_a_gbk_terminal_is_refused(untouched, cli):
    """A unit argument whose bytes are not UTF-8 exits 2 saying so, not with an internal error."""
    with untouched():
        r = cli("advance", "宽城峪耳崖镇".encode("gbk").decode("utf-8", "surrogateescape"), "start")
    refused(r, "不是 UTF-8")


# -- the national registry: one township name in many counties -------------------------------------
@pytest.fixture
def national(national_registry) -> SimpleNamespace:
    """The national registry (44,700 units), loaded once a session and only read here."""
    return national_registry


class TestNationalRegistry:
    """Names on the national registry, where 88 townships are called 城关镇 (loaded once a session)."""

    def test_chengguan_alone_is_refused_listing_candidates(self, national):
        """`城关镇` alone exits 2: it fits 88 units, listed with their codes and full paths, none chosen."""
        r = national.run("show", "城关镇")
        refused(r, "“城关镇”对应 88 个单位", "请在前面写上所属县或市", "120114110 天津市市辖区武清区城关镇",
                "150123100 内蒙古自治区呼和浩特市和林格尔县城关镇", "……另有 68 个")

    def test_ambiguous_name_fires_nothing(self, national):
        """`advance 城关镇 start` exits 2 and writes nothing to the national database."""
        before = snapshot(national.db)
        refused(national.run("advance", "城关镇", "start"), "对应 88 个单位")
        assert snapshot(national.db) == before

    @pytest.mark.parametrize(("typed", "code"), [
        ("武清区城关镇", "120114110"), ("武清城关镇", "120114110"), ("天津市武清区城关镇", "120114110"),
        ("武清区\u3000城关镇", "120114110"), ("和林格尔县城关镇", "150123100"), ("和林格尔城关镇", "150123100"),
        ("清水河县城关镇", "150124100"), ("丰宁大阁镇", DAGE), ("虎林八五〇农场", "230381500"),
    ])
    def test_county_qualified_name_resolves(self, national, typed, code):
        """With its county (full, short or with the city in front) a 城关镇 is exactly one unit."""
        r = national.run("show", typed, "--format", "json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["code"] == code

    @pytest.mark.parametrize("typed", ["宽城县城关镇", "武清区大阁镇"])
    def test_county_that_does_not_contain_it_is_refused(self, national, typed):
        """A county in front that holds no such township is not found — never another county's township."""
        refused(national.run("show", typed), f"“{typed}”", "名录中没有这个单位", "是否指")

    def test_ling_is_not_folded_into_the_circle_zero(self, national):
        """八五〇农场 exists; 八五零农场 (零 for 〇) is not found rather than guessed."""
        assert json.loads(national.run("show", "八五〇农场", "--format", "json").output)["code"] == "230381500"
        refused(national.run("show", "八五零农场"), "“八五零农场”", "名录中没有这个单位")


# -- CSV files ------------------------------------------------------------------------------------
# One bulk command per kind of file: its arguments for a file path, a header and a good row.
BULK = {
    "designate": (("designate", "--file"), "unit,cohort", "宽城峪耳崖镇,key"),
    "advance": (("advance", "--file"), "unit,trigger,note", "宽城峪耳崖镇,start,"),
    "contact": (("contact", "import"), "unit,name,email", "宽城峪耳崖镇,王站长,wang@kc.gov.cn"),
}


def bulk(cli, kind: str, path: Path) -> Result:
    return cli(*BULK[kind][0], str(path))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_registry_with_a_bom_or_in_gbk_loads(cli, fresh_db, tmp_path, encoding):
    """A registry saved by Excel as UTF-8 with a BOM, or as GBK, loads all 232 units with their names intact."""
    path = write(tmp_path / "registry.csv", chengde_registry(), encoding)
    r = cli("init", "--registry", str(path), user=None)
    assert r.exit_code == 0, r.output
    assert "232 个单位" in r.output
    assert json.loads(cli("show", YUERYA, "--format", "json", user=None).output)["name"] == "峪耳崖镇"


@pytest.mark.parametrize("kind", BULK)
@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_bulk_file_with_a_bom_or_in_gbk_is_read(chengde, cli, tmp_path, kind, encoding):
    """A bulk file saved as UTF-8 with a BOM or as GBK is read: its header is found and its row applied."""
    _, header, row = BULK[kind]
    r = bulk(cli, kind, write(tmp_path / "in.csv", f"{header}\n{row}\n", encoding))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("kind", BULK)
def test_empty_file_is_refused(untouched, cli, tmp_path, kind):
    """A file of zero bytes exits 2 naming it and the columns it must have."""
    path = write(tmp_path / "empty.csv", "")
    with untouched():
        refused(bulk(cli, kind, path), str(path), "文件是空的", BULK[kind][1].split(",")[0])


@pytest.mark.parametrize(("kind", "says"), [("designate", "更改 0 项"), ("advance", "已执行 0 / 0 行"), ("contact", "联系人：新增 0 个")])
def test_header_only_file_does_nothing_and_says_so(untouched, cli, tmp_path, kind, says):
    """A file with a header (and a blank line) but no rows is an empty batch, as test_cli_advance decides:
    exit 0, a count of zero, nothing written."""
    path = write(tmp_path / "header.csv", BULK[kind][1] + "\r\n\r\n")
    with untouched():
        r = bulk(cli, kind, path)
    assert r.exit_code == 0, r.output
    assert says in r.output


@pytest.mark.parametrize("kind", BULK)
def test_directory_given_as_the_file_is_refused(untouched, cli, tmp_path, kind):
    """A directory where the file should be exits 2 saying so."""
    with untouched():
        refused(bulk(cli, kind, tmp_path), str(tmp_path), "是文件夹，不是文件")


@pytest.mark.parametrize("kind", BULK)
def test_missing_file_is_refused(untouched, cli, tmp_path, kind):
    """A file that does not exist exits 2 naming it."""
    with untouched():
        refused(bulk(cli, kind, tmp_path / "nowhere.csv"), "nowhere.csv", "不存在")


@pytest.mark.skipif(AS_ROOT, reason="root reads a file whatever its mode")
@pytest.mark.parametrize("kind", BULK)
def test_file_without_read_permission_is_refused(untouched, cli, tmp_path, kind):
    """A file with mode 000 exits 2 saying it cannot be read."""
    _, header, row = BULK[kind]
    path = write(tmp_path / "locked.csv", f"{header}\n{row}\n")
    path.chmod(0)
    try:
        with untouched():
            refused(bulk(cli, kind, path), "locked.csv", "无法读取")
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(not UNREADABLE.exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("kind", BULK)
def test_file_whose_read_fails_is_refused(untouched, cli, kind):
    """A file whose read fails with an I/O error (even for root) exits 2 saying it cannot be read."""
    with untouched():
        refused(bulk(cli, kind, UNREADABLE), str(UNREADABLE), "无法读取")


@pytest.mark.parametrize("kind", BULK)
def test_ragged_rows_are_each_named(untouched, cli, tmp_path, kind):
    """Rows with too many or too few fields exit 2 naming each line and its field count; nothing is written."""
    _, header, row = BULK[kind]
    width = header.count(",") + 1
    path = write(tmp_path / "ragged.csv", f"{header}\n{row}\n{row},extra\n{row.rsplit(',', 1)[0]}\n")
    with untouched():
        r = bulk(cli, kind, path)
    refused(r, f"第 3 行：有 {width + 1} 个字段，而表头有 {width} 列", f"第 4 行：有 {width - 1} 个字段，而表头有 {width} 列")


@pytest.mark.parametrize("kind", BULK)
def test_quote_never_closed_is_named_at_the_line_it_opens(untouched, cli, tmp_path, kind):
    """A quote opened on line 3 and never closed exits 2 naming line 3, instead of swallowing the rest."""
    _, header, row = BULK[kind]
    path = write(tmp_path / "open.csv", f'{header}\n{row}\n"{row}\n{row}\n')
    with untouched():
        refused(bulk(cli, kind, path), "第 3 行", "引号字段没有闭合")


@pytest.mark.slow  # a file of 10,000 lines
def test_advance_file_of_10000_lines_with_a_bad_row_on_line_9999(cli, fresh_db, folders, tmp_path):
    """An advance file of 10,000 lines (9,999 townships) with an unknown unit on line 9999 exits 2 naming
    exactly that line, and none of the 9,998 good rows is written."""
    lines = big_registry()
    registry = write(tmp_path / "big-registry.csv", "\n".join(lines) + "\n")
    assert cli("init", "--registry", str(registry), user=None).exit_code == 0
    add_officials(fresh_db, TEST_OFFICIALS)
    towns = [line.split(",")[0] for line in lines if ",township," in line][:9_999]
    rows = ["unit,trigger,note"] + [f"{code},start," for code in towns]
    rows[9_998] = "不存在的乡镇,start,"  # line 9999 of the file
    path = write(tmp_path / "batch.csv", "\n".join(rows) + "\n")
    assert len(rows) == 10_000
    before = snapshot(fresh_db, folders.outbox)
    r = bulk(cli, "advance", path)
    refused(r, str(path), "第 9999 行 (不存在的乡镇 start)", "名录中没有这个单位", "整批未写入")
    assert r.output.count("  - 第 ") == 1
    assert snapshot(fresh_db, folders.outbox) == before


@pytest.mark.slow  # a file of 10,000 lines
def test_registry_of_10000_lines_with_a_bad_row_on_line_9999(cli, fresh_db, tmp_path):
    """A registry of 10,000 lines with a bad code on line 9999 exits 2 naming that line; the database stays empty."""
    from sqlalchemy import inspect

    lines = big_registry()[:10_000]
    lines[9_998] = "13082799X,坏镇,township,130827,"
    path = write(tmp_path / "registry.csv", "\n".join(lines) + "\n")
    r = cli("init", "--registry", str(path), user=None)
    refused(r, str(path), "第 9999 行：代码 '13082799X' 不是 6、9 或 12 位的区划代码", "整批未写入")
    assert r.output.count("  - 第 ") == 1
    assert inspect(fresh_db.engine).get_table_names() == []


@pytest.mark.slow  # a file of 10,000 lines
def test_designate_file_in_gbk_with_a_bad_byte_on_line_9999(untouched, cli, tmp_path):
    """A GBK file of 10,000 lines with one byte that is neither UTF-8 nor GBK is refused naming line 9999
    (not line 2, where it first stops being UTF-8)."""
    lines = ["unit,cohort"] + ["宽城峪耳崖镇,key"] * 9_999
    data = "\n".join(lines).encode("gbk").split(b"\n")
    data[9_998] = b"\xff" + data[9_998]
    path = tmp_path / "gbk.csv"
    path.write_bytes(b"\n".join(data) + b"\n")
    with untouched():
        refused(bulk(cli, "designate", path), str(path), "第 9999 行", "不是 UTF-8 或 GBK 文本")


@pytest.mark.slow  # a file of 10,000 lines
def test_contact_file_of_10000_lines_with_a_ragged_row_on_line_9999(untouched, cli, tmp_path):
    """A contact file of 10,000 lines with a ragged row on line 9999 names that line only; no contact is added."""
    units = ["承德县", "宽城县", "滦平县", "丰宁县", "隆化县", "兴隆县", "围场县", "平泉县"]
    rows = ["unit,name,email"] + [f"{units[i % 8]},联系人{i},c{i}@cd.gov.cn" for i in range(9_999)]
    rows[9_998] += ",extra"
    path = write(tmp_path / "contacts.csv", "\n".join(rows) + "\n")
    with untouched():
        r = bulk(cli, "contact", path)
    refused(r, "第 9999 行：有 4 个字段，而表头有 3 列", "未写入任何内容")
    assert r.output.count("  - 第 ") == 1


@pytest.mark.usefixtures("english")
def test_duplicate_code_in_a_registry_names_both_lines(cli, fresh_db, tmp_path):
    """A registry listing a code twice exits 2 naming the second line and the first."""
    lines = chengde_registry().splitlines()
    path = write(tmp_path / "dup.csv", "\n".join(lines + [lines[100]]) + "\n")
    r = cli("init", "--registry", str(path), user=None)
    refused(r, f"line {len(lines) + 1}: code {lines[100].split(',')[0]} also on line 101")


@pytest.mark.usefixtures("english")
def test_duplicate_contact_in_an_import_names_the_line(untouched, cli, tmp_path):
    """The same (unit, name) twice in a contact file exits 2 naming the second line; nothing is added."""
    path = write(tmp_path / "dup.csv", "unit,name,email\n宽城县,李科长,li@kc.gov.cn\n宽城满族自治县,李科长,li2@kc.gov.cn\n")
    with untouched():
        refused(bulk(cli, "contact", path), "line 3", "already has a contact named 李科长")


def test_duplicate_designation_in_a_file_is_refused(untouched, cli, tmp_path):
    """The same township and cohort twice in a designate file exits 2 naming both lines; nothing is written."""
    path = write(tmp_path / "dup.csv", "unit,cohort,remove\n宽城峪耳崖镇,key,\n130827102,key,是\n")
    with untouched():
        refused(bulk(cli, "designate", path), "第 3 行", "第 2 行")


def test_embedded_newlines_keep_line_numbers_in_an_advance_file(untouched, cli, tmp_path):
    """Notes spanning several lines are read whole, and the bad row after them is named by its real line (7)."""
    path = write(tmp_path / "batch.csv", 'unit,trigger,note\n宽城峪耳崖镇,start,"第一行\n第二行"\n'
                                         '承德县高寺台镇,start,"多\n行\n备注"\n不存在镇,start,\n')
    with untouched():
        r = bulk(cli, "advance", path)
    refused(r, "第 7 行 (不存在镇 start)")
    assert r.output.count("  - 第 ") == 1


def test_embedded_newline_note_is_kept_whole(chengde, cli, tmp_path):
    """A multi-line note in an advance file is recorded with its line break, as one note."""
    path = write(tmp_path / "batch.csv", 'unit,trigger,note\n宽城峪耳崖镇,start,"第一行\r\n第二行"\n')
    assert bulk(cli, "advance", path).exit_code == 0
    notes = [row["note"] for row in json.loads(cli("history", YUERYA, "--format", "json").output) if row["trigger"] == "start"]
    assert notes == ["第一行\r\n第二行"]


@pytest.mark.usefixtures("english")
def test_embedded_newlines_in_a_contact_file_are_each_named(untouched, cli, tmp_path):
    """A quoted name or address carrying a line break is refused at the line its row starts, and a later bad
    row at its real line; nothing is added."""
    path = write(tmp_path / "contacts.csv", 'unit,name,email\n宽城县,"王\n站长",wang@kc.gov.cn\n'
                                            '承德县,李科长,"li@cd.gov.cn\nBcc: evil@z.cn"\n滦平县,赵,zhao@lp.gov.cn,extra\n')
    with untouched():
        r = bulk(cli, "contact", path)
    refused(r, "line 2: contact name", "line breaks are not allowed", "line 4: e-mail address", "line 6: 4 fields")
    assert r.output.index("line 2:") < r.output.index("line 4:") < r.output.index("line 6:")


@pytest.mark.usefixtures("english")
def test_embedded_newline_in_a_registry_name_is_refused_at_its_line(cli, fresh_db, tmp_path):
    """A registry name with a line break is refused at its line, and a bad level after it at its real line."""
    from sqlalchemy import inspect

    lines = chengde_registry().splitlines()
    lines[3:3] = ['130827998,"峪耳\n崖镇",township,130827,', "130827997,某村,village,130827,"]
    path = write(tmp_path / "registry.csv", "\n".join(lines) + "\n")
    r = cli("init", "--registry", str(path), user=None)
    refused(r, "line 4: name", "line break", "line 6: level 'village'")
    assert inspect(fresh_db.engine).get_table_names() == []


@pytest.mark.parametrize(("name", "text"), [
    ("empty", ""), ("header-only", "code,name,level,parent_code\n"), ("ragged", "code,name,level,parent_code\n130800,承德市\n"),
])
def test_unusable_registry_files_leave_the_database_empty(cli, fresh_db, tmp_path, name, text):
    """An empty, header-only or ragged registry exits 2 naming the file; no table is created."""
    from sqlalchemy import inspect

    path = write(tmp_path / f"{name}.csv", text)
    refused(cli("init", "--registry", str(path), user=None), str(path))
    assert inspect(fresh_db.engine).get_table_names() == []


def test_registry_that_is_a_directory_is_refused(cli, fresh_db, tmp_path):
    """`init --registry DIR` exits 2 saying it is a directory."""
    refused(cli("init", "--registry", str(tmp_path), user=None), str(tmp_path), "是文件夹")


# -- contacts: header injection and unsafe webhooks -----------------------------------------------
@pytest.mark.parametrize(("option", "value", "words"), [
    pytest.param("--email", "x@y.cn\r\nBcc: evil@z.cn", ("e-mail address", "not a plain address"), id="email-crlf-bcc"),
    pytest.param("--email", "x@y.cn\nBcc: evil@z.cn", ("e-mail address",), id="email-lf-bcc"),
    pytest.param("--email", "x@y.cn, evil@z.cn", ("e-mail address",), id="email-two-addresses"),
    pytest.param("--email", '"x@y.cn" <evil@z.cn>', ("e-mail address",), id="email-display-form"),
    pytest.param("--name", "王\r\nSubject: hi", ("contact name", "line breaks are not allowed"), id="name-crlf-subject"),
    pytest.param("--name", "王\nBcc: evil@z.cn", ("contact name", "line breaks"), id="name-lf-bcc"),
    pytest.param("--name", "王\u2028Subject: hi", ("contact name",), id="name-line-separator"),
    pytest.param("--name", "王\u0085Subject: hi", ("contact name",), id="name-next-line"),
    pytest.param("--name", "王\u202eih", ("contact name",), id="name-bidi-override"),
    pytest.param("--name", GBK_BYTES, ("--name", "not UTF-8"), id="name-gbk-bytes"),
    pytest.param("--webhook", "javascript:alert(1)", ("webhook", "not an http(s) URL"), id="webhook-javascript"),
    pytest.param("--webhook", "file:///etc/passwd", ("webhook", "not an http(s) URL"), id="webhook-file"),
    pytest.param("--webhook", "http://robot.example/hook\r\nHost: evil", ("webhook",), id="webhook-crlf"),
    pytest.param("--webhook", "http://robot.example:99999/hook", ("webhook",), id="webhook-bad-port"),
])
@pytest.mark.usefixtures("english")
def test_contact_payloads_are_refused(untouched, cli, option, value, words):
    """Header-injection payloads in a contact's name or address, and non-http webhooks, exit 2; nothing is added."""
    given = {"--name": "王站长", "--email": "wang@kc.gov.cn", "--webhook": None} | {option: value}
    args = [a for k, v in given.items() if v is not None for a in (k, v)]
    with untouched():
        r = cli("contact", "add", "宽城县", *args)
    refused(r, *words)


def test_display_name_with_address_syntax_cannot_add_a_recipient(chengde, cli, folders):
    """A name written like `"Evil" <evil@z.cn>, x` is only a name: the reminder goes to exactly the one address."""
    name = '"Evil" <evil@z.cn>, x'
    assert cli("contact", "add", "宽城县", "--name", name, "--email", "li@kc.gov.cn").exit_code == 0
    assert cli("remind", now="2014-12-31T08:30").exit_code == 0
    (eml,) = folders.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert [addr for _, addr in getaddresses([str(msg["To"])])] == ["li@kc.gov.cn"]
    assert msg["Bcc"] is None and msg["Cc"] is None


# -- template syntax is text ----------------------------------------------------------------------
def test_template_syntax_in_a_note_is_recorded_and_shown_as_text(chengde, cli):
    """A note carrying Jinja2 syntax and markup is stored as typed; `history` prints it literally."""
    r = cli("advance", YUERYA, "start", "--note", TEMPLATE)
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("history", YUERYA, "--format", "json").output)
    assert [x["note"] for x in rows if x["trigger"] == "start"] == [TEMPLATE]
    assert TEMPLATE in cli("history", YUERYA).output


def test_template_syntax_in_a_checklist_text_is_shown_as_text(chengde, cli):
    """A text item holding template syntax is shown by `show` (JSON: the table lists only missing items) and
    `history` exactly as written."""
    assert cli("record", YUERYA, "ledger.documents", TEMPLATE).exit_code == 0
    item = next(c for c in json.loads(cli("show", YUERYA, "--format", "json").output)["checklist"] if c["item"] == "ledger.documents")
    assert item["value"] == TEMPLATE
    assert TEMPLATE in cli("history", YUERYA).output


def test_reminder_to_a_contact_named_with_template_syntax_shows_it_literally(chengde, cli, folders):
    """A notice to a contact whose name is template syntax carries it as text: no 49, no loop, escaped in HTML."""
    assert cli("contact", "add", "宽城县", "--name", TEMPLATE, "--email", "li@kc.gov.cn").exit_code == 0
    assert cli("remind", now="2014-12-31T08:30").exit_code == 0
    (eml,) = folders.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert f"承德市宽城满族自治县{TEMPLATE}：" in text  # where the name goes: no 49, no loop
    assert "承德市宽城满族自治县{{ 7*7 }}&lt;script&gt;x&lt;/script&gt;{% for x in range(10**9) %}：" in html
    assert "<script>" not in html


def test_unit_named_with_template_syntax_is_text_everywhere(cli, fresh_db, folders, tmp_path):
    """A registry whose township is named with template syntax and markup: `show`, `units` and the reminder
    sent for it print the name literally, and the HTML notice escapes it."""
    hostile = "{{ 7*7 }}<b>x</b>{% for x in range(10**9) %}镇"
    registry = chengde_registry().replace(f"{YUERYA},峪耳崖镇,", f"{YUERYA},{hostile},")
    assert cli("init", "--registry", str(write(tmp_path / "r.csv", registry)), user=None).exit_code == 0
    add_officials(fresh_db, TEST_OFFICIALS)
    assert json.loads(cli("show", YUERYA, "--format", "json").output)["name"] == hostile
    assert hostile in cli("show", YUERYA).output
    assert hostile in cli("units", "--county", "宽城", "--level", "township").output
    assert cli("contact", "add", YUERYA, "--name", "王站长", "--email", "wang@kc.gov.cn").exit_code == 0
    assert cli("remind", now="2015-03-24T08:30").exit_code == 0
    (eml,) = folders.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert f"承德市宽城满族自治县{hostile}" in text and hostile in str(msg["Subject"])
    assert "{{ 7*7 }}&lt;b&gt;x&lt;/b&gt;{% for x in range(10**9) %}镇" in html and "<b>x</b>" not in html


# -- evidence -------------------------------------------------------------------------------------
EVIDENCE_COMMANDS = {
    "record": ("record", YUERYA, "staff.full_time", "4"),
    "advance": ("advance", YUERYA, "start"),
}


@pytest.fixture(params=list(EVIDENCE_COMMANDS))
def with_evidence(request, cli):
    """Run `record` or `advance` on 峪耳崖镇 with the given --evidence paths."""
    def run(*paths: str) -> Result:
        return cli(*EVIDENCE_COMMANDS[request.param], *(a for p in paths for a in ("--evidence", p)))

    return run


@pytest.mark.usefixtures("english")
def test_evidence_that_is_a_directory_is_refused(untouched, with_evidence, tmp_path):
    """An evidence path that is a directory exits 2 saying so; nothing is recorded or kept."""
    with untouched():
        refused(with_evidence(str(tmp_path)), str(tmp_path), "is a directory")


@pytest.mark.usefixtures("english")
def test_missing_evidence_is_refused(untouched, with_evidence, tmp_path):
    """An evidence file that does not exist exits 2 naming it."""
    with untouched():
        refused(with_evidence(str(tmp_path / "检查记录.pdf")), "检查记录.pdf", "no such file")


@pytest.mark.usefixtures("english")
def test_empty_evidence_path_is_refused(untouched, with_evidence):
    """`--evidence ''` exits 2 saying the path is empty (not that the current folder is a directory)."""
    with untouched():
        refused(with_evidence(""), "evidence", "empty")


@pytest.mark.usefixtures("english")
def test_evidence_that_is_a_pipe_is_refused_without_waiting(untouched, with_evidence, tmp_path):
    """A named pipe or a device as evidence exits 2 at once: it is not a file that can be kept."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with untouched():
        refused(with_evidence(str(fifo)), "pipe", "not a regular file")
        refused(with_evidence("/dev/null"), "/dev/null", "not a regular file")


@pytest.mark.skipif(AS_ROOT, reason="root reads a file whatever its mode")
def test_evidence_without_read_permission_is_refused(untouched, with_evidence, tmp_path):
    """An evidence file with mode 000 exits 2 saying it cannot be read."""
    locked = write(tmp_path / "locked.pdf", "%PDF-1.4")
    locked.chmod(0)
    try:
        with untouched():
            refused(with_evidence(str(locked)), "locked.pdf", "cannot be read")
    finally:
        locked.chmod(0o600)


@pytest.mark.skipif(not UNREADABLE.exists(), reason="needs Linux /proc")
def test_evidence_whose_read_fails_is_refused(untouched, with_evidence):
    """An evidence file whose read fails with an I/O error (even for root) exits 2; this one, in /proc,
    is refused as a pseudo-file before it is read (issue 12)."""
    with untouched():
        refused(with_evidence(str(UNREADABLE)), str(UNREADABLE), "伪文件")


@pytest.mark.usefixtures("english")
def test_one_bad_evidence_among_good_ones_keeps_nothing(untouched, with_evidence, tmp_path):
    """With a good file and then a missing one, nothing is recorded and the good file is not kept either."""
    good = write(tmp_path / "good.pdf", "%PDF-1.4 good")
    with untouched():
        refused(with_evidence(str(good), str(tmp_path / "gone.pdf")), "gone.pdf", "no such file")


# -- text from a terminal that is not UTF-8 -------------------------------------------------------
def test_note_typed_in_a_gbk_terminal_is_refused(untouched, cli):
    """A --note whose bytes are not UTF-8 exits 2 saying so, not with an internal error."""
    with untouched():
        refused(cli("advance", YUERYA, "start", "--note", GBK_BYTES), "--note", "UTF-8")


def test_text_value_typed_in_a_gbk_terminal_is_refused(untouched, cli):
    """A checklist text whose bytes are not UTF-8 exits 2 saying so."""
    with untouched():
        refused(cli("record", YUERYA, "ledger.documents", GBK_BYTES), "UTF-8")


def test_actor_typed_in_a_gbk_terminal_is_refused(chengde, cli):
    """`history --actor` with bytes that are not UTF-8 exits 2 saying so."""
    refused(cli("history", "--actor", GBK_BYTES), "UTF-8")



# -- an impossible date, in the official's words (issue 13: "day is out of range for month") ---------
@pytest.mark.parametrize(("lang", "text", "words"), [
    ("zh", "2015-02-30", ("--now", "“2015-02-30”", "不是真实存在的日期或时间", "2015年2月没有30日")),
    ("zh", "2015-13-01", ("--now", "“2015-13-01”", "没有 13 月")),
    ("en", "2015-02-30", ("--now", "“2015-02-30”", "is not a real date or time", "2015-02 has no day 30")),
])
def test_impossible_date_names_the_date_and_the_option(cli, chengde, monkeypatch, lang, text, words):
    """An impossible --now says which option, which date and why in the official's language, never Python's words."""
    monkeypatch.setenv("ANJIAN_LANG", lang)
    r = cli("--now", text, "status", now=None)
    refused(r, *words)
    assert "out of range" not in r.output and "must be in" not in r.output
