"""`show`: one unit in full — its checklist (what is missing), its milestones, and for each trigger
whether it is open now and, if not, every reason why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anjian.states.guards import ItemStatus, checklist
from anjian.states.labels import COHORTS, state_name
from anjian.states.machines import SPECS
from anjian.states.milestones import MilestoneStatus, milestones
from anjian.workflow.clock import local_date
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Unit

OWING = ("township", "county")  # the levels with a checklist and milestones


@dataclass(frozen=True)
class TriggerStatus:
    """Whether a trigger may fire now; `unmet` gives each reason it may not."""

    name: str
    allowed: bool
    unmet: list[str]
    to: str | None


@dataclass(frozen=True)
class ShowResult:
    code: str
    name: str
    level: str
    parent: str | None
    parent_name: str | None
    path: str
    state: str | None
    state_name: str
    version: int
    cohorts: list[str]
    checklist: list[ItemStatus]
    milestones: list[MilestoneStatus]
    triggers: list[TriggerStatus]
    children: dict[str, int]  # the townships' states, counted
    now: dt.datetime


def show(db: Database, unit: str, now: dt.datetime, actor: str | None = None) -> ShowResult:
    """One unit in full: what it has, what is missing, its milestones and which triggers are open now."""
    from anjian.workflow.engine import machine  # transitions is needed here only

    with db.read() as session:
        resolver = Resolver(session)
        ref = resolver.resolve(unit)
        u = session.get(Unit, ref.code)
        campaign = campaign_in_force(session)
        loader = FactsLoader(session, campaign, now)
        facts = loader.facts(ref.code, actor=actor)
        owing = u.level in OWING
        items = checklist(facts) if owing else []
        ms = milestones(facts, campaign, local_date(now)) if owing else []
        triggers = []
        for t in SPECS[u.level].triggers if u.level in SPECS else ():
            verdict = machine.check(loader.facts(ref.code, actor=actor), t)  # fresh facts: a check may set `dest`
            triggers.append(TriggerStatus(t, verdict.allowed, list(verdict.unmet), verdict.dest))
        children: dict[str, int] = {}
        for k in loader.children.get(ref.code, []):
            st = loader.state(k)
            children[st] = children.get(st, 0) + 1
        parent = resolver.unit(u.parent_code)
        return ShowResult(u.code, u.name, u.level, u.parent_code, parent.name if parent else None, resolver.path(u),
                          u.state, state_name(u.level, u.state), u.version,
                          sorted(loader.cohorts.get(u.code, ()), key=COHORTS.index), items, ms, triggers, children, now)
