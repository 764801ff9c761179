"""`show`: one unit in full — its checklist (what is missing), its milestones, and for each trigger
whether it is open now and, if not, every reason why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from anjian.states.guards import ItemStatus, checklist
from anjian.states.labels import COHORTS, state_name
from anjian.states.machines import SPECS
from anjian.states.milestones import MilestoneStatus, milestones
from anjian.workflow.clock import local_date, shown
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.services.stages import stage_on
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Unit

OWING = ("township", "county")  # the levels with a checklist and milestones


@dataclass(frozen=True)
class TriggerStatus:
    """Whether a trigger may fire now; `unmet` gives each reason it may not."""

    name: str
    allowed: bool
    unmet: list[str]
    to: str | None


@dataclass(frozen=True)
class Remark:
    """What an inspector said when rejecting or revoking: the note, who, and when (Asia/Shanghai)."""

    trigger: str
    actor: str
    at: str
    note: str | None


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
    remark: Remark | None = None  # a rectifying township: the reject (or revoke) that sent it back
    met_late: dict[str, int] = field(default_factory=dict)  # milestone id -> days it was met after its deadline
    areas: dict[str, str] = field(default_factory=dict)  # checklist area id -> its name

    @property
    def next_triggers(self) -> list[TriggerStatus]:
        """The triggers that could apply next: those that leave the current state."""
        if self.level not in SPECS:
            return []
        here = {t["trigger"] for t in SPECS[self.level].transitions if t["source"] == self.state}
        return [t for t in self.triggers if t.name in here]


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
        state = stage_on(campaign, local_date(now)) if u.level == "city" else u.state  # the stored stage lags
        remark = _last_remark(session, u.code) if u.state == "rectifying" else None
        late = _met_late(session, campaign, now, u.code, ms)
        return ShowResult(u.code, u.name, u.level, u.parent_code, parent.name if parent else None, resolver.path(u),
                          state, state_name(u.level, state), u.version,
                          sorted(loader.cohorts.get(u.code, ()), key=COHORTS.index), items, ms, triggers, children, now,
                          remark, late, dict(campaign.areas))


def _last_remark(session, code: str) -> Remark | None:
    """The last reject or revoke of a unit: why it is rectifying."""
    row = session.scalars(select(AuditRow).where(AuditRow.unit_code == code, AuditRow.action.in_(("reject", "revoke")))
                          .order_by(AuditRow.seq.desc()).limit(1)).first()
    if row is None:
        return None
    return Remark(row.action, row.actor, shown(row.at)[:16], row.note)


def _met_late(session, campaign, now: dt.datetime, code: str, ms: list[MilestoneStatus]) -> dict[str, int]:
    """Days late of each milestone this unit met after its deadline, as the progress report counts them.
    The audit log is replayed only when a met milestone's deadline has passed (only then can it be late)."""
    today = local_date(now)
    if not any(m.status == "met" and m.deadline < today for m in ms):
        return {}
    from anjian.workflow.views.timeline import replay

    # Only this unit's rows and its townships' (a county's milestones count its townships): a show
    # replays a few dozen rows, not the whole campaign's log.
    level = session.scalar(select(Unit.level).where(Unit.code == code))
    only = None
    if level in ("township", "county"):
        kids = session.scalars(select(Unit.code).where(Unit.parent_code == code, Unit.level == "township")).all()
        only = frozenset({code, *kids})
    return {o.milestone: o.days for o in replay(session, campaign, now, only).outcomes()
            if o.unit_code == code and o.status == "late"}

