"""Meta-tests over the machines declared in `states.machines`, and every trigger fired from every state
through `workflow.machine` and the real `transitions` Machine."""

from __future__ import annotations

import datetime as dt
from collections import deque
from itertools import pairwise

import pytest
from support import checklist_values
from transitions import MachineError

from anjian.states.campaign import Campaign, builtin_text, load
from anjian.states.guards import GUARDS, Child, Evidence, Facts
from anjian.states.labels import STATE_NAMES, TRIGGER_NAMES, state_name
from anjian.states.machines import CITY_TRANSITIONS, SPECS, STAGE_TRIGGERS
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.engine import machine

CAMPAIGN: Campaign = load(builtin_text("chengde-2014"))

CONTRACT_TOWNSHIP = {
    ("start", "not_started", "building"),
    ("apply", "building", "applied"),
    ("accept", "applied", "accepted"),
    ("reject", "applied", "rectifying"),
    ("resubmit", "rectifying", "applied"),
    ("revoke", "accepted", "rectifying"),
}
CONTRACT_COUNTY = {
    ("submit_plan", "mobilization", "demonstration"),
    ("approve_demonstration", "demonstration", "key_compliance"),
    ("certify_key_compliance", "key_compliance", "full_coverage"),
    ("certify_full_coverage", "full_coverage", "standardized"),
}

EVERY_TRIGGER_FROM_EVERY_STATE = [
    pytest.param(level, trigger, state, id=f"{level}-{trigger}-from-{state}")
    for level, spec in SPECS.items()
    for trigger in spec.triggers
    for state in spec.states
]


def ready_facts(level: str, state: str) -> Facts:
    """Facts of a unit in `state` that satisfy every guard of every trigger of its level."""
    if level == "township":
        return Facts("township", "130821106", "高寺台镇", state, frozenset(), CAMPAIGN,
                     dt.datetime(2015, 3, 1, 9, 0, tzinfo=SHANGHAI), checklist=checklist_values(),
                     actor="inspector", note="验收合格", last_applicant="chief")
    if level == "county":
        kids = (
            Child("130821106", "高寺台镇", "accepted", frozenset({"provincial_demo"})),
            Child("130821100", "下板城镇", "accepted", frozenset({"key", "county_demo"})),
            Child("130821101", "上板城镇", "accepted", frozenset({"key"})),
            Child("130821102", "甲山镇", "accepted", frozenset()),
        )
        return Facts("county", "130821", "承德县", state, frozenset(), CAMPAIGN,
                     dt.datetime(2015, 3, 1, 9, 0, tzinfo=SHANGHAI),
                     checklist={"county.leadership_group": "县长任组长，承县政字[2014]1号"}, children=kids,
                     actor="county_official", note="示范创建验收合格",
                     evidence=(Evidence("evidence/plan.pdf", "0" * 64),))
    return Facts("city", "130800", "承德市", state, frozenset(), CAMPAIGN,
                 dt.datetime(2017, 1, 1, 0, 0, tzinfo=SHANGHAI))


def reachable(level: str) -> set[str]:
    spec = SPECS[level]
    seen, todo = {spec.initial}, deque([spec.initial])
    while todo:
        here = todo.popleft()
        for t in spec.transitions:
            if t["source"] == here and t["dest"] not in seen:
                seen.add(t["dest"])
                todo.append(t["dest"])
    return seen


def test_township_machine_matches_the_contract():
    """The township machine has exactly the contract's states, initial state and triggers with their sources and dests."""
    spec = SPECS["township"]
    assert list(spec.states) == ["not_started", "building", "applied", "rectifying", "accepted"]
    assert spec.initial == "not_started"
    assert {(t["trigger"], t["source"], t["dest"]) for t in spec.transitions} == CONTRACT_TOWNSHIP
    assert set(machine.triggers("township")) == {trigger for trigger, _, _ in CONTRACT_TOWNSHIP}


def test_county_machine_matches_the_contract():
    """The county machine has exactly the contract's states and triggers, moving one stage forward each."""
    spec = SPECS["county"]
    assert list(spec.states) == ["mobilization", "demonstration", "key_compliance", "full_coverage", "standardized"]
    assert spec.initial == "mobilization"
    assert {(t["trigger"], t["source"], t["dest"]) for t in spec.transitions} == CONTRACT_COUNTY
    assert set(machine.triggers("county")) == {trigger for trigger, _, _ in CONTRACT_COUNTY}


def test_city_machine_has_the_campaign_stages_then_closed():
    """The city machine's states are the built-in campaign's four stages in order, then `closed`."""
    spec = SPECS["city"]
    stages = [s.id for s in CAMPAIGN.stages]
    assert stages == ["mobilization", "demonstration", "key_compliance", "full_coverage"]
    assert list(spec.states) == [*stages, "closed"]
    assert spec.initial == "mobilization"
    chain = [(t["source"], t["dest"]) for t in spec.transitions]
    assert chain == list(pairwise(spec.states))


def test_city_transitions_are_moved_by_the_stage_date_only():
    """Every city transition is guarded by `stage_date_reached` alone, and each stage has its entering trigger."""
    assert all(t["conditions"] == ["stage_date_reached"] for t in CITY_TRANSITIONS)
    assert STAGE_TRIGGERS == {"demonstration": "begin_demonstration", "key_compliance": "begin_key_compliance",
                              "full_coverage": "begin_full_coverage", "closed": "close"}


@pytest.mark.parametrize("level", sorted(SPECS))
def test_every_transition_names_existing_states(level):
    """Each declared transition's source and dest are states of its own machine."""
    spec = SPECS[level]
    for t in spec.transitions:
        assert t["source"] in spec.states, t
        assert t["dest"] in spec.states, t
    assert spec.initial in spec.states


@pytest.mark.parametrize("level", sorted(SPECS))
def test_every_condition_names_a_guard_of_its_level(level):
    """Each condition of a transition is a guard registered in GUARDS for that machine's level."""
    for t in SPECS[level].transitions:
        for condition in t["conditions"]:
            assert condition in GUARDS[level], (t["trigger"], condition)


@pytest.mark.parametrize("level", sorted(SPECS))
def test_every_state_is_reachable_from_the_initial_state(level):
    """Every state other than the initial one can be reached by some sequence of triggers."""
    assert reachable(level) == set(SPECS[level].states)


@pytest.mark.parametrize("level", sorted(SPECS))
def test_each_trigger_has_exactly_one_transition(level):
    """A trigger is declared once per machine, so `check` and the Machine agree on its single source."""
    triggers = [t["trigger"] for t in SPECS[level].transitions]
    assert len(triggers) == len(set(triggers))


@pytest.mark.parametrize("level", sorted(SPECS))
def test_every_state_and_trigger_has_a_chinese_name(level):
    """Officials read a declared Chinese name for each state and each trigger, never a bare identifier."""
    spec = SPECS[level]
    for state in spec.states:
        assert (level, state) in STATE_NAMES
        assert state_name(level, state) != state
    for trigger in spec.triggers:
        assert trigger in TRIGGER_NAMES


@pytest.mark.parametrize("level", sorted(SPECS))
def test_the_shared_machine_is_built_from_the_declared_data(level):
    """`machine(level)` is one cached transitions Machine whose states and events are the declared ones."""
    m = machine.machine(level)
    assert m is machine.machine(level)
    assert set(m.states) == set(SPECS[level].states)
    assert set(m.events) == set(SPECS[level].triggers)


@pytest.mark.parametrize(("level", "trigger", "state"), EVERY_TRIGGER_FROM_EVERY_STATE)
def test_every_trigger_from_every_state(level, trigger, state):
    """From its source a satisfied trigger fires to its declared dest; from any other state it is refused as "当前状态"."""
    t = SPECS[level].transition(trigger)
    facts = ready_facts(level, state)
    verdict = machine.check(facts, trigger)
    assert verdict.dest == t["dest"]
    if state == t["source"]:
        assert verdict.allowed, verdict.unmet
        assert verdict.unmet == ()
        assert machine.fire(facts, trigger) == t["dest"]
    else:
        assert not verdict.allowed
        (reason,) = verdict.unmet
        assert reason.startswith("当前状态")
        assert state_name(level, state) in reason
        assert state_name(level, t["source"]) in reason
        with pytest.raises(MachineError):
            machine.fire(facts, trigger)


def test_check_refuses_an_unknown_trigger():
    """A trigger that is not declared for the level is a KeyError, not a silent refusal."""
    with pytest.raises(KeyError):
        machine.check(ready_facts("township", "not_started"), "submit_plan")


def test_fire_goes_through_the_guards_of_the_real_machine():
    """The transitions Machine consults the named guards itself: an unmet guard stops `fire` even without `check`."""
    facts = ready_facts("township", "building")
    facts.checklist = {}
    assert not machine.check(facts, "apply").allowed
    with pytest.raises(RuntimeError, match="apply refused by the machine"):
        machine.fire(facts, "apply")


def test_the_shared_machine_never_accumulates_models():
    """Firing for many units leaves the shared Machine with no models, and each unit's state stays its own."""
    before = ready_facts("township", "not_started")
    results = [machine.fire(ready_facts("township", "not_started"), "start") for _ in range(300)]
    results += [machine.fire(ready_facts("county", "mobilization"), "submit_plan") for _ in range(50)]
    assert results == ["building"] * 300 + ["demonstration"] * 50
    for level in SPECS:
        assert machine.machine(level).models == []
    assert before.state == "not_started"
    assert machine.check(before, "start").allowed


def test_a_full_township_round_trip_through_the_machine():
    """start, apply, reject, resubmit, accept, revoke, resubmit, accept walks the township through every state."""
    state = "not_started"
    seen = [state]
    for trigger in ["start", "apply", "reject", "resubmit", "accept", "revoke", "resubmit", "accept"]:
        facts = ready_facts("township", state)
        assert machine.check(facts, trigger).allowed
        state = machine.fire(facts, trigger)
        seen.append(state)
    assert seen == ["not_started", "building", "applied", "rectifying", "applied", "accepted", "rectifying",
                    "applied", "accepted"]
    assert set(seen) == set(SPECS["township"].states)
