"""`tick_city`: the scheduler moves 承德市 (the campaign itself) into each stage on its first day in
Asia/Shanghai — 2015-01-01, 2015-07-01, 2016-01-01 — and closes it on 2017-01-01; several steps at once
after an outage; each audited as `scheduler`; never before the day."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from support import T0

from anjian.workflow.clock import SHANGHAI, utc_text
from anjian.workflow.services.stages import SCHEDULER, city_state, tick_city
from anjian.workflow.store.integrity import verify
from anjian.workflow.store.models import AuditRow, Unit

CITY = "130800"
STEPS = [  # (first day, trigger, from, to)
    ("2015-01-01", "begin_demonstration", "mobilization", "demonstration"),
    ("2015-07-01", "begin_key_compliance", "demonstration", "key_compliance"),
    ("2016-01-01", "begin_full_coverage", "key_compliance", "full_coverage"),
    ("2017-01-01", "close", "full_coverage", "closed"),
]


def shanghai(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def scheduler_rows(db) -> list[tuple[str, str, str, str, str]]:
    with db.read() as s:
        return [(r.at, r.actor, r.action, r.from_state, r.to_state) for r in s.scalars(
            select(AuditRow).where(AuditRow.unit_code == CITY).order_by(AuditRow.seq))]


def test_nothing_moves_during_the_mobilization_stage(chengde):
    """Through 2014-12-31 the city stays in mobilization and nothing is written."""
    assert tick_city(chengde, T0) == []
    assert tick_city(chengde, shanghai("2014-12-31T23:59:59")) == []
    assert city_state(chengde) == "mobilization"
    assert scheduler_rows(chengde) == []


@pytest.mark.parametrize(("day", "trigger", "source", "dest"), STEPS)
def test_each_stage_date_fires_its_trigger_on_that_day_and_not_before(chengde, day, trigger, source, dest):
    """From the previous state, the last second of the eve moves nothing; the first second of the day fires the trigger."""
    first = dt.date.fromisoformat(day)
    with chengde.write() as s:
        s.get(Unit, CITY).state = source
    eve = dt.datetime.combine(first, dt.time(0), SHANGHAI) - dt.timedelta(seconds=1)
    assert tick_city(chengde, eve) == []
    assert city_state(chengde) == source
    midnight = dt.datetime.combine(first, dt.time(0), SHANGHAI)
    (t,) = tick_city(chengde, midnight)
    assert (t.code, t.trigger, t.from_state, t.to_state) == (CITY, trigger, source, dest)
    assert city_state(chengde) == dest
    assert scheduler_rows(chengde) == [(utc_text(midnight), SCHEDULER, trigger, source, dest)]


def test_the_day_boundary_is_shanghai_s_not_utc(chengde):
    """2014-12-31T16:00Z is already 2015-01-01 in Shanghai and moves the city; 15:59:59Z does not."""
    assert tick_city(chengde, dt.datetime(2014, 12, 31, 15, 59, 59, tzinfo=dt.UTC)) == []
    (t,) = tick_city(chengde, dt.datetime(2014, 12, 31, 16, 0, tzinfo=dt.UTC))
    assert t.to_state == "demonstration"


def test_a_second_tick_on_the_same_day_changes_nothing(chengde):
    """Ticking again after the city moved writes no second audit row."""
    assert len(tick_city(chengde, shanghai("2015-01-01T08:30"))) == 1
    assert tick_city(chengde, shanghai("2015-01-01T08:35")) == []
    assert tick_city(chengde, shanghai("2015-06-30T23:00")) == []
    assert len(scheduler_rows(chengde)) == 1


def test_after_an_outage_every_missed_stage_fires_at_once_in_order(chengde):
    """A first tick on 2016-01-02 fires the three stage triggers in order, each its own audit row as `scheduler`."""
    now = shanghai("2016-01-02T08:30")
    fired = tick_city(chengde, now)
    assert [(t.trigger, t.from_state, t.to_state) for t in fired] == [s[1:] for s in STEPS[:3]]
    assert [t.seq for t in fired] == list(range(fired[0].seq, fired[0].seq + 3))
    assert fired[-1].version == fired[0].version + 2
    assert scheduler_rows(chengde) == [(utc_text(now), SCHEDULER, *s[1:]) for s in STEPS[:3]]
    assert city_state(chengde) == "full_coverage"


def test_after_the_campaign_one_tick_walks_the_city_to_closed(chengde):
    """Started only on 2017-02-01, the scheduler fires all four triggers and the city is closed; the audit chain holds."""
    fired = tick_city(chengde, shanghai("2017-02-01T08:30"))
    assert [t.trigger for t in fired] == [s[1] for s in STEPS]
    assert city_state(chengde) == "closed"
    assert tick_city(chengde, shanghai("2017-02-02T08:30")) == []
    with chengde.read() as s:
        assert verify(s).ok


@pytest.mark.slow  # every day of the campaign, one at a time
def test_the_campaign_s_stage_dates_move_the_city_day_by_day(chengde):
    """Ticking every day at 08:30 from 2014-12-10 to 2017-01-10 moves the city exactly on the four dates."""
    day, moved = dt.date(2014, 12, 10), []
    while day <= dt.date(2017, 1, 10):
        moved += [(day.isoformat(), t.trigger) for t in tick_city(chengde, dt.datetime.combine(day, dt.time(8, 30), SHANGHAI))]
        day += dt.timedelta(days=1)
    assert moved == [(s[0], s[1]) for s in STEPS]


def test_the_actor_is_scheduler_unless_another_is_named(chengde):
    """tick_city audits as `scheduler` by default, and as the actor given when one is."""
    tick_city(chengde, shanghai("2015-01-01T08:30"))
    tick_city(chengde, shanghai("2015-07-01T08:30"), actor="admin")
    assert [r[1] for r in scheduler_rows(chengde)] == ["scheduler", "admin"]


def test_a_registry_without_the_campaign_s_city_is_left_alone(fresh_db, tmp_path):
    """When the campaign's city is not in the registry, tick_city does nothing and writes nothing."""
    from anjian.workflow.services.registry import initialize

    path = tmp_path / "county.csv"
    path.write_text("code,name,level,parent_code,cohorts\n130821,承德县,county,,\n130821106,高寺台镇,township,130821,\n",
                    encoding="utf-8")
    initialize(fresh_db, str(path), None, T0, "admin")
    with fresh_db.read() as s:
        before = s.scalar(select(func.count()).select_from(AuditRow))
    assert tick_city(fresh_db, shanghai("2016-01-02T08:30")) == []
    with fresh_db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditRow)) == before


@pytest.mark.parametrize(("day", "stage"), [
    ("2014-12-15", "mobilization"), ("2015-04-10", "demonstration"), ("2015-09-01", "key_compliance"),
    ("2016-03-01", "full_coverage"), ("2017-01-05", "closed")])
def test_the_stage_follows_the_campaign_dates(chengde, day, stage):
    """stage_on gives the stage the campaign's dates make on a day, whatever the stored state says."""
    from anjian.workflow.services.registry import campaign_in_force
    from anjian.workflow.services.stages import stage_on

    with chengde.read() as session:
        campaign = campaign_in_force(session)
    assert stage_on(campaign, dt.date.fromisoformat(day)) == stage


def test_status_shows_the_stage_of_the_dates_before_the_daemon_ran(chengde, cli):
    """`status` on 2015-04-10 shows 示范乡镇创建阶段 though no daemon moved the stored city state."""
    assert city_state(chengde) == "mobilization"
    r = cli("status", now="2015-04-10T09:00")
    assert r.exit_code == 0, r.output
    assert "承德市：示范乡镇创建阶段" in r.output.splitlines()[0]
    data = cli("status", "--format", "json", now="2015-04-10T09:00")
    import json

    assert json.loads(data.stdout)["city"]["state"] == "demonstration"  # JSON keeps the identifier


def test_progress_report_and_city_show_the_stage_of_the_dates(chengde, cli):
    """The progress report of 2015-04-10 and `show 承德市` say 示范乡镇创建阶段 before any daemon ran."""
    r = cli("report", "progress", "--format", "md", now="2015-04-10T09:00")
    assert r.exit_code == 0, r.output
    assert "全市处于示范乡镇创建阶段" in r.stdout
    shown = cli("show", "承德市", now="2015-04-10T09:00")
    assert "状态：示范乡镇创建阶段" in shown.output
