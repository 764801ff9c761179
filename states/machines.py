"""The three machines of a campaign, declared as data.

States are lists, transitions are dicts, guards are named by string (see `guards.py`). The engine
builds one shared `transitions.Machine` per campaign and unit type and fires it for one loaded row at a time.

What is here is the engine's default shape. A campaign's file shapes its own (`states.campaign`):
- the city machine is always its `[[stages]]`, in order, then `closed` (`city_spec`): a campaign of three
  stages has a city machine of three stages, entered by `begin_<stage>` on each stage's first day;
- the county machine is the one below unless the file declares `[machines.county]` (its states, and its
  transitions with their guards and the roles that may fire them);
- the township machine is the standard's acceptance procedure, the same in every campaign;
- the guards of a trigger may be named again in `[triggers.LEVEL]`, with guards it declares in `[guards.NAME]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOWNSHIP_STATES = ["not_started", "building", "applied", "rectifying", "accepted"]
COUNTY_STATES = ["mobilization", "demonstration", "key_compliance", "full_coverage", "standardized"]
CITY_STATES = ["mobilization", "demonstration", "key_compliance", "full_coverage", "closed"]

TOWNSHIP_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start", "source": "not_started", "dest": "building", "conditions": []},
    {"trigger": "apply", "source": "building", "dest": "applied", "conditions": ["checklist_complete"]},
    {
        "trigger": "accept",
        "source": "applied",
        "dest": "accepted",
        "conditions": ["inspection_note_given", "inspector_is_not_applicant"],
    },
    {
        "trigger": "reject",
        "source": "applied",
        "dest": "rectifying",
        "conditions": ["rejection_reason_given", "inspector_is_not_applicant"],
    },
    {"trigger": "resubmit", "source": "rectifying", "dest": "applied", "conditions": ["checklist_complete"]},
    {
        "trigger": "revoke",
        "source": "accepted",
        "dest": "rectifying",
        "conditions": ["reinspection_finding_given", "inspector_is_not_applicant"],
    },
]

COUNTY_TRANSITIONS: list[dict[str, Any]] = [
    {
        "trigger": "submit_plan",
        "source": "mobilization",
        "dest": "demonstration",
        "conditions": ["plan_document_attached", "county_checklist_complete"],
    },
    {
        "trigger": "approve_demonstration",
        "source": "demonstration",
        "dest": "key_compliance",
        "conditions": ["review_note_given"],
    },
    {
        "trigger": "certify_key_compliance",
        "source": "key_compliance",
        "dest": "full_coverage",
        "conditions": [],
    },
    {
        "trigger": "certify_full_coverage",
        "source": "full_coverage",
        "dest": "standardized",
        "conditions": ["all_townships_accepted"],
    },
]

CITY_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "begin_demonstration", "source": "mobilization", "dest": "demonstration", "conditions": ["stage_date_reached"]},
    {"trigger": "begin_key_compliance", "source": "demonstration", "dest": "key_compliance", "conditions": ["stage_date_reached"]},
    {"trigger": "begin_full_coverage", "source": "key_compliance", "dest": "full_coverage", "conditions": ["stage_date_reached"]},
    {"trigger": "close", "source": "full_coverage", "dest": "closed", "conditions": ["stage_date_reached"]},
]


CLOSED = "closed"  # the city's state after its last stage: the campaign is over
# Audit actions that are not transitions: no campaign may name a trigger of its own after one of them.
RESERVED = frozenset({
    "designate", "undesignate", "record", "denied", "refused", "signin", "signout", "signin_failed", "remind",
    "notice", "notice_settle", "checkpoint", "circular", "calendar_load", "campaign_load", "campaign_add",
    "registry_load", "contact_add", "contact_remove", "contact_update", "user_add", "user_edit", "user_enable",
    "user_disable", "password_change", "password_set", "init", "effective",
})


def begin_trigger(stage: str) -> str:
    """The city's trigger that enters a stage on its first day."""
    return f"begin_{stage}"


def city_spec(stages: tuple[str, ...] | list[str]) -> MachineSpec:
    """The city machine of a campaign with these stages: each stage after the first begins on its date
    (`stage_date_reached`), and the campaign closes after the last."""
    states = (*stages, CLOSED)
    transitions = [{"trigger": begin_trigger(dest), "source": src, "dest": dest, "conditions": ["stage_date_reached"]}
                   for src, dest in zip(stages, stages[1:], strict=False)]
    transitions.append({"trigger": "close", "source": stages[-1], "dest": CLOSED, "conditions": ["stage_date_reached"]})
    return MachineSpec("city", tuple(states), stages[0], tuple(transitions))


@dataclass(frozen=True)
class MachineSpec:
    """One unit type's machine: its states, initial state and transitions, all plain data."""

    level: str
    states: tuple[str, ...]
    initial: str
    transitions: tuple[dict[str, Any], ...]

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t["trigger"] for t in self.transitions))

    def transition(self, trigger: str) -> dict[str, Any] | None:
        return next((t for t in self.transitions if t["trigger"] == trigger), None)

    def rank(self, state: str) -> int:
        return self.states.index(state)

    def roles(self, trigger: str) -> frozenset[str] | None:
        """The roles the campaign's file says may fire `trigger` (its `by`), or None where it says nothing."""
        t = self.transition(trigger)
        return frozenset(t["by"]) if t and t.get("by") is not None else None

    def moves(self, trigger: str) -> bool:
        return self.transition(trigger) is not None


SPECS: dict[str, MachineSpec] = {
    "township": MachineSpec("township", tuple(TOWNSHIP_STATES), "not_started", tuple(TOWNSHIP_TRANSITIONS)),
    "county": MachineSpec("county", tuple(COUNTY_STATES), "mobilization", tuple(COUNTY_TRANSITIONS)),
    "city": MachineSpec("city", tuple(CITY_STATES), "mobilization", tuple(CITY_TRANSITIONS)),
}

# The city machine's trigger that enters each stage on the stage's first day.
STAGE_TRIGGERS = {t["dest"]: t["trigger"] for t in CITY_TRANSITIONS}
assert city_spec(CITY_STATES[:-1]) == SPECS["city"]  # Chengde's four stages make the engine's city machine


def specs(campaign=None) -> dict[str, MachineSpec]:
    """The machines of `campaign`, by level: else of the campaign in use (the one this command or request
    loaded, `labels.current_campaign`)."""
    if campaign is None:
        from anjian.states.labels import current_campaign

        campaign = current_campaign()
    return campaign.machines


def of(level: str | None, campaign=None) -> MachineSpec | None:
    """The machine of units of `level` in `campaign` (else in the campaign in use); None for a level
    without one (a province)."""
    return specs(campaign).get(level) if level else None


def shape(campaign) -> dict[str, tuple]:
    """What of a campaign's machines its units' states depend on: each level's states and moves (the
    guards and the words may change under a running campaign; these may not)."""
    return {level: (spec.states, spec.initial, tuple((t["trigger"], t["source"], t["dest"]) for t in spec.transitions))
            for level, spec in campaign.machines.items()}


def every_trigger(campaign=None) -> frozenset[str]:
    """Every trigger of the campaign's machines: the audit actions that move a unit's state."""
    return frozenset(t for spec in specs(campaign).values() for t in spec.triggers)
