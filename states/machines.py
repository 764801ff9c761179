"""The three machines of the campaign, declared as data.

States are lists, transitions are dicts, guards are named by string (see `guards.py`). The engine
builds one shared `transitions.Machine` per unit type and fires it for one loaded row at a time.

The conditions here are the engine's defaults; a campaign names the guards of its own plan for a trigger
in its file (`[triggers.county]`, with guards it declares in `[guards.NAME]`), and those are checked instead.
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


SPECS: dict[str, MachineSpec] = {
    "township": MachineSpec("township", tuple(TOWNSHIP_STATES), "not_started", tuple(TOWNSHIP_TRANSITIONS)),
    "county": MachineSpec("county", tuple(COUNTY_STATES), "mobilization", tuple(COUNTY_TRANSITIONS)),
    "city": MachineSpec("city", tuple(CITY_STATES), "mobilization", tuple(CITY_TRANSITIONS)),
}

# The city machine's trigger that enters each stage on the stage's first day.
STAGE_TRIGGERS = {t["dest"]: t["trigger"] for t in CITY_TRANSITIONS}
