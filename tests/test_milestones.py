"""Milestones derived from a unit's state and its townships: met, pending or overdue, per cohort and per county."""

from __future__ import annotations

import datetime as dt

import pytest
from support import T0

from anjian.states.campaign import Campaign, builtin_text, load
from anjian.states.guards import Child, Facts
from anjian.states.milestones import milestones
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.engine import machine
from anjian.workflow.formats.output import to_jsonable
from anjian.workflow.services.advance import advance
from anjian.workflow.views.show import show

CAMPAIGN: Campaign = load(builtin_text("chengde-2014"))


def township(state: str, *cohorts: str) -> Facts:
    return Facts("township", "130821100", "下板城镇", state, frozenset(cohorts), CAMPAIGN, T0)


def county(state: str, *children: Child) -> Facts:
    return Facts("county", "130821", "承德县", state, frozenset(), CAMPAIGN, T0, children=children)


def kid(name: str, state: str, *cohorts: str) -> Child:
    return Child(f"code-{name}", name, state, frozenset(cohorts))


def status(facts: Facts, today: dt.date) -> dict[str, tuple[str, int]]:
    """Milestone id → (status, days) for the unit on `today`."""
    return {m.id: (m.status, m.days) for m in milestones(facts, CAMPAIGN, today)}


# -- townships --------------------------------------------------------------------------------------
def test_an_ordinary_township_owes_only_starting_by_key_compliance_and_full_coverage():
    """A township in no cohort owes key_compliance (to have started) and full_coverage, with days left to each."""
    assert status(township("not_started"), dt.date(2015, 6, 1)) == {
        "key_compliance": ("pending", 213), "full_coverage": ("pending", 579)}


def test_an_ordinary_township_meets_key_compliance_once_started():
    """For a township outside the key list, being in any state past not_started meets key_compliance."""
    for state in ("building", "applied", "rectifying", "accepted"):
        assert status(township(state), dt.date(2016, 1, 5))["key_compliance"] == ("met", 0)


def test_an_ordinary_township_not_started_after_the_deadline_is_overdue():
    """An ordinary township that never started is overdue for key_compliance, counted in days late."""
    assert status(township("not_started"), dt.date(2016, 1, 5))["key_compliance"] == ("overdue", 5)


def test_a_key_township_owes_acceptance_by_key_compliance():
    """A key township meets key_compliance only when accepted; building is not enough."""
    assert status(township("building", "key"), dt.date(2015, 12, 1))["key_compliance"] == ("pending", 30)
    assert status(township("accepted", "key"), dt.date(2015, 12, 1))["key_compliance"] == ("met", 0)
    assert status(township("building", "key"), dt.date(2016, 2, 1))["key_compliance"] == ("overdue", 32)


def test_the_deadline_day_is_still_pending_and_the_next_day_overdue():
    """A deadline is met by the end of its day: on 2015-12-31 there are 0 days left, on 2016-01-01 it is 1 day late."""
    assert status(township("applied", "key"), dt.date(2015, 12, 31))["key_compliance"] == ("pending", 0)
    assert status(township("applied", "key"), dt.date(2016, 1, 1))["key_compliance"] == ("overdue", 1)


def test_a_provincial_demo_township_owes_acceptance_by_march_2015():
    """A provincial demonstration township owes provincial_demo (accepted) by 2015-03-31, besides the general ones."""
    s = status(township("building", "provincial_demo"), dt.date(2015, 4, 2))
    assert s == {"provincial_demo": ("overdue", 2), "key_compliance": ("met", 0), "full_coverage": ("pending", 639)}
    assert status(township("accepted", "provincial_demo"), dt.date(2015, 4, 2))["provincial_demo"] == ("met", 0)


def test_a_county_demo_township_owes_acceptance_by_june_and_as_a_key_township():
    """A county demonstration township (always key) owes county_demo and key_compliance, both as accepted."""
    s = status(township("rectifying", "key", "county_demo"), dt.date(2015, 6, 20))
    assert s == {"county_demo": ("pending", 10), "key_compliance": ("pending", 194), "full_coverage": ("pending", 560)}
    assert set(status(township("accepted", "key", "county_demo"), dt.date(2015, 6, 20)).values()) == {("met", 0)}


def test_a_heavy_task_township_has_the_deadlines_of_an_ordinary_one():
    """Heavy-task only changes staffing: such a township owes what an ordinary one owes."""
    day = dt.date(2015, 9, 1)
    assert status(township("not_started", "heavy_task"), day) == status(township("not_started"), day)


def test_full_coverage_needs_every_township_accepted():
    """full_coverage is met by an accepted township only, whatever its cohort."""
    assert status(township("applied"), dt.date(2017, 1, 3))["full_coverage"] == ("overdue", 3)
    assert status(township("accepted"), dt.date(2017, 1, 3))["full_coverage"] == ("met", 0)


def test_townships_never_owe_county_milestones():
    """plan_submission and demo_review are the counties' milestones, not the townships'."""
    ids = set(status(township("not_started", "key", "county_demo", "provincial_demo"), dt.date(2015, 1, 1)))
    assert ids == {"provincial_demo", "county_demo", "key_compliance", "full_coverage"}


# -- counties ---------------------------------------------------------------------------------------
def test_plan_submission_is_met_once_the_county_submitted_its_plan():
    """A county still in mobilization owes its plan by 2014-12-30; any later state has met it."""
    assert status(county("mobilization"), dt.date(2014, 12, 15))["plan_submission"] == ("pending", 15)
    assert status(county("mobilization"), dt.date(2014, 12, 31))["plan_submission"] == ("overdue", 1)
    for state in ("demonstration", "key_compliance", "full_coverage", "standardized"):
        assert status(county(state), dt.date(2014, 12, 31))["plan_submission"] == ("met", 0)


def test_provincial_demo_only_applies_to_counties_with_a_provincial_demo_township():
    """A county without a provincial demonstration township does not owe provincial_demo at all."""
    without = county("demonstration", kid("甲山镇", "building"))
    assert "provincial_demo" not in status(without, dt.date(2015, 4, 1))
    with_one = county("demonstration", kid("高寺台镇", "building", "provincial_demo"), kid("甲山镇", "building"))
    assert status(with_one, dt.date(2015, 4, 1))["provincial_demo"] == ("overdue", 1)
    done = county("demonstration", kid("高寺台镇", "accepted", "provincial_demo"), kid("甲山镇", "building"))
    assert status(done, dt.date(2015, 4, 1))["provincial_demo"] == ("met", 0)


def test_county_demo_needs_one_to_three_accepted_demonstration_townships():
    """county_demo is met by 1–3 designated and accepted demonstration townships, not by none or four."""
    day = dt.date(2015, 7, 2)
    assert status(county("demonstration"), day)["county_demo"] == ("overdue", 2)
    one = county("demonstration", kid("下板城镇", "accepted", "key", "county_demo"))
    assert status(one, day)["county_demo"] == ("met", 0)
    late = county("demonstration", kid("下板城镇", "accepted", "key", "county_demo"),
                  kid("上板城镇", "applied", "key", "county_demo"))
    assert status(late, day)["county_demo"] == ("overdue", 2)
    four = county("demonstration", *(kid(f"示范{n}", "accepted", "key", "county_demo") for n in range(4)))
    assert status(four, day)["county_demo"] == ("overdue", 2)


def test_demo_review_is_met_once_the_city_approved_the_demonstration_work():
    """demo_review is met when the county has moved past demonstration."""
    assert status(county("demonstration"), dt.date(2015, 7, 31))["demo_review"] == ("pending", 0)
    assert status(county("key_compliance"), dt.date(2015, 8, 1))["demo_review"] == ("met", 0)


def test_county_key_compliance_needs_key_townships_accepted_and_the_others_started():
    """A county meets key_compliance when every key township is accepted and every other one has started."""
    day = dt.date(2015, 12, 1)
    good = county("key_compliance", kid("下板城镇", "accepted", "key"), kid("甲山镇", "building"))
    assert status(good, day)["key_compliance"] == ("met", 0)
    idle = county("key_compliance", kid("下板城镇", "accepted", "key"), kid("甲山镇", "not_started"))
    assert status(idle, day)["key_compliance"] == ("pending", 30)
    key_late = county("key_compliance", kid("下板城镇", "rectifying", "key"), kid("甲山镇", "building"))
    assert status(key_late, day)["key_compliance"] == ("pending", 30)


def test_county_full_coverage_needs_every_township_accepted():
    """A county meets full_coverage when all its townships are accepted."""
    day = dt.date(2016, 6, 30)
    assert status(county("full_coverage", kid("甲山镇", "accepted"), kid("下板城镇", "accepted", "key")), day)[
        "full_coverage"] == ("met", 0)
    assert status(county("full_coverage", kid("甲山镇", "applied"), kid("下板城镇", "accepted", "key")), day)[
        "full_coverage"] == ("pending", 184)


def test_milestones_come_in_deadline_order_with_their_names_and_dates():
    """Each status carries the milestone's name and ISO deadline, in the campaign's order."""
    ms = milestones(county("mobilization", kid("高寺台镇", "building", "provincial_demo")), CAMPAIGN, dt.date(2014, 12, 15))
    assert [(m.id, m.deadline.isoformat()) for m in ms] == [
        ("plan_submission", "2014-12-30"), ("provincial_demo", "2015-03-31"), ("county_demo", "2015-06-30"),
        ("demo_review", "2015-07-31"), ("key_compliance", "2015-12-31"), ("full_coverage", "2016-12-31")]
    assert ms[0].name == "县区推进方案报市安委会办公室"


# -- revoke -----------------------------------------------------------------------------------------
def test_revoke_makes_a_met_milestone_unmet_again():
    """Revoking an accepted key township through the machine turns its met key_compliance back to pending."""
    day = dt.date(2015, 11, 1)
    accepted = township("accepted", "key")
    assert status(accepted, day)["key_compliance"] == ("met", 0)
    accepted.note = "复查发现台账缺失"
    after = machine.fire(accepted, "revoke")
    assert after == "rectifying"
    assert status(township(after, "key"), day)["key_compliance"] == ("pending", 60)


def test_revoke_in_the_database_is_reflected_in_show_without_storing_milestones(chengde, fill_checklist):
    """After accept then revoke in a real database, `show` reports the township's and county's milestone as unmet."""
    now = dt.datetime(2015, 3, 10, 9, 0, tzinfo=SHANGHAI)
    fill_checklist(chengde, "130821106", {"provincial_demo"})
    advance(chengde, "130821106", "start", "chief", now)
    advance(chengde, "130821106", "apply", "chief", now)
    advance(chengde, "130821106", "accept", "inspector", now, note="六项标准均达到")

    def provincial(unit: str) -> dict:
        (m,) = [m for m in show(chengde, unit, now).milestones if m.id == "provincial_demo"]
        return m

    assert provincial("130821106").status == "met"
    assert provincial("130821").status == "met"
    revoked = advance(chengde, "130821106", "revoke", "inspector", now, note="复查发现执法车辆挪用")
    assert (revoked.from_state, revoked.to_state) == ("accepted", "rectifying")
    assert to_jsonable(provincial("130821106")) | {"name": None} == {
        "id": "provincial_demo", "name": None, "deadline": "2015-03-31", "status": "pending", "days": 21}
    assert provincial("130821").status == "pending"
    later = dt.datetime(2015, 4, 1, 9, 0, tzinfo=SHANGHAI)
    assert [m.status for m in show(chengde, "130821106", later).milestones if m.id == "provincial_demo"] == [
        "overdue"]


@pytest.mark.parametrize("unit", ["130802", "130821"])
def test_show_lists_provincial_demo_only_for_counties_that_have_one(chengde, unit):
    """In the Chengde registry 承德县 has a provincial demonstration township and 双桥区 has none."""
    ids = [m.id for m in show(chengde, unit, T0).milestones]
    assert ("provincial_demo" in ids) is (unit == "130821")
    assert "plan_submission" in ids
