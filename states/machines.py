"""The three machines of the campaign, declared as data.

States are lists, transitions are dicts, guards are named by string (see `guards.py`). The engine
builds one shared `transitions.Machine` per unit type and fires it for one loaded row at a time.
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
    {"trigger": "revoke", "source": "accepted", "dest": "rectifying", "conditions": ["reinspection_finding_given"]},
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
        "conditions": ["provincial_demos_accepted", "county_demos_accepted", "review_note_given"],
    },
    {
        "trigger": "certify_key_compliance",
        "source": "key_compliance",
        "dest": "full_coverage",
        "conditions": ["key_townships_accepted", "other_townships_started"],
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

# Chinese names officials read, for states and triggers of every machine.
STATE_NAMES = {
    ("township", "not_started"): "未开展",
    ("township", "building"): "创建中",
    ("township", "applied"): "已申请验收",
    ("township", "rectifying"): "整改中",
    ("township", "accepted"): "已达标",
    ("county", "mobilization"): "准备发动",
    ("county", "demonstration"): "示范创建",
    ("county", "key_compliance"): "重点达标",
    ("county", "full_coverage"): "全面实现",
    ("county", "standardized"): "全面达标",
    ("city", "mobilization"): "准备发动阶段",
    ("city", "demonstration"): "示范乡镇创建阶段",
    ("city", "key_compliance"): "重点乡镇达标阶段",
    ("city", "full_coverage"): "全面实现阶段",
    ("city", "closed"): "已结束",
}

TRIGGER_NAMES = {
    "start": "开展创建",
    "apply": "申请验收",
    "accept": "验收通过",
    "reject": "验收不通过",
    "resubmit": "整改后重新申请",
    "revoke": "复查不合格撤销",
    "submit_plan": "报送推进方案",
    "approve_demonstration": "示范创建验收通过",
    "certify_key_compliance": "确认重点乡镇达标",
    "certify_full_coverage": "确认全面达标",
    "begin_demonstration": "进入示范乡镇创建阶段",
    "begin_key_compliance": "进入重点乡镇达标阶段",
    "begin_full_coverage": "进入全面实现阶段",
    "close": "结束",
}


def state_name(level: str, state: str | None) -> str:
    """The Chinese name of a state, or the identifier where none is declared."""
    if state is None:
        return "—"
    return STATE_NAMES.get((level, state), state)
