"""The assessment (考核) and the circular (通报) checked against a replayed campaign: the right counties
late on the right days, the right deductions under the campaign's own [assessment] rules, each tied to
the audit row behind it; the circular's text and HTML; issuing it into the audit log."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select, update
from support import T0, TEST_OFFICIALS, add_officials
from test_timeline import (
    CHENGDE_COUNTY,
    COUNTIES,
    DAGE,
    DEMO_DEADLINE,
    FENGNING,
    GAOSITAI,
    KUANCHENG,
    LUANPING,
    NOW,
    PINGQUAN,
    PLAN_DEADLINE,
    WOLONG,
    XIABANCHENG,
    YUERYA,
    ZHANGBAIWAN,
    Run,
    at,
    drive,
)

from anjian.states.campaign import builtin_text
from anjian.workflow.reports import assessment
from anjian.workflow.services.checklist import DesignateRow, designate
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.models import AuditRow, Unit, units_table

LATER = "2016-01-05T10:00"  # past every deadline but full coverage


@pytest.fixture
def run(chengde, tmp_path) -> Run:
    return drive(chengde, tmp_path)


def campaign_of(db):
    with db.read() as session:
        return campaign_in_force(session)


def townships(db) -> dict[str, str]:
    """Township code -> its county."""
    with db.read() as session:
        return dict(session.execute(select(Unit.code, Unit.parent_code).where(Unit.level == "township")).all())


def expected(run: Run, now: str) -> dict[str, set[tuple]]:
    """The deductions the scenario must give as of `now`, worked out independently of the code under
    test: per county, {(milestone, unit, kind, days, points, audit_seq)}, with the campaign's rule values."""
    campaign = campaign_of(run.db)
    rules = campaign.assessment
    today = at(now).date()
    deadline = {m.id: m.deadline for m in campaign.milestones}
    out: dict[str, set[tuple]] = {c: set() for c in COUNTIES}

    def charge(county, milestone, level, unit, kind, days, seq):
        rule = rules.rule(milestone, level)
        if rule is None:
            return
        points = rule.late if kind == "late" else rule.missed
        if points > 0:
            out[county].add((milestone, unit, kind, days, points, seq))

    def missed(milestone):
        return (today - deadline[milestone]).days

    submitted = {CHENGDE_COUNTY: run.seq[CHENGDE_COUNTY, "submit_plan"], KUANCHENG: run.seq[KUANCHENG, "submit_plan"]}
    if today > PLAN_DEADLINE:
        charge(KUANCHENG, "plan_submission", "county", KUANCHENG, "late", 6, submitted[KUANCHENG])
        for c in COUNTIES - set(submitted):
            charge(c, "plan_submission", "county", c, "missed", missed("plan_submission"), None)
    if today > DEMO_DEADLINE:
        charge(KUANCHENG, "provincial_demo", "township", YUERYA, "late", 10, run.seq[YUERYA, "accept"])
        charge(LUANPING, "provincial_demo", "township", ZHANGBAIWAN, "missed", missed("provincial_demo"), None)
        charge(FENGNING, "provincial_demo", "township", DAGE, "missed", missed("provincial_demo"), run.seq[DAGE, "start"])
        charge(PINGQUAN, "provincial_demo", "township", WOLONG, "missed", missed("provincial_demo"), None)
    for milestone in ("county_demo", "demo_review"):  # nobody designates or reviews in the scenario
        if today > deadline[milestone]:
            for c in COUNTIES:
                charge(c, milestone, "county", c, "missed", missed(milestone), submitted.get(c))
    if today > deadline["key_compliance"]:  # no key townships: every township owes having started
        for town, county in townships(run.db).items():
            if town not in (GAOSITAI, YUERYA, DAGE):
                charge(county, "key_compliance", "township", town, "missed", missed("key_compliance"), None)
    return out


def actual(result) -> dict[str, set[tuple]]:
    return {c.code: {(d.milestone, d.unit, d.kind, d.days, d.points, d.audit_seq) for d in c.items}
            for c in result.counties}


# -- the assessment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("now", [NOW, LATER])
def test_each_county_loses_exactly_its_deductions(run, now):
    """As of 2015-04-15 and of 2016-01-05, each county's deductions are exactly the scenario's (milestone,
    unit, kind, days, points by the campaign's rules, audit row) and its score is base − their sum."""
    rules = campaign_of(run.db).assessment
    result = assessment.assess(run.db, at(now))
    assert result.base == rules.base
    assert {c.code for c in result.counties} == COUNTIES
    want = expected(run, now)
    got = actual(result)
    for code in sorted(COUNTIES):
        assert got[code] == want[code], f"county {code}: unexpected {got[code] - want[code]}, missing {want[code] - got[code]}"
    for c in result.counties:
        total = sum(d[4] for d in want[c.code])
        assert c.base == rules.base
        assert c.deducted == pytest.approx(total), c.code
        assert c.score == pytest.approx(rules.base - total), c.code
        assert {d.county for d in c.items} <= {c.code}
        assert all(d.county_name == c.name for d in c.items)


def test_the_scenario_scores_as_of_april_2015(run):
    """The figures as an official reads them on 2015-04-15: 承德县 keeps the base; 宽城 loses a late plan and a
    late demonstration township; 滦平, 丰宁 and 平泉 a missed plan and a missed township; the others a plan."""
    rules = campaign_of(run.db).assessment
    plan, demo = rules.rule("plan_submission", "county"), rules.rule("provincial_demo", "township")
    scores = {c.code: c.score for c in assessment.assess(run.db, at(NOW)).counties}
    assert scores[CHENGDE_COUNTY] == rules.base
    assert scores[KUANCHENG] == pytest.approx(rules.base - plan.late - demo.late)
    for code in (LUANPING, FENGNING, PINGQUAN):
        assert scores[code] == pytest.approx(rules.base - plan.missed - demo.missed)
    for code in COUNTIES - {CHENGDE_COUNTY, KUANCHENG, LUANPING, FENGNING, PINGQUAN}:
        assert scores[code] == pytest.approx(rules.base - plan.missed)


def test_deductions_point_at_the_audit_rows(run):
    """A late deduction carries the row that met the milestone (宽城's submit_plan, 峪耳崖镇's accept); a missed
    one the unit's last transition (大阁镇's start) or nothing when the unit never moved."""
    (kuancheng,) = assessment.assess(run.db, at(NOW), "宽城").counties
    items = {d.milestone: d for d in kuancheng.items}
    plan, demo = items["plan_submission"], items["provincial_demo"]
    assert (plan.unit, plan.kind, plan.days, plan.audit_seq, plan.deadline) == \
        (KUANCHENG, "late", 6, run.seq[KUANCHENG, "submit_plan"], "2014-12-30")
    assert (demo.unit, demo.unit_name, demo.level, demo.kind, demo.days, demo.audit_seq) == \
        (YUERYA, "峪耳崖镇", "township", "late", 10, run.seq[YUERYA, "accept"])
    for d in (plan, demo):
        row = run.history_row(d.audit_seq)
        assert (row.unit, row.trigger) == (d.unit, "submit_plan" if d.level == "county" else "accept")
    (fengning,) = assessment.assess(run.db, at(NOW), FENGNING).counties
    dage = next(d for d in fengning.items if d.unit == DAGE)
    assert (dage.kind, dage.days, dage.audit_seq) == ("missed", 15, run.seq[DAGE, "start"])
    assert run.history_row(dage.audit_seq).trigger == "start"
    (luanping,) = assessment.assess(run.db, at(NOW), LUANPING).counties
    assert {(d.unit, d.audit_seq) for d in luanping.items} == {(LUANPING, None), (ZHANGBAIWAN, None)}


def test_replayed_before_the_late_acceptance_it_is_a_missed_deduction(run):
    """As of 2015-04-05 峪耳崖镇 is still unmet: 宽城 loses `missed` for it (5 days), not `late`."""
    rules = campaign_of(run.db).assessment
    (kuancheng,) = assessment.assess(run.db, at("2015-04-05T09:00"), KUANCHENG).counties
    demo = next(d for d in kuancheng.items if d.milestone == "provincial_demo")
    assert (demo.kind, demo.days, demo.points, demo.audit_seq) == \
        ("missed", 5, rules.rule("provincial_demo", "township").missed, run.seq[YUERYA, "apply"])


def demonstrate(run: Run) -> None:
    """承德县 goes on: 下板城镇 designated key and county demonstration (2015-04-20), accepted 2015-06-20 (on
    time for county_demo), and the city approves 承德县's demonstration work on 2015-08-03 (3 days late)."""
    designate(run.db, [DesignateRow(1, XIABANCHENG, "key"), DesignateRow(2, XIABANCHENG, "county_demo")], "tester",
              at("2015-04-20T09:00"))
    run.advance(XIABANCHENG, "start", "chief", "2015-04-21T09:00")
    run.fill(XIABANCHENG, frozenset({"key", "county_demo"}), "2015-04-22T09:00")
    run.advance(XIABANCHENG, "apply", "chief", "2015-05-01T09:00")
    run.accept(XIABANCHENG, "2015-06-20T10:00")
    run.advance(CHENGDE_COUNTY, "approve_demonstration", "inspector", "2015-08-03T10:00",
                note="经市局验收，示范创建工作符合要求")


def test_county_milestones_late_and_missed(run):
    """As of 2015-08-10: 承德县 met county_demo on time (at 下板城镇's accept row) and demo_review 3 days late
    (at the approve row), losing only the late points; 宽城, with no demonstration township, loses `missed`
    for both, 41 and 10 days, at its last step (its plan)."""
    demonstrate(run)
    rules = campaign_of(run.db).assessment
    result = {c.code: c for c in assessment.assess(run.db, at("2015-08-10T09:00")).counties}
    chengde = result[CHENGDE_COUNTY]
    assert {(d.milestone, d.unit, d.kind, d.days, d.audit_seq) for d in chengde.items} == {
        ("demo_review", CHENGDE_COUNTY, "late", 3, run.seq[CHENGDE_COUNTY, "approve_demonstration"])}
    assert chengde.score == pytest.approx(rules.base - rules.rule("demo_review", "county").late)
    kuancheng = result[KUANCHENG]
    plan_seq = run.seq[KUANCHENG, "submit_plan"]
    assert {(d.milestone, d.unit, d.kind, d.days, d.audit_seq) for d in kuancheng.items} == {
        ("plan_submission", KUANCHENG, "late", 6, plan_seq),
        ("provincial_demo", YUERYA, "late", 10, run.seq[YUERYA, "accept"]),
        ("county_demo", KUANCHENG, "missed", 41, plan_seq),
        ("demo_review", KUANCHENG, "missed", 10, plan_seq)}
    assert kuancheng.score == pytest.approx(rules.base - rules.rule("plan_submission", "county").late
                                            - rules.rule("provincial_demo", "township").late
                                            - rules.rule("county_demo", "county").missed
                                            - rules.rule("demo_review", "county").missed)


def test_circular_on_county_demo_lists_the_counties_it_charges(run, cli):
    """The 通报 on county_demo (as of 2015-08-10): the campaign charges counties for it, so it lists counties —
    承德县 (whose demonstration township 下板城镇 was accepted in time) on time, and every county its deduction
    table charges for 未完成 named in the 未完成 section — not "无"."""
    demonstrate(run)
    r = cli("report", "circular", "--milestone", "county_demo", now="2015-08-10T09:00")
    assert r.exit_code == 0, r.output
    s = sections(r.stdout)
    assert bullets(s["一"]) == ["承德县"]
    charged = {name for name, (_, why) in table_rows(s["四"]).items() if "未完成" in why}
    assert len(charged) == 11 and "承德县" not in charged
    listed = "\n".join(bullets(s["三"]))
    assert all(name in listed for name in charged), (
        f"the deduction table charges {len(charged)} counties for 未完成 county_demo, but the 未完成 section "
        f"lists {bullets(s['三'])}")


# -- `anjian assessment` ----------------------------------------------------------------------------
DEDUCTION_KEYS = {"county", "county_name", "milestone", "milestone_name", "deadline", "unit", "unit_name", "level",
                  "kind", "days", "points", "audit_seq"}


def test_assessment_json_shape_and_figures(run, cli):
    """`anjian assessment --format json`: now, today, campaign, base and every county with its score and
    deductions, the same figures as the service."""
    r = cli("assessment", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"now", "today", "campaign", "base", "counties"} <= set(data)
    assert (data["today"], data["campaign"], data["base"]) == ("2015-04-15", "chengde-2014", 100.0)
    assert {c["code"] for c in data["counties"]} == COUNTIES
    want = expected(run, NOW)
    for c in data["counties"]:
        assert {"code", "name", "base", "deducted", "score", "deductions"} <= set(c)
        assert {(d["milestone"], d["unit"], d["kind"], d["days"], d["points"], d["audit_seq"])
                for d in c["deductions"]} == want[c["code"]]
        assert c["score"] == pytest.approx(c["base"] - sum(d["points"] for d in c["deductions"]))
        assert c["deducted"] == pytest.approx(sum(d["points"] for d in c["deductions"]))
        for d in c["deductions"]:
            assert set(d) >= DEDUCTION_KEYS


@pytest.mark.parametrize("county", ["宽城", "宽城满族自治县", KUANCHENG])
def test_assessment_county_filter(run, cli, county):
    """`--county 宽城` (the county, not 宽城镇) gives that county only, with its deductions listed."""
    r = cli("assessment", "--county", county, "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    (only,) = json.loads(r.stdout)["counties"]
    assert only["code"] == KUANCHENG
    assert {(d["milestone"], d["kind"], d["days"]) for d in only["deductions"]} == {
        ("plan_submission", "late", 6), ("provincial_demo", "late", 10)}
    table = cli("assessment", "--county", county, now=NOW)
    assert table.exit_code == 0, table.output
    assert "宽城满族自治县" in table.stdout and "承德县" not in table.stdout
    assert f"#{run.seq[YUERYA, 'accept']}" in table.stdout and f"#{run.seq[KUANCHENG, 'submit_plan']}" in table.stdout


def test_assessment_city_filter_and_bad_county(run, cli):
    """`--county 承德市` is every county; a unit that is no county is bad input (exit 2)."""
    r = cli("assessment", "--county", "承德市", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    assert {c["code"] for c in json.loads(r.stdout)["counties"]} == COUNTIES
    assert cli("assessment", "--county", "不存在县", now=NOW).exit_code == 2


def test_assessment_table_lists_every_county(run, cli):
    """The table names every county with its score."""
    r = cli("assessment", now=NOW)
    assert r.exit_code == 0, r.output
    for c in assessment.assess(run.db, at(NOW)).counties:
        assert c.name in r.stdout
        assert f"{c.score:g}" in r.stdout


# -- the circular -----------------------------------------------------------------------------------
def sections(text: str) -> dict[str, str]:
    """The markdown circular's `### ` sections, by the heading's first words (一、 二、 三、 四、)."""
    parts = re.split(r"^### ", text, flags=re.M)
    return {p.split("、", 1)[0] if "、" in p.split("\n", 1)[0] else p.split("（", 1)[0]: p for p in parts[1:]}


def bullets(section: str) -> list[str]:
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]


def table_rows(section: str) -> dict[str, tuple[str, str]]:
    """County name -> (points, reasons) from the deduction table."""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0] not in ("县区", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_circular_md_on_the_provincial_demo(run, cli):
    """The 通报 on provincial_demo as of 2015-04-15: its title has the milestone's name; 高寺台镇 is on time
    under 承德县, 峪耳崖镇 late 10 days under 宽城 with its audit row, the three others not done by 15 days
    under their counties; the deduction table charges each county the campaign's points."""
    campaign = campaign_of(run.db)
    name = campaign.milestone("provincial_demo").name
    rules = campaign.assessment.rule("provincial_demo", "township")
    r = cli("report", "circular", "--milestone", "provincial_demo", now=NOW)
    assert r.exit_code == 0, r.output
    text = r.stdout
    title = next(line for line in text.splitlines() if line.startswith("## "))
    assert name in title
    assert "截至2015年4月15日" in text and "2015年3月31日前" in text
    s = sections(text)
    assert set(s) >= {"一", "二", "三", "四"}, list(s)
    assert bullets(s["一"]) == ["承德县：高寺台镇"]
    assert bullets(s["二"]) == [f"宽城满族自治县：峪耳崖镇（逾期 10 天完成，审计记录 #{run.seq[YUERYA, 'accept']}）"]
    assert bullets(s["三"]) == ["滦平县：张百湾镇（已逾期 15 天）", "丰宁满族自治县：大阁镇（已逾期 15 天）",
                                "平泉市：卧龙镇（已逾期 15 天）"]
    rows = table_rows(s["四"])
    assert rows == {
        "滦平县": (f"{rules.missed:g}", f"张百湾镇未完成（15 天，{rules.missed:g} 分）"),
        "丰宁满族自治县": (f"{rules.missed:g}", f"大阁镇未完成（15 天，{rules.missed:g} 分，#{run.seq[DAGE, 'start']}）"),
        "宽城满族自治县": (f"{rules.late:g}", f"峪耳崖镇逾期完成（10 天，{rules.late:g} 分，#{run.seq[YUERYA, 'accept']}）"),
        "平泉市": (f"{rules.missed:g}", f"卧龙镇未完成（15 天，{rules.missed:g} 分）"),
    }
    assert "承德县" not in s["四"]


def test_circular_md_on_plan_submission_lists_counties(run, cli):
    """The 通报 on plan_submission lists counties: 承德县 on time, 宽城 late 6 days, ten not done by 106 days."""
    r = cli("report", "circular", "--milestone", "plan_submission", now=NOW)
    assert r.exit_code == 0, r.output
    s = sections(r.stdout)
    assert bullets(s["一"]) == ["承德县"]
    assert bullets(s["二"]) == [f"宽城满族自治县（逾期 6 天完成，审计记录 #{run.seq[KUANCHENG, 'submit_plan']}）"]
    missed = bullets(s["三"])
    assert len(missed) == 10 and all(b.endswith("（已逾期 106 天）") for b in missed)
    assert not any(b.startswith(("承德县", "宽城")) for b in missed)
    rows = table_rows(s["四"])
    assert len(rows) == 11 and "承德县" not in rows
    rule = campaign_of(run.db).assessment.rule("plan_submission", "county")
    assert rows["宽城满族自治县"][0] == f"{rule.late:g}"
    assert {p for n, (p, _) in rows.items() if n != "宽城满族自治县"} == {f"{rule.missed:g}"}


def test_circular_object_matches_the_replay(run):
    """The draft's sections hold the right units with their days and audit rows."""
    c = assessment.circular(run.db, at(NOW), "provincial_demo")
    assert (c.milestone, c.deadline, c.today, c.level) == ("provincial_demo", "2015-03-31", "2015-04-15", "township")
    assert [(x.unit, x.county, x.audit_seq) for x in c.on_time] == [(GAOSITAI, CHENGDE_COUNTY, run.seq[GAOSITAI, "accept"])]
    assert [(x.unit, x.days, x.audit_seq) for x in c.late] == [(YUERYA, 10, run.seq[YUERYA, "accept"])]
    assert {(x.unit, x.days) for x in c.missed} == {(ZHANGBAIWAN, 15), (DAGE, 15), (WOLONG, 15)}
    assert c.pending == []
    rule = campaign_of(run.db).assessment.rule("provincial_demo", "township")
    assert {d["code"]: d["points"] for d in c.deductions} == {
        LUANPING: rule.missed, FENGNING: rule.missed, KUANCHENG: rule.late, PINGQUAN: rule.missed}
    assert c.sha256 == hashlib.sha256(c.text.encode("utf-8")).hexdigest()


def test_circular_before_the_deadline_lists_pending_and_no_deductions(run, cli):
    """As of 2015-03-25 none is overdue: 高寺台镇 and the others are pending, nobody loses points."""
    r = cli("report", "circular", "--milestone", "provincial_demo", now="2015-03-25T09:00")
    assert r.exit_code == 0, r.output
    s = sections(r.stdout)
    assert bullets(s["三"]) == ["无"]
    assert "本节点无扣分" in s["四"]
    assert len(bullets(s["尚未到期的"])) == 5


class Page(HTMLParser):
    """Checks that tags nest and close; collects the title and the text."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.title = ""
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at {self.getpos()}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title":
            self.title += data
        self.text.append(data)


def test_circular_html_is_well_formed_and_escapes_names(run, cli, tmp_path):
    """`--format html --out FILE`: tags nest and close, the <title> is the circular's title, and a unit named
    with "<script>" appears as text, never as a tag."""
    evil = "<script>alert(1)</script>张百湾镇"
    with run.db.write() as session:
        session.execute(update(units_table).where(units_table.c.code == ZHANGBAIWAN).values(name=evil))
    out = tmp_path / "通报.html"
    r = cli("report", "circular", "--milestone", "provincial_demo", "--format", "html", "--out", str(out), now=NOW)
    assert r.exit_code == 0, r.output
    html = out.read_text("utf-8")
    page = Page()
    page.feed(html)
    page.close()
    assert page.problems == []
    assert page.stack == [], f"unclosed: {page.stack}"
    name = campaign_of(run.db).milestone("provincial_demo").name
    assert name in page.title and page.title.startswith("关于")
    assert "script" not in page.tags, "a unit name became a <script> tag"
    assert "&lt;script&gt;" in html
    assert evil in "".join(page.text)
    assert "峪耳崖镇" in "".join(page.text)


def test_circular_json_has_the_sections(run, cli):
    """`--format json` carries the draft: sections, deductions, text and its sha256."""
    r = cli("report", "circular", "--milestone", "provincial_demo", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [x["unit"] for x in data["late"]] == [YUERYA]
    assert data["late"][0]["days"] == 10
    assert data["sha256"] == hashlib.sha256(data["text"].encode("utf-8")).hexdigest()
    assert data["issued_seq"] is None


def test_unknown_milestone_is_bad_input(run, cli):
    """An unknown milestone exits 2, names the known ones, and writes nothing even with --issue."""
    before = audit_count(run.db)
    r = cli("report", "circular", "--milestone", "provincial_demos", "--issue", now=NOW)
    assert r.exit_code == 2, r.output
    assert "provincial_demo" in r.output
    assert audit_count(run.db) == before


# -- issuing ----------------------------------------------------------------------------------------
def audit_count(db) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditRow))


def rows_after(db, seq: int) -> list[AuditRow]:
    with db.read() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq)))


def test_issue_records_the_text_hash_and_the_chain_still_verifies(run, cli, tmp_path):
    """`--issue` by the city office writes one audit row "circular" whose sha256 is that of the text written
    out; `anjian audit verify` still passes."""
    before = audit_count(run.db)
    out = tmp_path / "通报.md"
    r = cli("report", "circular", "--milestone", "provincial_demo", "--issue", "--out", str(out), now=NOW)
    assert r.exit_code == 0, r.output
    (row,) = rows_after(run.db, before)
    assert row.action == "circular"
    assert row.unit_code is None
    assert row.actor == "tester"
    detail = json.loads(row.detail)
    body = out.read_bytes()
    assert detail["sha256"] == hashlib.sha256(body).hexdigest()
    assert detail["milestone"] == "provincial_demo"
    assert detail["as_of"] == "2015-04-15"
    assert (detail["on_time"], detail["late"], detail["missed"]) == (1, 1, 3)
    rule = campaign_of(run.db).assessment.rule("provincial_demo", "township")
    assert detail["deductions"] == {LUANPING: rule.missed, FENGNING: rule.missed, KUANCHENG: rule.late,
                                    PINGQUAN: rule.missed}
    assert f"#{row.seq}" in r.output
    v = cli("audit", "verify", now=NOW)
    assert v.exit_code == 0, v.output


def test_issue_as_json_names_the_row(run, cli):
    """With `--format json` the issued draft carries the seq of its row."""
    before = audit_count(run.db)
    r = cli("report", "circular", "--milestone", "plan_submission", "--issue", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    (row,) = rows_after(run.db, before)
    assert data["issued_seq"] == row.seq
    assert json.loads(row.detail)["sha256"] == data["sha256"] == hashlib.sha256(data["text"].encode()).hexdigest()


def test_issuing_twice_writes_two_rows(run, cli):
    """Each issuing is its own row."""
    before = audit_count(run.db)
    for _ in range(2):
        assert cli("report", "circular", "--milestone", "provincial_demo", "--issue", now=NOW).exit_code == 0
    rows = rows_after(run.db, before)
    assert [r.action for r in rows] == ["circular", "circular"]
    assert rows[0].seq != rows[1].seq
    assert json.loads(rows[0].detail)["sha256"] == json.loads(rows[1].detail)["sha256"]
    assert cli("audit", "verify", now=NOW).exit_code == 0


@pytest.mark.parametrize("user", [None, "inspector", "li"], ids=["admin", "city_inspector", "county_official"])
def test_issue_by_another_role_is_denied_and_audited(run, cli, user):
    """Only the city office issues: the admin (this OS account), an inspector or a county official gets exit 4
    and the only row written is the denial."""
    before = audit_count(run.db)
    r = cli("report", "circular", "--milestone", "provincial_demo", "--issue", now=NOW, user=user)
    assert r.exit_code == 4, r.output
    rows = rows_after(run.db, before)
    assert [x.action for x in rows] == ["denied"], [(x.action, x.detail) for x in rows]
    assert "circular" in rows[0].detail
    assert cli("audit", "verify", now=NOW).exit_code == 0


def test_drafting_without_issue_writes_nothing(run, cli):
    """A draft alone is read-only, whoever asks."""
    before = audit_count(run.db)
    for user in ("tester", "inspector", None):
        assert cli("report", "circular", "--milestone", "provincial_demo", now=NOW, user=user).exit_code == 0
    assert audit_count(run.db) == before


# -- a campaign without rules -----------------------------------------------------------------------
def test_a_campaign_without_assessment_rules_deducts_nothing(fresh_db, tmp_path):
    """Loaded from a campaign file with no [assessment] table, every county keeps 100 and a circular has no
    deductions, however late the scenario runs."""
    from anjian.workflow.services.registry import initialize

    text = builtin_text("chengde-2014")
    path = tmp_path / "no-assessment.toml"
    path.write_text(text[: text.index("[assessment]")], encoding="utf-8")
    initialize(fresh_db, None, str(path), T0, "admin")
    add_officials(fresh_db, TEST_OFFICIALS)
    assert campaign_of(fresh_db).assessment.deductions == ()
    run = drive(fresh_db, tmp_path)
    result = assessment.assess(fresh_db, at(LATER))
    assert result.base == 100
    assert {c.code for c in result.counties} == COUNTIES
    assert all((c.score, c.items) == (100, []) for c in result.counties)
    c = assessment.circular(fresh_db, at(NOW), "provincial_demo")
    assert c.deductions == []
    assert "本节点无扣分" in c.text
    assert [x.unit for x in c.late] == [YUERYA] and run.seq[YUERYA, "accept"] == c.late[0].audit_seq


def test_circular_calls_the_plan_by_the_name_notices_use(run, cli):
    """The circular cites the campaign's 推进方案, the name the notices use, never a 工作方案."""
    r = cli("report", "circular", "--milestone", "provincial_demo", now=NOW)
    assert r.exit_code == 0, r.output
    assert "推进方案》" in r.stdout and "工作方案" not in r.stdout
    page = cli("report", "circular", "--milestone", "provincial_demo", "--format", "html", now=NOW)
    assert "推进方案》" in page.stdout and "工作方案" not in page.stdout


@pytest.mark.parametrize("name", ["省定示范", "provincial-demo", "省定5家示范镇完成规范化建设", "provincial demos"])
def test_circular_takes_the_milestone_by_its_chinese_or_english_name(run, cli, name):
    """--milestone accepts the id (with - for _), the campaign's name, and the short name in either language."""
    r = cli("report", "circular", "--milestone", name, now=NOW)
    assert r.exit_code == 0, r.output
    assert "峪耳崖镇" in r.stdout


def test_circular_on_an_unknown_milestone_lists_the_milestones(run, cli):
    """An unknown milestone exits 2 naming each milestone with its Chinese name."""
    r = cli("report", "circular", "--milestone", "没有的节点", now=NOW)
    assert r.exit_code == 2
    assert "没有的节点" in r.output and "provincial_demo（省定5家示范镇完成规范化建设）" in r.output
