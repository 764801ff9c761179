"""`anjian contact add|list|remove|import`: who receives a unit's notices; an address that could smuggle a
header, a webhook that is not http(s), or a malformed name is refused with exit 2 and nothing written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from support import audit_count, snapshot

from anjian.workflow.store.models import AuditRow, Contact

KUANCHENG = "130827"  # 宽城满族自治县
YUERYA = "130827102"  # 宽城峪耳崖镇


@pytest.fixture
def english(monkeypatch):
    """The messages of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


def contacts(db) -> tuple:
    """Every contact as (unit, name, email, webhook), in order."""
    with db.read() as s:
        return tuple(s.execute(select(Contact.unit_code, Contact.name, Contact.email, Contact.webhook)
                               .order_by(Contact.unit_code, Contact.name)).all())


def listed(cli, *args: str) -> list[dict]:
    r = cli("contact", "list", *args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def write_csv(tmp_path, text: str, encoding: str = "utf-8"):
    p = tmp_path / "contacts.csv"
    p.write_bytes(text.encode(encoding))
    return str(p)


def test_add_then_list_shows_the_contact(chengde, cli):
    """`contact add` confirms in words and `contact list` shows the contact under its unit."""
    r = cli("contact", "add", "宽城峪耳崖镇", "--name", "王站长", "--email", "wang@kc.gov.cn")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "已添加联系人 王站长（峪耳崖镇）：wang@kc.gov.cn"
    assert listed(cli) == [{"id": 1, "unit": YUERYA, "unit_name": "峪耳崖镇", "name": "王站长",
                            "email": "wang@kc.gov.cn", "webhook": None, "campaigns": None}]
    table = cli("contact", "list")
    assert table.exit_code == 0
    assert "王站长" in table.output and "wang@kc.gov.cn" in table.output and "共 1 个" in table.output


def test_add_with_webhook_only_and_with_both(chengde, cli):
    """A contact may have only a robot webhook, or an address and a webhook together."""
    hook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", hook)
    assert r.exit_code == 0, r.output
    assert hook in r.output
    r = cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn", "--webhook", "https://oapi.dingtalk.com/robot/send?access_token=1")
    assert r.exit_code == 0, r.output
    assert [(c["name"], c["email"], c["webhook"]) for c in listed(cli, "宽城县")] == [
        ("安监群", None, hook), ("李科长", "li@kc.gov.cn", "https://oapi.dingtalk.com/robot/send?access_token=1")]


def test_list_of_one_unit_leaves_out_the_others(chengde, cli):
    """`contact list UNIT` shows only that unit's contacts; a unit with none lists nothing."""
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn").exit_code == 0
    assert cli("contact", "add", "承德市", "--name", "市安委办", "--email", "office@cd.gov.cn").exit_code == 0
    assert [c["name"] for c in listed(cli, "宽城县")] == ["李科长"]
    assert [c["unit"] for c in listed(cli)] == ["130800", KUANCHENG]
    assert listed(cli, "丰宁县") == []


def test_a_contact_list_shows_only_the_officials_own_jurisdiction(chengde, cli):
    """A county official lists only their county's contacts (a webhook carries the robot's key), a chief
    only their township's, and an inspector, who keeps no contacts, is refused (exit 4)."""
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn").exit_code == 0
    assert cli("contact", "add", "丰宁县", "--name", "丰宁群", "--webhook",
               "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret").exit_code == 0
    assert cli("contact", "add", "宽城峪耳崖镇", "--name", "站长", "--email", "z@kc.gov.cn").exit_code == 0
    county = cli("contact", "list", "--format", "json", user="li")
    assert county.exit_code == 0 and [c["name"] for c in json.loads(county.output)] == ["李科长", "站长"]
    chief = cli("contact", "list", "--format", "json", user="chief_yuerya")
    assert [c["name"] for c in json.loads(chief.output)] == ["站长"]
    assert cli("contact", "list", "丰宁县", user="li").exit_code == 4
    assert cli("contact", "list", user="inspector").exit_code == 4


def test_contact_changes_are_audited(chengde, cli):
    """Adding and removing a contact each append an audit row naming the acting official; the chain verifies."""
    before = audit_count(chengde)
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn", user="office").exit_code == 0
    assert cli("contact", "remove", "宽城县", "--name", "李科长", user="office").exit_code == 0
    with chengde.read() as s:
        rows = s.execute(select(AuditRow.action, AuditRow.actor, AuditRow.unit_code).where(AuditRow.seq > before)
                         .order_by(AuditRow.seq)).all()
    assert [tuple(r) for r in rows] == [("contact_add", "office", KUANCHENG), ("contact_remove", "office", KUANCHENG)]
    verify = cli("audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_remove_deletes_only_that_contact(chengde, cli):
    """`contact remove` deletes the named contact of the unit and says so; the others stay."""
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn").exit_code == 0
    assert cli("contact", "add", "宽城县", "--name", "张干事", "--email", "zhang@kc.gov.cn").exit_code == 0
    r = cli("contact", "remove", "宽城满族自治县", "--name", "李科长")
    assert r.exit_code == 0, r.output
    assert "已删除联系人 李科长" in r.output
    assert [c["name"] for c in listed(cli)] == ["张干事"]


def test_remove_finds_a_name_typed_with_full_width_characters(chengde, cli):
    """A name is folded (NFKC) the same way when added and when removed, so it is found as it was typed."""
    assert cli("contact", "add", "宽城县", "--name", "王　站长", "--email", "w@kc.gov.cn").exit_code == 0
    assert [c["name"] for c in listed(cli)] == ["王 站长"]
    r = cli("contact", "remove", "宽城县", "--name", "王　站长")
    assert r.exit_code == 0, r.output
    assert listed(cli) == []


@pytest.mark.usefixtures("english")
def test_remove_of_an_unknown_name_is_bad_input(chengde, cli):
    """Removing a name the unit does not have exits 2, names the unit, and changes nothing."""
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn").exit_code == 0
    before = snapshot(chengde)
    r = cli("contact", "remove", "宽城县", "--name", "王站长")
    assert r.exit_code == 2
    assert "宽城满族自治县 has no contact named 王站长" in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize("address", [
    "a@b.cn\r\nBcc: x@y.cn",
    "a@b.cn\nBcc: x@y.cn",
    "李 <li@kc.gov.cn>",
    "li@kc.gov.cn, x@y.cn",
    "li kc@gov.cn",
    "王@kc.gov.cn",
    "li.kc.gov.cn",
    "li@",
])
@pytest.mark.usefixtures("english")
def test_email_that_is_not_one_plain_address_is_refused(chengde, cli, address):
    """An address with CR/LF (a header injection), a display name, a list, spaces or non-ASCII exits 2; nothing is written."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "李科长", "--email", address)
    assert r.exit_code == 2
    assert "is not a plain address like name@example.gov.cn" in r.output
    assert "nothing was written" in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "javascript:alert(1)",
    "ftp://robot.example/hook",
    "gopher://127.0.0.1:25/",
    "robot.example/hook",
    "http://",
    "http://[::1",
    "http://robot.example:99999/hook",
])
@pytest.mark.usefixtures("english")
def test_webhook_that_is_not_http_is_refused(chengde, cli, url):
    """A webhook that is not an http(s) URL with a host exits 2 and writes nothing."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", url)
    assert r.exit_code == 2
    assert "is not an http(s) URL" in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize("url", [
    "https://robot.example/hook\r\nX-Evil: 1",
    "https://robot.example/hook?key=a b",
    "https://robot.example/hook\tx",
    "https://robot.example/钩子",
    "https://机器人.example/hook",
])
@pytest.mark.usefixtures("english")
def test_webhook_with_characters_that_cannot_be_sent_is_refused(chengde, cli, url):
    """Whitespace, control or non-ASCII characters in a webhook exit 2 (they would break every later send)."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", url)
    assert r.exit_code == 2
    assert "percent-encode" in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize(("name", "message"), [
    ("王\n站长", "line breaks are not allowed"),
    ("王\r\nBcc: x@y.cn", "line breaks are not allowed"),
    ("王\t站长", "control characters"),
    ("王\u200b站长", "control characters"),
    ("王\u2028站长", "control characters"),
    ("   ", "empty"),
    ("王" * 65, "longer than 64"),
])
@pytest.mark.usefixtures("english")
def test_malformed_name_is_refused(chengde, cli, name, message):
    """A name with a line break or other control character, an empty or an over-long name exits 2; nothing is written."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", name, "--email", "li@kc.gov.cn")
    assert r.exit_code == 2
    assert message in r.output
    assert snapshot(chengde) == before


def test_surrounding_whitespace_is_trimmed(chengde, cli):
    """Spaces or a line break around a name, address or webhook (as pasted from a form) are trimmed, not stored."""
    r = cli("contact", "add", "宽城县", "--name", " 李科长\n", "--email", " li@kc.gov.cn\r\n", "--webhook", "https://oapi.dingtalk.com/robot/send?access_token=1\n")
    assert r.exit_code == 0, r.output
    assert contacts(chengde) == ((KUANCHENG, "李科长", "li@kc.gov.cn", "https://oapi.dingtalk.com/robot/send?access_token=1"),)


@pytest.mark.usefixtures("english")
def test_neither_email_nor_webhook_is_refused(chengde, cli):
    """A contact that nobody could reach exits 2 and says to give --email or --webhook."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "李科长")
    assert r.exit_code == 2
    assert "give --email or --webhook" in r.output
    assert snapshot(chengde) == before


def test_unknown_unit_is_refused(chengde, cli):
    """A unit not in the registry exits 2 with the unit named; nothing is written."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城峪耳崖乡", "--name", "王站长", "--email", "wang@kc.gov.cn")
    assert r.exit_code == 2
    assert "宽城峪耳崖乡" in r.output and "名录中没有这个单位" in r.output
    assert snapshot(chengde) == before


@pytest.mark.usefixtures("english")
def test_duplicate_name_at_a_unit_is_refused_but_allowed_elsewhere(chengde, cli):
    """A name may appear once per unit: the second exits 2 (even full-width), the same name at another unit is fine."""
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn").exit_code == 0
    before = snapshot(chengde)
    for name in ("李科长", " 李科长 ", "李科长"):
        r = cli("contact", "add", "130827", "--name", name, "--email", "li2@kc.gov.cn")
        assert r.exit_code == 2
        assert "宽城满族自治县 already has a contact named 李科长" in r.output
    assert snapshot(chengde) == before
    assert cli("contact", "add", "丰宁县", "--name", "李科长", "--email", "li@fn.gov.cn").exit_code == 0


def test_import_adds_every_row(chengde, cli, tmp_path):
    """`contact import` adds each row of a UTF-8 CSV (columns unit,name,email,webhook) and counts them."""
    path = write_csv(tmp_path, "unit,name,email,webhook\n"
                               "宽城县,李科长,li@kc.gov.cn,\n"
                               "宽城峪耳崖镇,王站长,wang@kc.gov.cn,https://open.feishu.cn/open-apis/bot/v2/hook/1\n"
                               "承德市,市安委办,office@cd.gov.cn,\n")
    r = cli("contact", "import", path)
    assert r.exit_code == 0, r.output
    assert "联系人：新增 3 个" in r.output
    assert [(c["unit"], c["name"]) for c in listed(cli)] == [("130800", "市安委办"), (KUANCHENG, "李科长"), (YUERYA, "王站长")]


def test_import_accepts_a_gbk_file_from_excel(chengde, cli, tmp_path):
    """A CSV saved by Excel in GBK is read as such: the Chinese names arrive intact."""
    path = write_csv(tmp_path, "unit,name,email,webhook\r\n宽城县,李科长,li@kc.gov.cn,\r\n丰宁县,赵科长,zhao@fn.gov.cn,\r\n",
                     encoding="gbk")
    r = cli("contact", "import", path)
    assert r.exit_code == 0, r.output
    assert "联系人：新增 2 个" in r.output
    assert [(c["unit_name"], c["name"]) for c in listed(cli)] == [("丰宁满族自治县", "赵科长"), ("宽城满族自治县", "李科长")]


def test_import_accepts_utf8_with_bom_and_email_only_columns(chengde, cli, tmp_path):
    """A UTF-8 file with a byte-order mark and without the optional webhook column is accepted."""
    path = write_csv(tmp_path, "\ufeffunit,name,email\n宽城县,李科长,li@kc.gov.cn\n")
    r = cli("contact", "import", path)
    assert r.exit_code == 0, r.output
    assert [c["name"] for c in listed(cli)] == ["李科长"]


@pytest.mark.usefixtures("english")
def test_import_with_bad_rows_reports_each_line_and_writes_nothing(chengde, cli, tmp_path):
    """Every bad row is reported with its line; the good rows are not written either (all or nothing)."""
    path = write_csv(tmp_path, "unit,name,email,webhook\n"
                               "宽城县,李科长,li@kc.gov.cn,\n"
                               "宽城县,张干事,\"a@b.cn\r\nBcc: x@y.cn\",\n"
                               "不存在县,王站长,wang@kc.gov.cn,\n"
                               "丰宁县,赵科长,,\n"
                               "宽城县,李科长,li2@kc.gov.cn,\n"
                               "承德市,市安委办,,file:///etc/passwd\n"
                               "宽城县,\"刘\n干事\",liu@kc.gov.cn,\n")
    before = snapshot(chengde)
    r = cli("contact", "import", path)
    assert r.exit_code == 2
    assert "6 problem(s); nothing was written" in r.output
    # a record is named by the line it starts on: the quoted CR/LF makes line 3 two lines long
    for line, words in [(3, "is not a plain address"), (5, "no such unit"), (6, "give --email or --webhook"),
                        (7, "already has a contact named 李科长"), (8, "is not an http(s) URL"), (9, "line breaks")]:
        assert any(ln.strip().startswith(f"- line {line}: ") and words in ln for ln in r.output.splitlines()), (line, r.output)
    assert "line 2:" not in r.output
    assert snapshot(chengde) == before


def test_import_with_a_ragged_row_names_its_line(chengde, cli, tmp_path):
    """A row with the wrong number of fields exits 2 naming its line; nothing is written."""
    path = write_csv(tmp_path, "unit,name,email,webhook\n宽城县,李科长,li@kc.gov.cn,\n宽城县,张干事,zhang@kc.gov.cn,,extra\n")
    before = snapshot(chengde)
    r = cli("contact", "import", path)
    assert r.exit_code == 2
    assert "第 3 行：有 5 个字段，而表头有 4 列" in r.output
    assert snapshot(chengde) == before


@pytest.mark.usefixtures("english")
def test_import_reports_ragged_and_invalid_rows_together(chengde, cli, tmp_path):
    """A ragged row and a row with a bad address are both reported in the one refusal."""
    path = write_csv(tmp_path, "unit,name,email,webhook\n宽城县,李科长,not-an-address,\n宽城县,张干事,zhang@kc.gov.cn,,extra\n")
    r = cli("contact", "import", path)
    assert r.exit_code == 2
    assert "line 3: 5 fields" in r.output
    assert "line 2: e-mail address" in r.output


@pytest.mark.parametrize(("text", "words"), [
    ("name,email\n李科长,li@kc.gov.cn\n", "缺少列 unit（单位）"),
    ("unit,name,phone\n宽城县,李科长,123\n", "无法识别的列 phone"),
    ("", "文件是空的"),
])
def test_import_with_a_bad_header_is_refused(chengde, cli, tmp_path, text, words):
    """A file without the unit and name columns, with an unknown column, or empty, exits 2 and says which."""
    before = snapshot(chengde)
    r = cli("contact", "import", write_csv(tmp_path, text))
    assert r.exit_code == 2
    assert words in r.output
    assert snapshot(chengde) == before


def test_import_of_a_missing_file_is_bad_input(chengde, cli, tmp_path):
    """A file that does not exist exits 2 and names it."""
    r = cli("contact", "import", str(tmp_path / "nowhere.csv"))
    assert r.exit_code == 2
    assert "nowhere.csv 不存在" in r.output


# -- `contact import` run again updates (issue 13, point 6) -------------------------------------------
def test_import_run_again_updates_changed_rows_and_leaves_the_rest(chengde, cli, tmp_path):
    """A second import of a changed file updates the contact of the same unit and name (same id, audited as
    contact_update), adds the new one, rewrites nothing unchanged, and `audit verify` stays clean."""
    first = write_csv(tmp_path, "unit,name,email,webhook\n宽城县,李科长,li@kc.gov.cn,\n承德市,市安委办,office@cd.gov.cn,\n")
    assert cli("contact", "import", first).exit_code == 0
    ids = {c["name"]: c["id"] for c in listed(cli)}
    with chengde.read() as s:
        before = s.scalar(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1))
    second = write_csv(tmp_path, "unit,name,email,webhook\n宽城县,李科长,li.new@kc.gov.cn,\n承德市,市安委办,office@cd.gov.cn,\n"
                                 "丰宁县,赵科长,zhao@fn.gov.cn,\n")
    r = cli("contact", "import", second)
    assert r.exit_code == 0, r.output
    assert "新增 1" in r.output and "更新 1" in r.output and "未变 1" in r.output
    now = {c["name"]: c for c in listed(cli)}
    assert now["李科长"]["email"] == "li.new@kc.gov.cn" and now["李科长"]["id"] == ids["李科长"]
    assert now["市安委办"]["id"] == ids["市安委办"]
    with chengde.read() as s:
        actions = [(r.action, json.loads(r.detail)["name"]) for r in s.scalars(select(AuditRow).where(AuditRow.seq > before))]
    assert sorted(actions) == [("contact_add", "赵科长"), ("contact_update", "李科长")]
    assert cli("audit", "verify").exit_code == 0


def test_import_run_again_unchanged_writes_nothing(chengde, cli, tmp_path):
    """Importing the same file twice: the second run adds, updates and audits nothing."""
    path = write_csv(tmp_path, "unit,name,email,webhook\n宽城县,李科长,li@kc.gov.cn,\n")
    assert cli("contact", "import", path).exit_code == 0
    before = audit_count(chengde)
    r = cli("contact", "import", path)
    assert r.exit_code == 0, r.output
    assert "未变 1" in r.output
    assert audit_count(chengde) == before
