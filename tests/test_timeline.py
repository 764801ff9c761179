"""The campaign replayed from the audit log (`workflow.timeline`): driven through the real services at
chosen Shanghai times, then read back as of several `now`s — who met which milestone, on time or how
many days late, which audit row says so, and each county's counts day by day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from support import T0, at, record_checklist

from anjian.workflow.clock import SHANGHAI, local_date
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store import audit
from anjian.workflow.views.timeline import TrendPoint, replay

CHENGDE_COUNTY = "130821"  # 承德县, submits its plan on time
KUANCHENG = "130827"  # 宽城满族自治县, submits its plan 6 days late
LUANPING = "130824"  # 滦平县
FENGNING = "130826"  # 丰宁满族自治县
PINGQUAN = "130881"  # 平泉市
GAOSITAI = "130821106"  # 承德县高寺台镇, provincial demo: accepted on time
YUERYA = "130827102"  # 宽城峪耳崖镇, provincial demo: accepted 10 days late
ZHANGBAIWAN = "130824106"  # 滦平张百湾镇, provincial demo: never
DAGE = "130826100"  # 丰宁大阁镇, provincial demo: started only
WOLONG = "130881107"  # 平泉卧龙镇, provincial demo: never
XIABANCHENG = "130821100"  # 承德县下板城镇, an ordinary township
PROVINCIAL = {GAOSITAI, YUERYA, ZHANGBAIWAN, DAGE, WOLONG}
COUNTIES = {"130802", "130803", "130804", "130821", "130822", "130824", "130825", "130826", "130827", "130828",
            "130871", "130881"}
TOWNSHIPS_IN = {"130802": 12, "130803": 9, "130804": 5, "130821": 23, "130822": 20, "130824": 20, "130825": 25,
                "130826": 27, "130827": 18, "130828": 39, "130871": 2, "130881": 19}

PLAN_DEADLINE = dt.date(2014, 12, 30)
DEMO_DEADLINE = dt.date(2015, 3, 31)
NOW = "2015-04-15T12:00"


@dataclass
class Run:
    """The driven campaign: the audit seq of each transition, by (unit, trigger); the last one wins."""

    db: object
    seq: dict[tuple[str, str], int] = field(default_factory=dict)

    def advance(self, unit: str, trigger: str, actor: str, when: str, **kw) -> int:
        t = advance(self.db, unit, trigger, actor, at(when), **kw)
        self.seq[unit, trigger] = t.seq
        return t.seq

    def submit_plan(self, county: str, when: str, plan_file) -> int:
        record(self.db, county, "county.leadership_group", "组长 张三", "county", at(when))
        return self.advance(county, "submit_plan", "county", when, evidence=(str(plan_file),))

    def fill(self, unit: str, cohorts: frozenset[str], when: str) -> None:
        """Record a complete checklist (by `chief`)."""
        record_checklist(self.db, unit, cohorts, now=at(when))

    def accept(self, unit: str, when: str) -> int:
        return self.advance(unit, "accept", "inspector", when, note="经现场验收，符合规范化建设标准")

    def replay(self, now: str | dt.datetime):
        moment = now if isinstance(now, dt.datetime) else at(now)
        with self.db.read() as session:
            return replay(session, campaign_in_force(session), moment)

    def history_row(self, seq: int):
        with self.db.read() as session:
            (row,) = [h for h in audit.history(session) if h.seq == seq]
        return row


def drive(db, tmp_path) -> Run:
    """The scenario of the tests, written in time order (the log is replayed in its order up to `now`):
    承德县 plans on 2014-12-29, 宽城 on 2015-01-05, nobody else; of the five provincial demonstration
    townships 高寺台镇 is accepted 2015-03-30, 峪耳崖镇 2015-04-10, 大阁镇 only starts (2015-01-12) and the
    other two never move."""
    plan = tmp_path / "推进方案.pdf"
    plan.write_bytes(b"%PDF county plan")
    run = Run(db)
    run.submit_plan(CHENGDE_COUNTY, "2014-12-29T10:00", plan)
    run.submit_plan(KUANCHENG, "2015-01-05T10:00", plan)
    demo = frozenset({"provincial_demo"})
    run.advance(GAOSITAI, "start", "chief", "2015-01-10T09:00")
    run.advance(YUERYA, "start", "chief", "2015-01-10T09:30")
    run.fill(GAOSITAI, demo, "2015-01-11T09:00")
    run.fill(YUERYA, demo, "2015-01-11T10:00")
    run.advance(DAGE, "start", "chief", "2015-01-12T09:00")
    run.advance(GAOSITAI, "apply", "chief", "2015-03-20T09:00")
    run.advance(YUERYA, "apply", "chief", "2015-03-20T09:30")
    run.accept(GAOSITAI, "2015-03-30T15:00")
    run.accept(YUERYA, "2015-04-10T11:00")
    return run


@pytest.fixture
def run(chengde, tmp_path) -> Run:
    return drive(chengde, tmp_path)


def by_unit(outcomes) -> dict[str, object]:
    return {o.unit_code: o for o in outcomes}


def assert_met_by(run: Run, outcome, unit: str, trigger: str) -> None:
    """The outcome's met_seq is the audit row of `trigger` on `unit`, and met_at is that row's time."""
    assert outcome.met_seq == run.seq[unit, trigger], outcome
    row = run.history_row(outcome.met_seq)
    assert (row.unit, row.trigger) == (unit, trigger), f"audit row #{outcome.met_seq} is {row}"
    assert row.at == outcome.met_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- plan submission (the counties' milestone) -------------------------------------------------------
def test_plan_on_time_late_and_missed(run):
    """承德县's plan of 2014-12-29 is on time, 宽城's of 2015-01-05 is 6 days late, the ten others overdue
    by (2015-04-15 − 2014-12-30) = 106 days; met_seq names the submit_plan row."""
    out = by_unit(run.replay(NOW).outcomes("plan_submission"))
    assert set(out) == COUNTIES
    assert {o.milestone for o in out.values()} == {"plan_submission"}
    chengde = out[CHENGDE_COUNTY]
    assert (chengde.status, chengde.days, chengde.deadline, chengde.level) == ("on_time", 0, PLAN_DEADLINE, "county")
    assert chengde.met_at == at("2014-12-29T10:00")
    assert_met_by(run, chengde, CHENGDE_COUNTY, "submit_plan")
    kuancheng = out[KUANCHENG]
    assert (kuancheng.status, kuancheng.days) == ("late", 6)
    assert kuancheng.met_at == at("2015-01-05T10:00")
    assert_met_by(run, kuancheng, KUANCHENG, "submit_plan")
    overdue = (dt.date(2015, 4, 15) - PLAN_DEADLINE).days
    assert overdue == 106
    for code in COUNTIES - {CHENGDE_COUNTY, KUANCHENG}:
        o = out[code]
        assert (o.status, o.days, o.met_at, o.met_seq) == ("overdue", overdue, None, None), o
        assert o.county_code == code


def test_plan_replayed_before_the_late_submission_is_overdue(run):
    """As of 2015-01-04 宽城 has not submitted: overdue 5 days, not late; as of 2014-12-30 it is pending 0."""
    kuancheng = by_unit(run.replay("2015-01-04T18:00").outcomes("plan_submission"))[KUANCHENG]
    assert (kuancheng.status, kuancheng.days, kuancheng.met_seq, kuancheng.met_at) == ("overdue", 5, None, None)
    on_deadline = by_unit(run.replay("2014-12-30T23:59").outcomes("plan_submission"))
    assert (on_deadline[KUANCHENG].status, on_deadline[KUANCHENG].days) == ("pending", 0)
    assert on_deadline[CHENGDE_COUNTY].status == "on_time"
    before_anything = by_unit(run.replay("2014-12-20T09:00").outcomes("plan_submission"))
    assert (before_anything[CHENGDE_COUNTY].status, before_anything[CHENGDE_COUNTY].days) == ("pending", 10)


# -- provincial demonstration townships -------------------------------------------------------------
def test_provincial_demo_townships_on_time_late_and_overdue(run):
    """高寺台镇 accepted 2015-03-30 is on time, 峪耳崖镇 accepted 2015-04-10 is 10 days late (met_seq = the
    accept row), and the other three are overdue by 15 days as of 2015-04-15."""
    outcomes = run.replay(NOW).outcomes("provincial_demo")
    towns = by_unit(o for o in outcomes if o.level == "township")
    assert set(towns) == PROVINCIAL
    gaositai = towns[GAOSITAI]
    assert (gaositai.status, gaositai.days, gaositai.county_code, gaositai.deadline) == \
        ("on_time", 0, CHENGDE_COUNTY, DEMO_DEADLINE)
    assert_met_by(run, gaositai, GAOSITAI, "accept")
    yuerya = towns[YUERYA]
    assert (yuerya.status, yuerya.days, yuerya.county_code, yuerya.unit_name) == ("late", 10, KUANCHENG, "峪耳崖镇")
    assert yuerya.met_at == at("2015-04-10T11:00")
    assert_met_by(run, yuerya, YUERYA, "accept")
    for code in (ZHANGBAIWAN, DAGE, WOLONG):
        o = towns[code]
        assert (o.status, o.days, o.met_seq, o.met_at) == ("overdue", 15, None, None), o


def test_counties_owe_provincial_demo_only_with_a_provincial_township(run):
    """The county-level provincial_demo follows its township: met at the township's accept row; counties
    without a provincial demonstration township do not owe it."""
    counties = by_unit(o for o in run.replay(NOW).outcomes("provincial_demo") if o.level == "county")
    assert set(counties) == {CHENGDE_COUNTY, KUANCHENG, LUANPING, FENGNING, PINGQUAN}
    assert (counties[CHENGDE_COUNTY].status, counties[CHENGDE_COUNTY].met_seq) == ("on_time", run.seq[GAOSITAI, "accept"])
    assert (counties[KUANCHENG].status, counties[KUANCHENG].days, counties[KUANCHENG].met_seq) == \
        ("late", 10, run.seq[YUERYA, "accept"])
    for code in (LUANPING, FENGNING, PINGQUAN):
        assert (counties[code].status, counties[code].days) == ("overdue", 15)


def test_replay_before_the_late_acceptance_shows_it_overdue_not_late(run):
    """As of 2015-04-05 峪耳崖镇 is not yet accepted: overdue 5 days with no met row; the same replay a day
    before the deadline shows it pending; 高寺台镇 stays on time in both."""
    early = by_unit(run.replay("2015-04-05T09:00").outcomes("provincial_demo"))
    assert (early[YUERYA].status, early[YUERYA].days, early[YUERYA].met_seq, early[YUERYA].met_at) == \
        ("overdue", 5, None, None)
    assert (early[GAOSITAI].status, early[GAOSITAI].met_seq) == ("on_time", run.seq[GAOSITAI, "accept"])
    before = by_unit(run.replay("2015-03-30T09:00").outcomes("provincial_demo"))
    assert (before[YUERYA].status, before[YUERYA].days) == ("pending", 1)
    assert (before[GAOSITAI].status, before[GAOSITAI].days, before[GAOSITAI].met_seq) == ("pending", 1, None)
    just_after = by_unit(run.replay("2015-04-10T11:00").outcomes("provincial_demo"))
    assert (just_after[YUERYA].status, just_after[YUERYA].days) == ("late", 10)


def test_overdue_days_count_to_the_day_of_now(run):
    """Replayed to the real clock, a township that never moved is overdue by (today − 2015-03-31) days."""
    now = dt.datetime.now(SHANGHAI)
    out = by_unit(run.replay(now).outcomes("provincial_demo"))
    days = (local_date(now) - DEMO_DEADLINE).days
    for code in (ZHANGBAIWAN, WOLONG, DAGE):
        assert (out[code].status, out[code].days) == ("overdue", days)
    assert (out[YUERYA].status, out[YUERYA].days) == ("late", 10)
    assert out[GAOSITAI].status == "on_time"


def test_outcomes_cover_every_milestone_owed(run):
    """Without a milestone, outcomes hold every owed pair; townships owe key_compliance by having started."""
    outcomes = run.replay(NOW).outcomes()
    owed = {(o.unit_code, o.milestone) for o in outcomes}
    assert len(owed) == len(outcomes)
    assert (GAOSITAI, "provincial_demo") in owed and (XIABANCHENG, "provincial_demo") not in owed
    assert {m for u, m in owed if u == XIABANCHENG} == {"key_compliance", "full_coverage"}
    assert {m for u, m in owed if u == GAOSITAI} == {"provincial_demo", "key_compliance", "full_coverage"}
    dage = by_unit(o for o in outcomes if o.milestone == "key_compliance")[DAGE]
    assert (dage.status, dage.met_seq) == ("on_time", run.seq[DAGE, "start"])
    assert_met_by(run, dage, DAGE, "start")


# -- a revoked acceptance ---------------------------------------------------------------------------
def test_revoke_after_acceptance_unmeets_the_milestone(run):
    """高寺台镇 revoked on 2015-05-01 is overdue again from then (not on time); replayed before the revoke it
    is still on time; accepted again on 2015-05-10 it is late by 40 days, met by the new accept row."""
    first_accept = run.seq[GAOSITAI, "accept"]
    run.advance(GAOSITAI, "revoke", "inspector", "2015-05-01T10:00", note="复查发现台账缺失")
    revoked = by_unit(run.replay("2015-05-02T09:00").outcomes("provincial_demo"))
    assert (revoked[GAOSITAI].status, revoked[GAOSITAI].days, revoked[GAOSITAI].met_seq) == ("overdue", 32, None)
    assert revoked[CHENGDE_COUNTY].status == "overdue"  # the county's rule follows its township
    assert by_unit(run.replay(NOW).outcomes("provincial_demo"))[GAOSITAI].met_seq == first_accept
    run.advance(GAOSITAI, "resubmit", "chief", "2015-05-05T10:00")
    second = run.accept(GAOSITAI, "2015-05-10T10:00")
    again = by_unit(run.replay("2015-05-11T09:00").outcomes("provincial_demo"))
    assert (again[GAOSITAI].status, again[GAOSITAI].days, again[GAOSITAI].met_seq) == ("late", 40, second)
    assert second != first_accept
    assert_met_by(run, again[GAOSITAI], GAOSITAI, "accept")
    assert (again[CHENGDE_COUNTY].status, again[CHENGDE_COUNTY].days, again[CHENGDE_COUNTY].met_seq) == \
        ("late", 40, second)


# -- designations are replayed too -----------------------------------------------------------------
def test_designations_after_now_are_not_applied(run):
    """下板城镇, started 2015-04-12 and designated key + county_demo on 2015-05-01: as of 2015-04-15 it owes no
    county_demo and has met key_compliance by starting; as of 2015-05-02 it owes county_demo and key
    acceptance; after it is taken out of county_demo (2015-05-20) it no longer owes county_demo."""
    run.advance(XIABANCHENG, "start", "chief", "2015-04-12T09:00")
    (k, c) = designate(run.db, [DesignateRow(1, XIABANCHENG, "key"), DesignateRow(2, XIABANCHENG, "county_demo")],
                       "tester", at("2015-05-01T09:00"))
    assert k.seq and c.seq

    def owed(now: str) -> dict[str, tuple[str, int, int | None]]:
        return {o.milestone: (o.status, o.days, o.met_seq) for o in run.replay(now).outcomes() if o.unit_code == XIABANCHENG}

    before = owed(NOW)
    assert "county_demo" not in before
    assert before["key_compliance"] == ("on_time", 0, run.seq[XIABANCHENG, "start"])
    after = owed("2015-05-02T09:00")
    assert after["county_demo"] == ("pending", (dt.date(2015, 6, 30) - dt.date(2015, 5, 2)).days, None)
    assert after["key_compliance"][:2] == ("pending", (dt.date(2015, 12, 31) - dt.date(2015, 5, 2)).days)
    designate(run.db, [DesignateRow(1, XIABANCHENG, "county_demo", remove=True)], "tester", at("2015-05-20T09:00"))
    assert "county_demo" in owed("2015-05-19T09:00")
    later = owed("2015-05-21T09:00")
    assert "county_demo" not in later
    assert later["key_compliance"][0] == "pending"  # still key
    assert "county_demo" not in owed(NOW)  # replaying the past again is unchanged by both


def test_registry_cohorts_hold_from_the_start(run):
    """The five provincial demonstration townships of the registry owe provincial_demo from the load on."""
    out = run.replay(T0 + dt.timedelta(hours=1)).outcomes("provincial_demo")
    towns = {o.unit_code: (o.status, o.days) for o in out if o.level == "township"}
    days = (DEMO_DEADLINE - T0.date()).days
    assert towns == dict.fromkeys(PROVINCIAL, ("pending", days))


# -- trend -----------------------------------------------------------------------------------------
def test_trend_points_per_county(run):
    """Each county's series starts on the registry day with its township count; a point is added on each
    day its accepted or started count changed (an apply changes neither), and stops at `now`."""
    trend = run.replay(NOW).trend()
    assert set(trend) == COUNTIES
    load_day = T0.date()
    for code, n in TOWNSHIPS_IN.items():
        assert trend[code][0] == TrendPoint(load_day, 0, 0, n), code
    assert trend[CHENGDE_COUNTY] == [TrendPoint(load_day, 0, 0, 23), TrendPoint(dt.date(2015, 1, 10), 0, 1, 23),
                                     TrendPoint(dt.date(2015, 3, 30), 1, 1, 23)]
    assert trend[KUANCHENG] == [TrendPoint(load_day, 0, 0, 18), TrendPoint(dt.date(2015, 1, 10), 0, 1, 18),
                                TrendPoint(dt.date(2015, 4, 10), 1, 1, 18)]
    assert trend[FENGNING] == [TrendPoint(load_day, 0, 0, 27), TrendPoint(dt.date(2015, 1, 12), 0, 1, 27)]
    assert trend[LUANPING] == [TrendPoint(load_day, 0, 0, 20)]
    # as of an earlier now, the later points are not there yet
    assert run.replay("2015-04-09T23:59").trend()[KUANCHENG] == trend[KUANCHENG][:2]
    assert run.replay("2015-01-10T09:10").trend()[CHENGDE_COUNTY] == trend[CHENGDE_COUNTY][:2]


def test_trend_counts_a_revoke_and_merges_a_day(run):
    """Two starts on one day are one point; a revoke lowers the accepted count on its day."""
    run.advance("130821102", "start", "chief", "2015-05-01T09:00")  # 甲山镇
    run.advance("130821103", "start", "chief", "2015-05-01T15:00")  # 六沟镇
    run.advance(GAOSITAI, "revoke", "inspector", "2015-05-03T10:00", note="复查不合格")
    points = run.replay("2015-05-04T09:00").trend()[CHENGDE_COUNTY]
    assert points[-2:] == [TrendPoint(dt.date(2015, 5, 1), 1, 3, 23), TrendPoint(dt.date(2015, 5, 3), 0, 3, 23)]


# -- the Shanghai day --------------------------------------------------------------------------------
def test_the_deadline_ends_at_shanghai_midnight(chengde):
    """Accepted at 2015-03-31T23:30+08:00 (15:30 UTC) is on time; at 2015-04-01T00:10+08:00 (16:10 UTC, the
    same UTC day) it is 1 day late. Replayed at 00:05 on 04-01, the second is overdue by 1 day."""
    run = Run(chengde)
    demo = frozenset({"provincial_demo"})
    for town in (ZHANGBAIWAN, WOLONG):
        run.advance(town, "start", "chief", "2015-02-01T09:00")
        run.fill(town, demo, "2015-02-02T09:00")
        run.advance(town, "apply", "chief", "2015-03-25T09:00")
    run.accept(ZHANGBAIWAN, "2015-03-31T23:30:00+08:00")
    run.accept(WOLONG, "2015-04-01T00:10:00+08:00")
    midnight = by_unit(run.replay("2015-04-01T00:05:00+08:00").outcomes("provincial_demo"))
    assert (midnight[ZHANGBAIWAN].status, midnight[ZHANGBAIWAN].days) == ("on_time", 0)
    assert (midnight[WOLONG].status, midnight[WOLONG].days, midnight[WOLONG].met_seq) == ("overdue", 1, None)
    before_midnight = by_unit(run.replay("2015-03-31T23:59:59+08:00").outcomes("provincial_demo"))
    assert (before_midnight[WOLONG].status, before_midnight[WOLONG].days) == ("pending", 0)
    out = by_unit(run.replay(NOW).outcomes("provincial_demo"))
    assert (out[ZHANGBAIWAN].status, out[ZHANGBAIWAN].days) == ("on_time", 0)
    assert_met_by(run, out[ZHANGBAIWAN], ZHANGBAIWAN, "accept")
    assert (out[WOLONG].status, out[WOLONG].days) == ("late", 1)
    assert_met_by(run, out[WOLONG], WOLONG, "accept")
    assert out[ZHANGBAIWAN].met_at.astimezone(dt.UTC).date() == out[WOLONG].met_at.astimezone(dt.UTC).date()
    # a `now` written in UTC is read on the Shanghai calendar too
    utc = by_unit(run.replay(dt.datetime(2015, 3, 31, 16, 5, tzinfo=dt.UTC)).outcomes("provincial_demo"))
    assert (utc[WOLONG].status, utc[WOLONG].days) == ("overdue", 1)
    assert (utc[ZHANGBAIWAN].status, utc[ZHANGBAIWAN].days) == ("on_time", 0)


def test_a_replay_of_one_unit_and_its_townships_says_of_it_what_the_whole_replay_says(run):
    """`replay(only=…)` (what `show` uses) gives a township, and a county with its townships, the same
    outcomes as replaying the whole campaign."""
    from sqlalchemy import select

    from anjian.workflow.store.models import Unit

    moment = at(NOW)
    with run.db.read() as session:
        campaign = campaign_in_force(session)
        whole = replay(session, campaign, moment).outcomes()
        for code in (YUERYA, GAOSITAI, DAGE, KUANCHENG, CHENGDE_COUNTY, FENGNING):
            kids = session.scalars(select(Unit.code).where(Unit.parent_code == code)).all()
            scoped = replay(session, campaign, moment, frozenset({code, *kids})).outcomes()
            assert [o for o in scoped if o.unit_code == code] == [o for o in whole if o.unit_code == code], code
