"""`anjian report dossier`: what an inspector brings to an acceptance visit — the unit, its checklist
with what is missing, every evidence file checked against the evidence store, the full history from
the audit log in Shanghai time, and a block to sign."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support import at
from test_report_progress import Tables

from anjian.workflow.reports import dossier as ds
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import record

YUERYA = "130827102"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """The evidence store the CLI keeps copies in (ANJIAN_EVIDENCE)."""
    folder = tmp_path / "evidence-store"
    monkeypatch.setenv("ANJIAN_EVIDENCE", str(folder))
    return folder


def file(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_bytes(body.encode("utf-8"))
    return p


def test_a_building_township_shows_what_is_missing_and_each_evidence_copy_checked(chengde, fill_checklist, tmp_path, store):
    """The dossier names the one item still missing, and for each evidence file says whether the
    stored copy is there and still hashes the same: kept, never stored, and altered afterwards."""
    advance(chengde, YUERYA, "start", "chief_yuerya", at("2015-01-05T09:00"))
    fill_checklist(chengde, YUERYA, {"provincial_demo"}, skip=("six.vehicle", "staff.part_time", "ledger.documents"),
                   actor="chief_yuerya", now=at("2015-01-05T09:30"))
    car = file(tmp_path, "车辆行驶证.pdf", "执法车辆行驶证")
    ledger = file(tmp_path, "收发文件台账.pdf", "台账")
    office = file(tmp_path, "办公场所.jpg", "照片")
    record(chengde, YUERYA, "six.vehicle", "是", "chief_yuerya", at("2015-01-06T10:30"), (str(car),), store)
    record(chengde, YUERYA, "ledger.documents", "李四", "chief_yuerya", at("2015-01-06T10:40"), (str(ledger),), None)
    record(chengde, YUERYA, "six.office_space", "是", "chief_yuerya", at("2015-01-06T10:50"), (str(office),), store)
    kept = store / sha(office)[:2] / sha(office)
    kept.write_bytes(b"replaced afterwards")

    d = ds.build(chengde, "宽城峪耳崖镇", at("2015-01-07T09:00"), store)
    assert d.unit.path == "承德市宽城满族自治县峪耳崖镇" and d.unit.state_name == "创建中"
    assert [i.item for i in d.missing] == ["staff.part_time"]
    assert {e.name: (e.sha256, e.stored) for e in d.evidence} == {
        "车辆行驶证.pdf": (sha(car), "ok"), "收发文件台账.pdf": (sha(ledger), "missing"), "办公场所.jpg": (sha(office), "altered")}
    first = d.history[0]
    assert (first.at, first.actor, first.action_name, first.from_state, first.to_state) == (
        "2015-01-05 09:00:00", "chief_yuerya", "开展创建", "未开展", "创建中")

    text = ds.markdown(d)
    assert text.startswith("# 峪耳崖镇安全监管规范化建设验收材料")
    assert "| 隶属 | 承德市宽城满族自治县峪耳崖镇 |" in text and "| 类别 | 省定示范乡镇 |" in text
    assert "| ✗ 缺 | 兼职安全监管人员（人） | ≥ 1 | 未填报 | staff.part_time |" in text
    assert "| ✓ | 六有：有执法车辆 | 必备 | 是 | six.vehicle |" in text
    assert f"`{sha(car)}`" in text and "存档文件已被改动，哈希不符" in text and "证据库中没有存档" in text
    assert "**尚缺：** 兼职安全监管人员（人）" in text
    assert "| 2015-01-05 09:00:00 | chief_yuerya | 开展创建（start） | 未开展 → 创建中 |" in text
    assert "验收组成员（签字）" in text


def test_the_html_dossier_holds_the_whole_path_in_shanghai_time(chengde, cli, fill_checklist, tmp_path, store):
    """Driven through the CLI (an admin acting as each official): every transition is in the history
    with its Chinese name, Shanghai time, who acted for whom and the note — escaped; the evidence kept
    by `record --evidence` checks out; the page has a signature block and nothing external."""
    car = file(tmp_path, "车辆行驶证.pdf", "执法车辆行驶证")
    assert cli("advance", "宽城峪耳崖镇", "start", now="2015-01-05T01:00Z", user="chief_yuerya").exit_code == 0
    fill_checklist(chengde, YUERYA, {"provincial_demo"}, skip=("six.vehicle",), actor="chief_yuerya",
                   now=at("2015-01-05T10:00"))
    r = cli("record", "宽城峪耳崖镇", "six.vehicle", "是", "--evidence", str(car), now="2015-01-06T10:30", user="chief_yuerya")
    assert r.exit_code == 0, r.output
    assert cli("advance", "宽城峪耳崖镇", "apply", now="2015-02-10T09:00", user="chief_yuerya").exit_code == 0
    r = cli("advance", "宽城峪耳崖镇", "reject", "--note", "<b>台账不全</b>", now="2015-03-01T09:00", user="inspector")
    assert r.exit_code == 0, r.output
    assert cli("advance", "宽城峪耳崖镇", "resubmit", now="2015-03-10T09:00", user="chief_yuerya").exit_code == 0
    r = cli("advance", "宽城峪耳崖镇", "accept", "--note", "经现场验收合格", now="2015-03-20T15:00", user="inspector")
    assert r.exit_code == 0, r.output

    out = tmp_path / "峪耳崖镇.html"
    r = cli("report", "dossier", "宽城峪耳崖镇", "--out", str(out), now="2015-03-21T09:00")
    assert r.exit_code == 0, r.output
    page = out.read_text("utf-8")
    assert "<script" not in page and "http:" not in page and "https:" not in page and " src=" not in page
    assert "&lt;b&gt;台账不全&lt;/b&gt;" in page and "<b>台账不全" not in page
    t = Tables(page)
    moves = [[c for _, c in cells] for a, cells in t.tables["history"] if "data-seq" in a]
    transitions = [(m[1], m[3], m[4]) for m in moves if "→" in m[4]]
    assert [(when, what.split("\n")[0].strip()) for when, what, _ in transitions] == [
        ("2015-01-05 09:00:00", "开展创建"), ("2015-02-10 09:00:00", "申请验收"), ("2015-03-01 09:00:00", "验收不通过"),
        ("2015-03-10 09:00:00", "整改后重新申请"), ("2015-03-20 15:00:00", "验收通过")]
    assert all("代为操作" in m[2] for m in moves if "→" in m[4])
    reject = next(m for m in moves if "验收不通过" in m[3])
    assert reject[2].startswith("inspector") and "台账不全" in reject[5]
    (evidence,) = [(a, cells) for a, cells in t.tables["evidence"] if "data-sha256" in a]
    assert evidence[0]["data-sha256"] == sha(car)
    assert evidence[1][-1] == ({"class": "ok"}, "存档完好，哈希一致")
    identity = dict((c[0][1], c[1][1]) for _, c in t.tables["identity"])
    assert identity["当前状态"].startswith("已达标")
    assert "signature" in t.ids and "验收组成员（签字）" in page


def test_a_county_dossier_has_its_own_checklist_and_its_townships(chengde, cli, tmp_path, store):
    """For a county: its checklist, the plan document it submitted (kept in the store), and its
    townships counted by state and listed."""
    plan = file(tmp_path, "宽城县推进方案.pdf", "推进方案")
    cli("record", "宽城县", "county.leadership_group", "组长：县长李四", now="2014-12-20T09:00", user="li")
    r = cli("advance", "宽城县", "submit_plan", "--evidence", str(plan), now="2014-12-20T10:00", user="li")
    assert r.exit_code == 0, r.output
    r = cli("report", "dossier", "宽城县", "--format", "md", now="2015-01-10T09:00")
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert text.startswith("# 宽城满族自治县乡镇安全监管规范化建设工作档案")
    assert "| ✓ | 成立乡镇安全监管规范化建设领导组织（组长及成立文件） | 须填写 | 组长：县长李四 | county.leadership_group |" in text
    assert "## 下辖乡镇（18 个）" in text and "未开展 18" in text
    assert f"| 宽城县推进方案.pdf | `{sha(plan)}` | 12 | 存档完好，哈希一致 |" in text
    assert "报送推进方案（submit_plan） | 准备发动 → 示范创建" in text
    assert "审核人员（签字）" in text


def test_an_unknown_unit_or_the_city_is_bad_input(chengde, cli):
    """A dossier of a unit that does not exist, or of the city, is exit 2 saying why."""
    r = cli("report", "dossier", "不存在镇")
    assert r.exit_code == 2 and "不存在镇" in r.stderr
    r = cli("report", "dossier", "承德市")
    assert r.exit_code == 2 and "report progress" in r.stderr


def test_dossier_has_help_with_an_example(cli):
    """`anjian report dossier --help` describes the dossier and gives an example."""
    r = cli("report", "dossier", "--help", now=None, user=None)
    assert r.exit_code == 0 and "示例：" in r.output


def test_a_chief_gets_the_dossier_of_their_own_township_only(chengde, cli, tmp_path):
    """`report dossier` opens a unit in full, as `show`: a station chief gets their own township's and is
    refused another's or their county's (exit 4), nothing written."""
    own = cli("report", "dossier", "宽城峪耳崖镇", user="chief_yuerya")
    assert own.exit_code == 0, own.output
    for other in ("承德县高寺台镇", "宽城县"):
        r = cli("report", "dossier", other, "--format", "html", "--out", str(tmp_path / "d.html"), user="chief_yuerya")
        assert r.exit_code == 4, r.output
        assert not (tmp_path / "d.html").exists()
