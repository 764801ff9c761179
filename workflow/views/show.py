"""`show`: one unit in full — its checklist (what is missing), its milestones, and for each trigger
whether it is open now and, if not, every reason why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from anjian.states.guards import ItemStatus, checklist, inspector_is_not_applicant
from anjian.states.labels import cohort_ids, state_name
from anjian.states.machines import of
from anjian.states.milestones import MilestoneStatus, milestones
from anjian.states.permissions import INSPECTION_TRIGGERS
from anjian.workflow.clock import local_date, shown
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import NotPermitted
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.services.stages import stage_on
from anjian.workflow.store import scope
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, EvidenceRow, Unit

OWING = ("township", "county")  # the levels with a checklist and milestones


@dataclass(frozen=True)
class TriggerStatus:
    """Whether a trigger may fire now; `unmet` gives each reason it may not."""

    name: str
    allowed: bool
    unmet: list[str]
    to: str | None
    next: bool = False  # it leaves the current state (one of the "next steps")
    # whether the official asking may fire it (role, jurisdiction, separation of duties: the checks of
    # `advance`, and a verdict never offered to an applicant); None when no official is known
    permitted: bool | None = None


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
    # checklist item -> the files of the latest `record` of it that attached any ([{path, sha256, seq, at}])
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    # the cohorts the official asking may designate this unit's townships into (or take them out of)
    designable: list[str] = field(default_factory=list)
    recordable: bool | None = None  # whether the official asking may record its checklist (None: no official known)

    @property
    def next_triggers(self) -> list[TriggerStatus]:
        """The triggers that could apply next: those that leave the current state."""
        spec = of(self.level)
        if spec is None:
            return []
        here = {t["trigger"] for t in spec.transitions if t["source"] == self.state}
        return [t for t in self.triggers if t.name in here]


def show(db: Database, unit: str, now: dt.datetime, actor: str | None = None, viewer: Acting | None = None) -> ShowResult:
    """One unit in full: what it has, what is missing, its milestones and which triggers are open now.
    With `viewer` (the official asking), a unit outside what they may see is refused (authz.may_see) and
    each trigger says whether they may fire it."""
    from anjian.workflow.engine import machine  # transitions is needed here only

    with db.read() as session:
        resolver = Resolver(session)
        ref = resolver.resolve(unit)
        if viewer is not None:
            authz.may_see(session, viewer, ref.code, ref.name)
        u = session.get(Unit, ref.code)
        campaign = campaign_in_force(session)
        loader = FactsLoader(session, campaign, now)
        facts = loader.facts(ref.code, actor=actor)
        owing = u.level in OWING
        items = checklist(facts) if owing else []
        ms = milestones(facts, campaign, local_date(now)) if owing else []
        triggers = []
        spec = campaign.machine(u.level)
        here = {t["trigger"] for t in spec.transitions if t["source"] == u.state} if spec else set()
        for t in spec.triggers if spec else ():
            verdict = machine.check(loader.facts(ref.code, actor=actor), t)  # fresh facts: a check may set `dest`
            permitted = None if viewer is None else _permitted(session, loader, viewer, u, t)
            triggers.append(TriggerStatus(t, verdict.allowed, list(verdict.unmet), verdict.dest, t in here, permitted))
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
                          [c for c in campaign.cohort_ids if c in loader.cohorts.get(u.code, ())], items, ms, triggers, children, now,
                          remark, late, dict(campaign.areas), _evidence(session, u.code, {c.item for c in items}),
                          _designable(session, viewer, u) if viewer is not None and owing else [],
                          _recordable(session, viewer, u) if viewer is not None else None)


def _permitted(session, loader: FactsLoader, viewer: Acting, u: Unit, trigger: str) -> bool:
    """Whether `viewer` may fire `trigger` on the unit as `advance` checks it (role, jurisdiction, the
    applying body), and, for a verdict, is not one of the township's applicants."""
    try:
        authz.may_fire(session, viewer, u.level, trigger, u.code, u.name)
        authz.not_own_unit(session, viewer, u.code, loader.applicants.get(u.code, ()), trigger)
    except NotPermitted:
        return False
    if trigger in INSPECTION_TRIGGERS:
        return not inspector_is_not_applicant(loader.facts(u.code, actor=authz.name_of(viewer)))
    return True


def _recordable(session, viewer: Acting, u: Unit) -> bool:
    """Whether `viewer` may record the unit's checklist (authz.may_record, as `record` checks it)."""
    try:
        authz.may_record(session, viewer, u.level, u.code, u.name)
    except NotPermitted:
        return False
    return True


def _designable(session, viewer: Acting, u: Unit) -> list[str]:
    """The cohorts `viewer` may designate townships of this unit into (authz.may_designate)."""
    out = []
    for cohort in cohort_ids():
        try:
            authz.may_designate(session, viewer, cohort, u.code, u.name)
        except NotPermitted:
            continue
        out.append(cohort)
    return out


def _evidence(session, code: str, items: set[str]) -> dict[str, list[dict]]:
    """Each checklist item's current evidence: the files of its latest `record` row that attached any."""
    if not items:
        return {}
    rows = session.execute(select(EvidenceRow.seq, EvidenceRow.subject, EvidenceRow.path, EvidenceRow.sha256, AuditRow.at)
                           .join(AuditRow, AuditRow.seq == EvidenceRow.seq)
                           .where(EvidenceRow.unit_code == code, EvidenceRow.subject.in_(sorted(items)),
                                  AuditRow.action == "record")
                           .order_by(EvidenceRow.seq, EvidenceRow.position).execution_options(**scope.its_rows)).all()
    latest: dict[str, int] = {}
    out: dict[str, list[dict]] = {}
    for seq, item, path, sha, at in rows:
        if latest.get(item) != seq:
            latest[item], out[item] = seq, []
        out[item].append({"path": path, "sha256": sha, "seq": seq, "at": shown(at)[:16]})
    return out


def _last_remark(session, code: str) -> Remark | None:
    """The last reject or revoke of a unit: why it is rectifying."""
    row = session.scalars(select(AuditRow).where(AuditRow.unit_code == code, AuditRow.action.in_(("reject", "revoke")))
                          .order_by(AuditRow.seq.desc()).limit(1).execution_options(**scope.its_rows)).first()
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

