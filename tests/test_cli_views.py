"""`anjian status`, `units` and `show`: the read-only views, their JSON shapes from the contract, their
filters, and replaying them at another `--now`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from support import T0, at

from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.store.models import AuditRow

KUANCHENG = "130827"  # 宽城满族自治县
YUERYA = "130827102"  # 宽城峪耳崖镇, provincial demonstration township
TOWN = "130827100"  # 宽城镇
PROVINCIAL = {"130821106", "130824106", "130826100", "130827102", "130881107"}
COUNTIES = {"130802", "130803", "130804", "130821", "130822", "130824", "130825", "130826", "130827", "130828",
            "130871", "130881"}
TOWNSHIP_TRIGGERS = ["start", "apply", "accept", "reject", "resubmit", "revoke"]
COUNTY_TRIGGERS = ["submit_plan", "approve_demonstration", "certify_key_compliance", "certify_full_coverage"]


def submit_plan(db, tmp_path, county: str = KUANCHENG) -> None:
    plan = tmp_path / f"plan-{county}.pdf"
    plan.write_bytes(b"plan")
    record(db, county, "county.leadership_group", "组长 张三", "county", T0)
    advance(db, county, "submit_plan", "county", T0, evidence=(str(plan),))


def accept(db, code: str, fill_checklist, cohorts=frozenset()) -> None:
    advance(db, code, "start", "chief", T0)
    fill_checklist(db, code, cohorts)
    advance(db, code, "apply", "chief", T0)
    advance(db, code, "accept", "inspector", T0, note="合格")


def audit_rows(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditRow))


def show_json(cli, unit: str, **kw) -> dict:
    r = cli("show", unit, "--format", "json", **kw)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# -- show ------------------------------------------------------------------------------------------
def test_show_json_has_the_contract_keys(chengde, cli):
    """`show --format json` carries every key of the contract's shape, nested ones included."""
    data = show_json(cli, "宽城峪耳崖镇")
    assert {"code", "name", "level", "parent", "state", "cohorts", "checklist", "milestones", "triggers"} <= set(data)
    assert (data["code"], data["name"], data["level"], data["parent"], data["state"], data["cohorts"]) == \
        (YUERYA, "峪耳崖镇", "township", KUANCHENG, "not_started", ["provincial_demo"])
    assert data["checklist"]
    for c in data["checklist"]:
        assert {"item", "kind", "required", "value", "ok"} <= set(c)
        assert c["kind"] in ("flag", "count", "text")
    for m in data["milestones"]:
        assert {"id", "deadline", "status"} <= set(m)
        assert m["status"] in ("met", "pending", "overdue")
    for t in data["triggers"]:
        assert {"name", "allowed", "unmet"} <= set(t)
        assert isinstance(t["unmet"], list)


def test_show_checklist_required_by_kind(chengde, cli):
    """`required` is true for a flag, a number for a count, null for a text; nothing recorded is not ok."""
    items = {c["item"]: c for c in show_json(cli, YUERYA)["checklist"]}
    assert items["six.vehicle"]["required"] is True
    assert items["staff.part_time"]["required"] == 1
    assert items["ledger.documents"]["required"] is None
    assert all(c["value"] is None and c["ok"] is False for c in items.values())
    assert "org.separate_station" not in items  # only key townships owe it


def test_show_checklist_values_and_ok(chengde, cli):
    """Recorded values appear typed (bool, int, str) with ok computed against the requirement."""
    record(chengde, YUERYA, "six.vehicle", "是", "chief", T0)
    record(chengde, YUERYA, "six.office_space", "否", "chief", T0)
    record(chengde, YUERYA, "staff.villages", "12", "chief", T0)
    record(chengde, YUERYA, "staff.information_officers", "11", "chief", T0)
    record(chengde, YUERYA, "ledger.documents", "王五", "chief", T0)
    items = {c["item"]: c for c in show_json(cli, YUERYA)["checklist"]}
    assert (items["six.vehicle"]["value"], items["six.vehicle"]["ok"]) == (True, True)
    assert (items["six.office_space"]["value"], items["six.office_space"]["ok"]) == (False, False)
    assert (items["staff.information_officers"]["required"], items["staff.information_officers"]["ok"]) == (12, False)
    assert (items["ledger.documents"]["value"], items["ledger.documents"]["ok"]) == ("王五", True)


def test_show_key_township_owes_more(chengde, cli):
    """A key township owes a separate station, a chief and 4 full-time staff, all certified."""
    designate(chengde, [DesignateRow(0, TOWN, "key")], "county", T0)
    record(chengde, TOWN, "staff.full_time", "6", "chief", T0)
    data = show_json(cli, TOWN)
    assert data["cohorts"] == ["key"]
    items = {c["item"]: c for c in data["checklist"]}
    assert items["org.separate_station"]["required"] is True
    assert items["staff.chief"]["required"] is True
    assert items["staff.full_time"]["required"] == 4
    assert items["staff.certified"]["required"] == 6


def test_show_county_checklist_and_triggers(chengde, cli):
    """A county shows its own checklist (an optional flag is ok unrecorded) and its four triggers."""
    data = show_json(cli, "宽城满族自治县")
    assert (data["level"], data["state"], data["parent"]) == ("county", "mobilization", "130800")
    items = {c["item"]: c for c in data["checklist"]}
    assert (items["county.leadership_group"]["kind"], items["county.leadership_group"]["required"]) == ("text", None)
    assert (items["county.plan_meeting"]["required"], items["county.plan_meeting"]["ok"]) == (False, True)
    assert [t["name"] for t in data["triggers"]] == COUNTY_TRIGGERS
    submit = data["triggers"][0]
    assert submit["allowed"] is False
    assert any("county.leadership_group" in u for u in submit["unmet"])


def test_show_triggers_say_what_is_open(chengde, cli):
    """For a fresh township only `start` is open; the others give the state they need."""
    triggers = show_json(cli, YUERYA)["triggers"]
    assert [t["name"] for t in triggers] == TOWNSHIP_TRIGGERS
    assert [t["allowed"] for t in triggers] == [True, False, False, False, False, False]
    assert triggers[0]["unmet"] == []
    assert all(t["unmet"] for t in triggers[1:])


def test_show_tells_the_applicant_they_may_not_accept(chengde, cli, fill_checklist):
    """`show --as` the applicant lists separation of duties under `accept`; another official sees only the note."""
    advance(chengde, YUERYA, "start", "chief", T0)
    fill_checklist(chengde, YUERYA)
    advance(chengde, YUERYA, "apply", "chief", T0)
    mine = {t["name"]: t for t in show_json(cli, YUERYA, user="chief")["triggers"]}
    other = {t["name"]: t for t in show_json(cli, YUERYA, user="inspector")["triggers"]}
    assert any("申请人以外" in u for u in mine["accept"]["unmet"])
    assert not any("申请人以外" in u for u in other["accept"]["unmet"])
    assert any("验收意见" in u for u in other["accept"]["unmet"])


def test_show_milestones_of_a_provincial_demo(chengde, cli):
    """A provincial demo township owes provincial_demo, key_compliance (started) and full_coverage."""
    ms = show_json(cli, YUERYA)["milestones"]
    assert [(m["id"], m["deadline"], m["status"]) for m in ms] == [
        ("provincial_demo", "2015-03-31", "pending"),
        ("key_compliance", "2015-12-31", "pending"),
        ("full_coverage", "2016-12-31", "pending")]


def test_show_milestones_replayed_later(chengde, cli):
    """At --now 2015-04-01 an unstarted provincial demo is overdue on provincial_demo, 1 day late."""
    ms = {m["id"]: m for m in show_json(cli, YUERYA, now="2015-04-01")["milestones"]}
    assert ms["provincial_demo"]["status"] == "overdue"
    assert ms["provincial_demo"]["days"] == 1
    assert ms["key_compliance"]["status"] == "pending"


def test_show_milestone_met_when_started(chengde, cli):
    """Starting an ordinary township meets its key_compliance milestone (every other township started)."""
    advance(chengde, TOWN, "start", "chief", T0)
    ms = {m["id"]: m["status"] for m in show_json(cli, TOWN)["milestones"]}
    assert ms == {"key_compliance": "met", "full_coverage": "pending"}


def test_show_table(chengde, cli):
    """The table names the unit, its state and version, counts ok items, and marks each next step."""
    r = cli("show", "宽城峪耳崖镇")
    assert r.exit_code == 0
    assert "承德市宽城满族自治县峪耳崖镇（130827102）" in r.output
    assert "状态：未开展" in r.output and "版本 1" in r.output
    assert "类别：省示范" in r.output
    assert "（0/" in r.output and "项达标）" in r.output
    assert "✓ 可以  开展创建（start）" in r.output
    assert "剩 106 天" in r.output  # 2014-12-15 → 2015-03-31


@pytest.mark.parametrize(("unit", "words"), [("没有这个镇", "名录中没有这个单位"), ("宽城", "对应 2 个单位")])
def test_show_unknown_or_ambiguous_unit(chengde, cli, unit, words):
    """`show` of an unknown or ambiguous name exits 2; 宽城 alone lists the county and the town."""
    r = cli("show", unit)
    assert r.exit_code == 2
    assert words in r.output
    if unit == "宽城":
        assert KUANCHENG in r.output and TOWN in r.output


def test_show_accepts_full_width_and_codes(chengde, cli):
    """Full-width characters are folded and a division code works as well as a name."""
    assert show_json(cli, "宽城　峪耳崖镇")["code"] == YUERYA
    assert show_json(cli, YUERYA)["name"] == "峪耳崖镇"


def test_show_on_an_empty_database(fresh_db, cli):
    """Before `anjian init` a view exits 2 and says to run init."""
    r = cli("show", YUERYA)
    assert r.exit_code == 2
    assert "anjian init" in r.output


# -- units -----------------------------------------------------------------------------------------
def units_json(cli, *args, **kw) -> list[dict]:
    r = cli("units", *args, "--format", "json", **kw)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_units_json_shape(chengde, cli):
    """`units --format json` is a list of objects with the contract's keys."""
    rows = units_json(cli)
    assert len(rows) == 1 + 12 + 219
    for u in rows:
        assert {"code", "name", "level", "parent", "state", "cohorts"} <= set(u)
    town = next(u for u in rows if u["code"] == YUERYA)
    assert (town["name"], town["level"], town["parent"], town["state"], town["cohorts"]) == \
        ("峪耳崖镇", "township", KUANCHENG, "not_started", ["provincial_demo"])


def test_units_by_level(chengde, cli):
    """--level county lists the 12 counties."""
    assert {u["code"] for u in units_json(cli, "--level", "county")} == COUNTIES


def test_units_by_county(chengde, cli):
    """--county with a short name lists that county's townships (with --level township)."""
    rows = units_json(cli, "--county", "宽城", "--level", "township")
    assert len(rows) == 18
    assert {u["parent"] for u in rows} == {KUANCHENG}


def test_units_by_cohort(chengde, cli):
    """--cohort provincial_demo lists the five townships the province named."""
    assert {u["code"] for u in units_json(cli, "--cohort", "provincial_demo")} == PROVINCIAL


def test_units_by_state(chengde, cli):
    """--state building lists the townships started, `-` allowed for `_` in the state."""
    advance(chengde, YUERYA, "start", "chief", T0)
    advance(chengde, TOWN, "start", "chief", T0)
    assert {u["code"] for u in units_json(cli, "--state", "building")} == {YUERYA, TOWN}
    assert len(units_json(cli, "--state", "not-started", "--level", "township")) == 217


def test_units_unknown_state_is_bad_input(chengde, cli):
    """A misspelt state exits 2 listing the states, rather than listing nothing."""
    r = cli("units", "--state", "bulding")
    assert r.exit_code == 2
    assert "building" in r.output


def test_units_unknown_level_is_usage_error(chengde, cli):
    """An unknown level exits 2."""
    assert cli("units", "--level", "village").exit_code == 2


def test_units_overdue(chengde, cli, tmp_path):
    """--overdue at 2015-01-01 lists the counties without a plan; one that submitted drops out."""
    assert cli("units", "--overdue", "--format", "json").stdout.strip() == "[]"
    assert {u["code"] for u in units_json(cli, "--overdue", now="2015-01-01")} == COUNTIES
    submit_plan(chengde, tmp_path)
    late = units_json(cli, "--overdue", now="2015-01-01")
    assert {u["code"] for u in late} == COUNTIES - {KUANCHENG}
    assert all(u["overdue"] == ["plan_submission"] for u in late)


def test_units_overdue_townships_after_the_provincial_deadline(chengde, cli, fill_checklist):
    """On 2015-04-01 the provincial demos not accepted are overdue; an accepted one is not."""
    accept(chengde, YUERYA, fill_checklist, {"provincial_demo"})
    late = units_json(cli, "--overdue", "--level", "township", now="2015-04-01")
    assert {u["code"] for u in late} == PROVINCIAL - {YUERYA}


def test_units_table_and_csv(chengde, cli):
    """The table counts the rows; CSV has a header and one line per unit."""
    r = cli("units", "--level", "county")
    assert r.exit_code == 0
    assert "共 12 个" in r.output and "宽城满族自治县" in r.output
    c = cli("units", "--level", "county", "--format", "csv")
    assert c.exit_code == 0
    lines = c.stdout.strip().splitlines()
    assert lines[0].startswith("代码,名称,级别,级别代码,上级,上级代码,状态,状态代码,类别")
    assert len(lines) == 13


# -- status ----------------------------------------------------------------------------------------
def status_json(cli, *args, **kw) -> dict:
    r = cli("status", *args, "--format", "json", **kw)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def county_of(data: dict, code: str = KUANCHENG) -> dict:
    return next(c for c in data["counties"] if c["code"] == code)


def test_status_json_per_county(chengde, cli):
    """Each county has its stage, accepted/total, per-cohort counts and the next milestone with days left."""
    data = status_json(cli)
    assert {c["code"] for c in data["counties"]} == COUNTIES
    k = county_of(data)
    assert (k["state"], k["townships"], k["accepted"], k["started"]) == ("mobilization", 18, 0, 0)
    assert k["cohorts"]["provincial_demo"] == [0, 1]
    assert (k["next_milestone"]["id"], k["next_milestone"]["deadline"], k["next_milestone"]["days"]) == \
        ("plan_submission", "2014-12-30", 15)
    assert k["overdue"] == []
    assert data["totals"]["townships"] == 219


def test_status_table(chengde, cli):
    """The table has a row per county with its next milestone and days left, and city totals."""
    r = cli("status")
    assert r.exit_code == 0
    row = next(line for line in r.output.splitlines() if line.startswith(KUANCHENG))
    assert "宽城满族自治县" in row and "准备发动" in row and "0/18" in row
    assert "方案报送" in row and " 15 " in row
    assert "合计：乡镇 219 个" in r.output


def test_status_counts_accepted_townships(chengde, cli, fill_checklist):
    """An accepted provincial demo counts in accepted/total and in its cohort."""
    accept(chengde, YUERYA, fill_checklist, {"provincial_demo"})
    k = county_of(status_json(cli))
    assert (k["accepted"], k["started"]) == (1, 1)
    assert k["cohorts"]["provincial_demo"] == [1, 1]
    assert "1/18" in cli("status").output


def test_status_of_one_county(chengde, cli):
    """--county limits the view to that county; a township there is bad input."""
    data = status_json(cli, "--county", "宽城满族自治县")
    assert [c["code"] for c in data["counties"]] == [KUANCHENG]
    r = cli("status", "--county", "宽城镇")
    assert r.exit_code == 2
    assert "是乡镇，不是县区" in r.output


@pytest.mark.parametrize(("now", "status", "days"), [
    ("2014-12-15T09:00", "pending", 15),
    ("2014-12-30T23:59", "pending", 0),  # the deadline day is still in time
    ("2014-12-30T15:59Z", "pending", 0),  # 23:59 in Shanghai
    ("2014-12-30T16:00Z", "overdue", 1),  # midnight in Shanghai: the next day
    ("2015-01-10", "overdue", 11),
])
def test_status_replayed_at_another_now(chengde, cli, now, status, days):
    """`--now` replays the view: days left shrink and a passed deadline turns overdue on Shanghai's calendar."""
    k = county_of(status_json(cli, now=now))
    if status == "pending":
        assert k["next_milestone"]["id"] == "plan_submission"
        assert k["next_milestone"]["days"] == days
        assert k["overdue"] == []
    else:
        assert k["overdue"] == ["plan_submission"]
        m = show_json(cli, KUANCHENG, now=now)["milestones"][0]
        assert (m["id"], m["status"], m["days"]) == ("plan_submission", "overdue", days)


def test_status_after_the_plan(chengde, cli, tmp_path):
    """A county that submitted its plan moves to the demonstration stage and its next milestone follows."""
    submit_plan(chengde, tmp_path)
    k = county_of(status_json(cli, now="2015-01-01"))
    assert k["state"] == "demonstration"
    assert k["overdue"] == []
    assert (k["next_milestone"]["id"], k["next_milestone"]["days"]) == ("provincial_demo", 89)
    others = county_of(status_json(cli, now="2015-01-01"), "130802")
    assert others["overdue"] == ["plan_submission"]


def test_status_counts_overdue_townships(chengde, cli):
    """After 2015-03-31 a county's unaccepted provincial demo counts as an overdue township."""
    data = status_json(cli, now="2015-04-01")
    assert county_of(data)["overdue_townships"] == 1
    assert county_of(data, "130802")["overdue_townships"] == 0
    assert data["totals"]["overdue_townships"] == 5


def test_views_write_nothing(chengde, cli):
    """Replaying views at any --now leaves the audit log as it was."""
    before = audit_rows(chengde)
    for now in ("2014-12-15", "2015-07-01", "2017-01-01"):
        assert cli("status", now=now).exit_code == 0
        assert cli("units", "--overdue", now=now).exit_code == 0
        assert cli("show", YUERYA, now=now).exit_code == 0
    assert audit_rows(chengde) == before


def test_status_csv(chengde, cli):
    """`status --format csv` has a header and a line per county."""
    r = cli("status", "--format", "csv")
    assert r.exit_code == 0
    assert len(r.stdout.strip().splitlines()) == 13


# -- issue 13: what officials read -------------------------------------------------------------------
def widest(text: str) -> int:
    from anjian.workflow.formats.output import width_of

    return max(width_of(line) for line in text.splitlines())


def test_show_of_a_rectifying_township_gives_the_inspectors_remark(chengde, cli, fill_checklist):
    """A township sent back to 整改中 shows the last reject's note, who gave it and when."""
    advance(chengde, YUERYA, "start", "chief", T0)
    fill_checklist(chengde, YUERYA, {"provincial_demo"})
    advance(chengde, YUERYA, "apply", "chief", T0)
    advance(chengde, YUERYA, "reject", "inspector", T0, note="消防器材过期，台账不全")
    r = cli("show", YUERYA)
    assert r.exit_code == 0, r.output
    remark = next(line for line in r.output.splitlines() if line.startswith("验收意见"))
    assert "消防器材过期，台账不全" in remark and "inspector" in remark and "2014-12-15 09:00" in remark
    assert "验收不通过" in remark
    assert show_json(cli, YUERYA)["remark"]["note"] == "消防器材过期，台账不全"


def test_show_of_a_county_marks_a_milestone_met_late(chengde, cli, tmp_path):
    """A plan submitted 42 days after its 2014-12-30 deadline shows as 已完成（晚42天）, as the report says."""
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(b"plan")
    late = at("2015-02-10T10:00")
    record(chengde, KUANCHENG, "county.leadership_group", "组长 张三", "county", late)
    advance(chengde, KUANCHENG, "submit_plan", "county", late, evidence=(str(plan),))
    r = cli("show", "宽城县", now="2015-03-01T09:00")
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.startswith("方案报送"))
    assert "已完成（晚42天）" in row
    assert show_json(cli, "宽城县", now="2015-03-01T09:00")["met_late"] == {"plan_submission": 42}


@pytest.mark.parametrize("columns", ["80", "120"])
def test_show_of_a_township_is_compact(chengde, cli, monkeypatch, columns):
    """A township with nothing recorded fits in 60 lines: each missing item once, grouped by area, and only
    the step that leaves its state — no refusal for a trigger of another state."""
    monkeypatch.setenv("COLUMNS", columns)
    advance(chengde, TOWN, "start", "chief", T0)
    r = cli("show", TOWN)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) <= 60, len(lines)
    assert widest(r.output) <= int(columns)
    assert r.output.count("设立安监站") == 1
    assert "  健全安全监管机构  0/" in r.output  # grouped by area
    assert "只能在" not in r.output  # no "wrong state" refusals
    assert "申请验收（apply）" in r.output and "清单尚缺" in r.output
    for other in ("（start）", "（accept）", "（reject）", "（resubmit）", "（revoke）"):
        assert other not in r.output
    assert {t["name"] for t in show_json(cli, TOWN)["triggers"]} == set(TOWNSHIP_TRIGGERS)  # JSON: all of them


def test_show_lists_only_the_items_of_the_townships_cohorts(chengde, cli):
    """An ordinary township is not asked for 专职安全监管人员 ≥ 0 (needs states.campaign.applicable_items)."""
    from anjian.states import campaign as module

    if not hasattr(module, "applicable_items"):
        pytest.skip("applicable_items comes with branch i13-bulk")
    r = cli("show", TOWN)
    assert "专职安全监管人员" not in r.output
    assert "staff.full_time" not in {c["item"] for c in show_json(cli, TOWN)["checklist"]}


@pytest.mark.parametrize("columns", [80, 120])
def test_status_fits_the_terminal(chengde, cli, monkeypatch, columns):
    """`status` fits 80 and 120 columns (CJK counted double), wrapping or leaving out the columns that go first."""
    monkeypatch.setenv("COLUMNS", str(columns))
    r = cli("status", now="2015-04-10T09:00")
    assert r.exit_code == 0, r.output
    assert widest(r.output) <= columns
    assert "宽城满族自治" in r.output and "0/18" in r.output
    if columns == 80:
        assert "未显示：代码" in r.output


def test_status_without_a_terminal_is_not_cut(chengde, cli, monkeypatch):
    """Written to a pipe (no COLUMNS, no terminal) the table keeps every column on one line per county."""
    monkeypatch.delenv("COLUMNS", raising=False)
    r = cli("status")
    row = next(line for line in r.output.splitlines() if line.startswith(KUANCHENG))
    assert "宽城满族自治县" in row and "方案报送" in row


def test_units_accept_chinese_states_and_cohorts(chengde, cli):
    """`units --state 创建中 --cohort 重点` filters as building and key do; the table shows Chinese words."""
    designate(chengde, [DesignateRow(1, TOWN, "key")], "office", T0)
    advance(chengde, TOWN, "start", "chief", T0)
    for args in (("--state", "创建中", "--cohort", "重点"), ("--state", "building", "--cohort", "key")):
        r = cli("units", *args, "--format", "json")
        assert r.exit_code == 0, r.output
        assert [u["code"] for u in json.loads(r.stdout)] == [TOWN]
    table = cli("units", "--state", "创建中")
    row = next(line for line in table.output.splitlines() if line.startswith(TOWN))
    assert "创建中" in row and "乡镇" in row and "building" not in row


def test_units_refuse_an_unknown_cohort_naming_the_choices(chengde, cli):
    """An unknown --cohort exits 2 listing each cohort with its Chinese name."""
    r = cli("units", "--cohort", "特别")
    assert r.exit_code == 2
    assert "特别" in r.output and "key（重点）" in r.output


def test_views_speak_english_on_request(chengde, cli, monkeypatch):
    """With ANJIAN_LANG=en the headers, states and sentences of status and show are English."""
    monkeypatch.setenv("ANJIAN_LANG", "en")
    r = cli("status", now="2015-04-10T09:00")
    assert "Stage" in r.output and "demonstration stage" in r.output and "Total:" in r.output
    s = cli("show", YUERYA)
    assert "state: not started" in s.output and "Next steps" in s.output and "Checklist:" in s.output
    assert "prov. demo" in s.output
