"""The reminder ladder on China's real 2015–2017 calendar: rungs 30/14/7/3/1 days before a deadline moved
back to a working day, overdue notices after it moved forward, and the one rung due on a given day."""

from __future__ import annotations

import datetime as dt

from anjian.workflow.reminders.ladder import Ladder, latest_due, overdue_rungs, reminder_rungs, rung_order
from anjian.workflow.reminders.workdays import WorkCalendar

D = dt.date.fromisoformat
CAL = WorkCalendar()
LADDER = Ladder()


def plan(deadline: str) -> list[tuple[str, str, str]]:
    """(rung, nominal day, sending day) of each reminder before the deadline."""
    return [(r.name, r.nominal.isoformat(), r.day.isoformat()) for r in reminder_rungs(D(deadline), LADDER, CAL)]


def overdue(deadline: str, until: str) -> list[tuple[str, str]]:
    return [(r.nominal.isoformat(), r.day.isoformat()) for r in overdue_rungs(D(deadline), LADDER, CAL, D(until))]


def due(deadline: str, today: str) -> str | None:
    rung = latest_due(D(deadline), D(today), LADDER, CAL)
    return rung and f"{rung.name}@{rung.day}"


# -- reminders -------------------------------------------------------------------------------------
def test_provincial_demo_d30_falls_on_a_sunday_and_moves_to_the_make_up_saturday():
    """provincial_demo 2015-03-31: d-30 is Sunday 2015-03-01, sent on Saturday 2015-02-28, a make-up working day."""
    assert plan("2015-03-31") == [
        ("d-30", "2015-03-01", "2015-02-28"),
        ("d-14", "2015-03-17", "2015-03-17"),
        ("d-7", "2015-03-24", "2015-03-24"),
        ("d-3", "2015-03-28", "2015-03-27"),
        ("d-1", "2015-03-30", "2015-03-30"),
    ]


def test_shifted_rungs_say_so():
    """A rung moved off its nominal day is marked shifted; one sent on its own day is not."""
    rungs = {r.name: r for r in reminder_rungs(D("2015-03-31"), LADDER, CAL)}
    assert rungs["d-30"].shifted and rungs["d-3"].shifted
    assert not rungs["d-14"].shifted and not rungs["d-7"].shifted and not rungs["d-1"].shifted


def test_plan_submission_reminders_of_december_2014():
    """plan_submission 2014-12-30: d-30 (a Sunday) moves to Friday 11-28 and d-3 (a Saturday) to Friday 12-26."""
    assert [(n, d) for n, _, d in plan("2014-12-30")] == [
        ("d-30", "2014-11-28"), ("d-14", "2014-12-16"), ("d-7", "2014-12-23"), ("d-3", "2014-12-26"), ("d-1", "2014-12-29")]


def test_full_coverage_reminders_of_december_2016():
    """full_coverage 2016-12-31: the Saturday rungs d-14 and d-7 are sent on the Fridays before."""
    assert [(n, d) for n, _, d in plan("2016-12-31")] == [
        ("d-30", "2016-12-01"), ("d-14", "2016-12-16"), ("d-7", "2016-12-23"), ("d-3", "2016-12-28"), ("d-1", "2016-12-30")]


def test_rungs_that_land_on_one_day_merge_into_the_later_rung():
    """Before 2015-10-08, d-7, d-3 and d-1 all fall in the National Day holiday: one reminder on 09-30, named d-1."""
    assert plan("2015-10-08") == [
        ("d-30", "2015-09-08", "2015-09-08"),
        ("d-14", "2015-09-24", "2015-09-24"),
        ("d-1", "2015-10-07", "2015-09-30"),
    ]


def test_the_spring_festival_pulls_three_rungs_back_to_the_17th():
    """Before 2015-02-25, d-7, d-3 and d-1 fall in 02-18..24 and merge on Tuesday 2015-02-17."""
    assert [(n, d) for n, _, d in plan("2015-02-25")] == [("d-30", "2015-01-26"), ("d-14", "2015-02-11"), ("d-1", "2015-02-17")]


def test_a_rung_on_a_make_up_sunday_stays_on_that_sunday():
    """Before 2015-02-16, d-1 is Sunday 2015-02-15, a working day, so it is not moved."""
    rungs = {r.name: r for r in reminder_rungs(D("2015-02-16"), LADDER, CAL)}
    assert rungs["d-1"].day == D("2015-02-15")
    assert not rungs["d-1"].shifted


def test_every_reminder_is_on_a_working_day_before_its_deadline():
    """For every deadline of 2015–2016, each reminder goes out on a working day before it, in rung order."""
    deadline = D("2015-01-01")
    while deadline <= D("2016-12-31"):
        rungs = reminder_rungs(deadline, LADDER, CAL)
        assert all(CAL.is_workday(r.day) and r.day <= r.nominal < deadline for r in rungs)
        assert [r.day for r in rungs] == sorted({r.day for r in rungs})
        assert rungs[-1].name == "d-1"
        deadline += dt.timedelta(days=1)


# -- overdue notices -------------------------------------------------------------------------------
def test_overdue_in_a_holiday_moves_to_the_next_working_day():
    """key_compliance 2015-12-31: o+1 is New Year's Day 2016 and goes out on Monday 2016-01-04."""
    assert overdue("2015-12-31", "2016-01-22") == [
        ("2016-01-01", "2016-01-04"), ("2016-01-08", "2016-01-08"), ("2016-01-15", "2016-01-15"), ("2016-01-22", "2016-01-22")]


def test_overdue_after_national_day_merges_and_never_precedes_the_deadline():
    """Late from 2015-09-30: o+1 (10-01) and o+8 (10-08) both go out on 10-08, once; none inside the holiday."""
    rungs = overdue_rungs(D("2015-09-30"), LADDER, CAL, D("2015-10-31"))
    assert [r.day.isoformat() for r in rungs] == ["2015-10-08", "2015-10-15", "2015-10-22", "2015-10-29"]
    assert len({r.name for r in rungs}) == len(rungs)


def test_full_coverage_overdue_in_january_2017_lands_on_the_make_up_sunday():
    """Late from 2016-12-31: 01-03 (after the New Year holiday), 01-09, 01-16 and Sunday 01-22, a make-up day."""
    assert [d for _, d in overdue("2016-12-31", "2017-01-31")] == ["2017-01-03", "2017-01-09", "2017-01-16", "2017-01-22"]


def test_an_overdue_rung_beyond_until_is_not_listed():
    """o+29 of 2016-12-31 is nominally 2017-01-29 but goes out 02-03, after the Spring Festival: not by 01-31."""
    assert all(r.day <= D("2017-01-31") for r in overdue_rungs(D("2016-12-31"), LADDER, CAL, D("2017-01-31")))
    assert overdue_rungs(D("2016-12-31"), LADDER, CAL, D("2017-02-03"))[-1].day == D("2017-02-03")


def test_every_overdue_notice_is_on_a_working_day_after_its_deadline():
    """For every deadline of 2015–2016, each overdue notice of the next ten weeks is on a working day after it."""
    deadline = D("2015-01-01")
    while deadline <= D("2016-12-31"):
        rungs = overdue_rungs(deadline, LADDER, CAL, deadline + dt.timedelta(days=70))
        assert rungs and all(CAL.is_workday(r.day) and deadline < r.nominal <= r.day for r in rungs)
        assert [r.day for r in rungs] == sorted({r.day for r in rungs})
        deadline += dt.timedelta(days=1)


# -- the rung due today ----------------------------------------------------------------------------
def test_nothing_is_due_before_the_first_rung():
    """On 2015-02-27, the day before provincial_demo's d-30 rung, nothing is due."""
    assert due("2015-03-31", "2015-02-27") is None


def test_the_rung_of_the_day_is_due_on_its_day():
    """On a rung's sending day that rung is due, also on a make-up Saturday."""
    assert due("2015-03-31", "2015-02-28") == "d-30@2015-02-28"
    assert due("2015-03-31", "2015-03-27") == "d-3@2015-03-27"


def test_between_rungs_the_latest_passed_rung_is_due():
    """After a gap, only the latest rung whose day has come is due: not a burst of the earlier ones."""
    assert due("2015-03-31", "2015-03-26") == "d-7@2015-03-24"
    assert due("2015-03-31", "2015-03-31") == "d-1@2015-03-30"


def test_no_overdue_rung_is_due_inside_the_holiday_after_a_deadline():
    """Late from 2015-09-30, nothing is due on 10-01..07: the first overdue notice waits for 10-08."""
    for n in range(1, 8):
        assert due("2015-09-30", f"2015-10-0{n}") is None
    assert due("2015-09-30", "2015-10-08").endswith("@2015-10-08")


def test_after_a_long_outage_only_the_latest_overdue_rung_is_due():
    """Late from 2015-03-31 and looked at again on 2015-05-06: o+36, not the five missed before it."""
    assert due("2015-03-31", "2015-05-06") == "o+36@2015-05-06"


def test_rung_order_grows_from_d30_to_the_overdue_rungs():
    """Later rungs sort after earlier ones, so a rung already passed is never sent again."""
    names = ["d-30", "d-14", "d-7", "d-3", "d-1", "o+1", "o+8", "o+15", "o+400"]
    orders = [rung_order(n, LADDER) for n in names]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert all(rung_order(r.name, LADDER) == r.order for r in reminder_rungs(D("2015-03-31"), LADDER, CAL))
    assert all(rung_order(r.name, LADDER) == r.order for r in overdue_rungs(D("2015-03-31"), LADDER, CAL, D("2015-06-30")))
