"""Milestones evaluated for one unit: which milestones it owes, whether it has met them, and its
standing as of a day. The one "met" rule, used by `show`, the reminder pass and the replayed timeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anjian.states.campaign import Campaign, Milestone, Rule
from anjian.states.guards import Facts, unmet


@dataclass(frozen=True)
class MilestoneStatus:
    id: str
    name: str
    deadline: dt.date  # shown and written to JSON as ISO 8601
    status: str  # met | pending | overdue
    days: int  # days left while pending, days late while overdue, 0 when met


def rule_for(m: Milestone, facts: Facts) -> Rule | None:
    """The rule by which the unit owes the milestone, or None when it does not owe it."""
    for rule in m.rules:
        if not rule.applies(facts.level, facts.cohorts):
            continue
        if rule.when_has and not any(rule.when_has in c.cohorts for c in facts.children):
            continue
        return rule
    return None


def is_met(m: Milestone, facts: Facts) -> bool | None:
    """Whether the unit meets the milestone now (None when it does not owe it)."""
    rule = rule_for(m, facts)
    if rule is None:
        return None
    if rule.states:
        return facts.state in rule.states
    return not any(unmet(facts, g) for g in rule.guards)


def milestones(facts: Facts, campaign: Campaign, today: dt.date) -> list[MilestoneStatus]:
    """The status of every milestone that applies to the unit, as of `today` (Shanghai)."""
    out = []
    for m in campaign.milestones:
        met = is_met(m, facts)
        if met is None:
            continue
        if met:
            out.append(MilestoneStatus(m.id, m.name, m.deadline, "met", 0))
        elif today <= m.deadline:
            out.append(MilestoneStatus(m.id, m.name, m.deadline, "pending", (m.deadline - today).days))
        else:
            out.append(MilestoneStatus(m.id, m.name, m.deadline, "overdue", (today - m.deadline).days))
    return out
