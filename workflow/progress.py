"""Read-only services: milestone status derived from states (never stored twice), the city at a
glance (`status`), unit lists (`units`) and one unit in full (`show`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign, Milestone, Rule
from anjian.states.guards import GUARDS, Facts, checklist
from anjian.states.machines import SPECS, state_name

from . import machine
from .clock import local_date
from .db import Database
from .errors import BadInput
from .facts import FactsLoader
from .models import Unit
from .names import Resolver
from .registry import campaign_in_force

COHORT_ORDER = ("provincial_demo", "county_demo", "key", "heavy_task")


@dataclass(frozen=True)
class MilestoneStatus:
    id: str
    name: str
    deadline: str
    status: str  # met | pending | overdue
    days: int  # days left while pending, days late while overdue, 0 when met


def _rule_for(m: Milestone, facts: Facts) -> Rule | None:
    for rule in m.rules:
        if not rule.applies(facts.level, facts.cohorts):
            continue
        if rule.when_has and not any(rule.when_has in c.cohorts for c in facts.children):
            continue
        return rule
    return None


def milestones(facts: Facts, campaign: Campaign, today: dt.date) -> list[MilestoneStatus]:
    """The status of every milestone that applies to the unit, as of `today` (Shanghai)."""
    out = []
    for m in campaign.milestones:
        rule = _rule_for(m, facts)
        if rule is None:
            continue
        if rule.states:
            met = facts.state in rule.states
        else:
            met = not any(GUARDS[facts.level][g](facts) for g in rule.guards)
        if met:
            out.append(MilestoneStatus(m.id, m.name, m.deadline.isoformat(), "met", 0))
        elif today <= m.deadline:
            out.append(MilestoneStatus(m.id, m.name, m.deadline.isoformat(), "pending", (m.deadline - today).days))
        else:
            out.append(MilestoneStatus(m.id, m.name, m.deadline.isoformat(), "overdue", (today - m.deadline).days))
    return out


# -- show ------------------------------------------------------------------------------------------
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
    checklist: list[dict]
    milestones: list[dict]
    triggers: list[dict]
    children: dict[str, int]
    now: str

    def as_json(self) -> dict:
        return asdict(self)


def show(db: Database, unit: str, now: dt.datetime, actor: str | None = None) -> ShowResult:
    """One unit in full: what it has, what is missing, its milestones and which triggers are open now."""
    with db.read() as session:
        resolver = Resolver(session)
        ref = resolver.resolve(unit)
        u = session.get(Unit, ref.code)
        campaign = campaign_in_force(session)
        loader = FactsLoader(session, campaign, now)
        facts = loader.facts(ref.code, actor=actor)
        items = [{"item": s.item, "label": s.label, "area": s.area, "kind": s.kind, "required": s.required,
                  "value": s.value, "ok": s.ok} for s in checklist(facts)] if u.level in ("township", "county") else []
        ms = [asdict(m) for m in milestones(facts, campaign, local_date(now))] if u.level in ("township", "county") else []
        trig = []
        for t in SPECS[u.level].triggers if u.level in SPECS else ():
            facts = loader.facts(ref.code, actor=actor)
            verdict = machine.check(facts, t)
            trig.append({"name": t, "allowed": verdict.allowed, "unmet": list(verdict.unmet), "to": verdict.dest})
        children: dict[str, int] = {}
        for k in loader.children.get(ref.code, []):
            st = loader.state(k)
            children[st] = children.get(st, 0) + 1
        parent = resolver.unit(u.parent_code)
        return ShowResult(u.code, u.name, u.level, u.parent_code, parent.name if parent else None, resolver.path(u),
                          u.state, state_name(u.level, u.state), u.version, sorted(loader.cohorts.get(u.code, ()), key=COHORT_ORDER.index),
                          items, ms, trig, children, now.isoformat())


# -- units -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitRow:
    code: str
    name: str
    level: str
    parent: str | None
    state: str | None
    cohorts: list[str]
    parent_name: str | None = None
    overdue: list[str] | None = None


def units(db: Database, now: dt.datetime, level: str | None = None, county: str | None = None,
          cohort: str | None = None, state: str | None = None, overdue: bool = False) -> list[UnitRow]:
    """Units filtered by level, county, cohort, state, and whether any milestone is overdue."""
    known = sorted({s for spec in SPECS.values() for s in spec.states})
    if state and state not in known:  # a misspelt state would otherwise list nothing, silently
        raise BadInput(f"state “{state}” does not exist; states: {', '.join(known)}")
    with db.read() as session:
        campaign = campaign_in_force(session)
        q = select(Unit).order_by(Unit.code)
        if county:
            ref = Resolver(session).resolve(county, "county", levels=("county", "city", "province"))
            scope = _descendants(session, ref.code)
            q = q.where(Unit.code.in_(scope)) if len(scope) < 30000 else q
        if level:
            q = q.where(Unit.level == level)
        if state:
            q = q.where(Unit.state == state)
        rows = list(session.scalars(q))
        if county and len(scope) >= 30000:
            rows = [u for u in rows if u.code in scope]
        loader = FactsLoader(session, campaign, now)
        loader.prefetch(u.code for u in rows)
        names = {u.code: u.name for u in session.execute(select(Unit.code, Unit.name).where(
            Unit.level.in_(("province", "city", "county"))))}
        today = local_date(now)
        out = []
        for u in rows:
            cohorts = sorted(loader.cohorts.get(u.code, ()), key=COHORT_ORDER.index)
            if cohort and cohort not in cohorts:
                continue
            late = None
            if overdue or u.level in ("township", "county"):
                late = [m.id for m in milestones(loader.facts(u.code), campaign, today) if m.status == "overdue"] \
                    if u.level in ("township", "county") else []
            if overdue and not late:
                continue
            out.append(UnitRow(u.code, u.name, u.level, u.parent_code, u.state, cohorts, names.get(u.parent_code or ""), late))
        return out


def _descendants(session: Session, code: str) -> set[str]:
    found, frontier = {code}, [code]
    while frontier:
        nxt = []
        for i in range(0, len(frontier), 900):
            nxt.extend(session.scalars(select(Unit.code).where(Unit.parent_code.in_(frontier[i:i + 900]))))
        frontier = [c for c in nxt if c not in found]
        found.update(frontier)
    return found


# -- status ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountyStatus:
    code: str
    name: str
    state: str | None
    state_name: str
    townships: int
    accepted: int
    started: int
    cohorts: dict[str, list[int]]  # cohort -> [accepted, total]
    next_milestone: dict | None
    overdue: list[str]
    overdue_townships: int


@dataclass(frozen=True)
class StatusResult:
    now: str
    today: str
    campaign: str
    title: str
    city: dict | None
    counties: list[CountyStatus]
    totals: dict

    def as_json(self) -> dict:
        return asdict(self)


def status(db: Database, now: dt.datetime, county: str | None = None) -> StatusResult:
    """Per county: its stage, townships accepted/total per cohort, the next milestone, what is overdue."""
    with db.read() as session:
        campaign = campaign_in_force(session)
        resolver = Resolver(session)
        if county:
            ref = resolver.resolve(county, "county", levels=("county",))
            if ref.level != "county":
                raise BadInput(f"{ref.name}（{ref.code}）is a {ref.level}, not a county")
            counties = [session.get(Unit, ref.code)]
        else:
            counties = list(session.scalars(select(Unit).where(Unit.level == "county").order_by(Unit.code)))
        loader = FactsLoader(session, campaign, now)
        loader.prefetch(c.code for c in counties)
        today = local_date(now)
        out = []
        totals = {"townships": 0, "accepted": 0, "started": 0, "overdue_townships": 0, "counties_overdue": 0}
        for c in counties:
            facts = loader.facts(c.code)
            kids = facts.children
            by = {k: [0, 0] for k in COHORT_ORDER}
            late_kids = 0
            for k in kids:
                for coh in k.cohorts:
                    by[coh][1] += 1
                    by[coh][0] += k.state == "accepted"
                kf = loader.facts(k.code)
                if any(m.status == "overdue" for m in milestones(kf, campaign, today)):
                    late_kids += 1
            ms = milestones(facts, campaign, today)
            nxt = next((asdict(m) for m in ms if m.status == "pending"), None)
            late = [m.id for m in ms if m.status == "overdue"]
            accepted = sum(k.state == "accepted" for k in kids)
            started = sum(k.state != "not_started" for k in kids)
            out.append(CountyStatus(c.code, c.name, c.state, state_name("county", c.state), len(kids), accepted, started,
                                    by, nxt, late, late_kids))
            totals["townships"] += len(kids)
            totals["accepted"] += accepted
            totals["started"] += started
            totals["overdue_townships"] += late_kids
            totals["counties_overdue"] += bool(late)
        city = session.get(Unit, campaign.city) if campaign.city else None
        city_info = ({"code": city.code, "name": city.name, "state": city.state, "state_name": state_name("city", city.state)}
                     if city else None)
        return StatusResult(now.isoformat(), today.isoformat(), campaign.id, campaign.title, city_info, out, totals)
