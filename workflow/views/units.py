"""`units`: units filtered by level, scope, cohort, state and lateness; and `units --by`, the listed
units counted per county, city or province. Each listed unit says since when it is in its state, and an
applied township who applied for it (an inspector's queue: oldest first, never judged by its applicant)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field, replace

from sqlalchemy import func, or_, select

from anjian.i18n import _
from anjian.states.labels import COHORT_NAMES, COHORT_SHORT, choices, parse_cohort
from anjian.states.machines import every_trigger, specs
from anjian.workflow.engine.facts import APPLY_ACTIONS
from anjian.workflow.engine.tree import UnitTree
from anjian.workflow.errors import BadInput
from anjian.workflow.outlook.snapshot import Snapshot, check_by, mask_query, no_level, scope_unit
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store import scope
from anjian.workflow.store.audit import effective_at
from anjian.workflow.store.db import IN_LIMIT, Database, among, pieces
from anjian.workflow.store.models import AuditRow, Unit, UnitCohort

OWING = ("township", "county")


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
    since: str | None = None  # when it entered its state (stored UTC form, as history's `at`); None: never moved
    applicants: list[str] | None = None  # an applied township: who applied or resubmitted it (the latest last)
    version: int | None = None  # what `advance --expect-version` compares

    def as_json(self) -> dict:
        """The contract's `units` row (the parent's code), and the parent's name, since when the unit is in
        its state, an applied township's applicants (`applicant`: the latest) and the unit's version."""
        return {"code": self.code, "name": self.name, "level": self.level, "parent": self.parent, "state": self.state,
                "cohorts": self.cohorts, "overdue": self.overdue, "parent_name": self.parent_name, "since": self.since,
                "applicant": self.applicants[-1] if self.applicants else None, "applicants": self.applicants,
                "version": self.version}


def units(db: Database, now: dt.datetime, level: str | None = None, county: str | None = None,
          cohort: str | None = None, state: str | None = None, overdue: bool = False,
          moved: bool = True) -> list[UnitRow]:
    """Units filtered by level, county (or city, province), cohort, state, and whether any milestone is
    overdue — two queries for the whole registry, whatever its size; with `moved`, since when each listed
    unit is in its state and who applied for an applied township (a look at the end of each one's history)."""
    with db.read() as session:
        campaign = campaign_in_force(session)
        if state:  # by its id or its name in either language; a misspelt one would otherwise list nothing, silently
            state = _state(state, level)
        cohort = _cohort(cohort)
        scope = scope_unit(session, county) if county else None
        snap = Snapshot(session, campaign, now)
        within = snap.within(scope) if scope is not None else None
        masks = mask_query(campaign)
        q = (select(Unit.code, Unit.name, Unit.level, Unit.parent_code, Unit.state, func.coalesce(masks.c.mask, 0),
                    Unit.version)
             .outerjoin(masks, masks.c.unit_code == Unit.code).order_by(Unit.code))
        if level:
            q = q.where(Unit.level == level)
        if state:
            q = q.where(Unit.state == state)
        if cohort:
            q = q.where(Unit.code.in_(select(UnitCohort.unit_code).where(UnitCohort.cohort == cohort)))
        if within is not None and len(within) <= IN_LIMIT:  # a county's or a city's units: not the whole registry read
            q = q.where(or_(Unit.code.in_(sorted(within)), Unit.parent_code.in_(sorted(within))))
        out = []
        for code, name, lvl, parent, st, mask, version in session.execute(q):
            if within is not None and code not in within and (lvl != "township" or parent not in within):
                continue
            if lvl == "township":
                late = [m.id for m in snap.township(st, mask, code) if m.status == "overdue"]
            elif lvl == "county":
                late = [m.id for m in snap.county(code) if m.status == "overdue"]
            else:
                late = None
            if overdue and not late:
                continue
            cohorts = [c for c in campaign.cohort_ids if mask & snap.bits[c]]
            pname = snap.upper[parent].name if parent in snap.upper else None
            out.append(UnitRow(code, name, lvl, parent, st, cohorts, pname, late if lvl in OWING else None,
                               version=version))
        if not moved:
            return out
        since = _since(session, [u.code for u in out if u.state and u.level in specs() and u.state != specs()[u.level].initial])
        applied = _applicants(session, [u.code for u in out if u.level == "township" and u.state == "applied"])
        return [replace(u, since=since[u.code], applicants=applied.get(u.code)) if u.code in since else u for u in out]


def _state(text: str, level: str | None) -> str:
    """The state an official typed (identifier, Chinese or English name) among the campaign's, or BadInput
    naming the choices (the campaign in force is loaded: its own states are among them)."""
    from anjian.states.labels import STATE_NAMES, choices, parse_state

    ident = parse_state(text, level)
    if ident is None:
        raise BadInput(_("{option}: unknown value “{value}”; one of: {choices}").format(
            option="--state", value=text, choices=choices(STATE_NAMES)))
    return ident


def _since(session, codes: list[str]) -> dict[str, str]:
    """When each unit entered its state: the time of its latest transition (a late entry's attested date).
    One index probe per unit, read backwards from the end of its history, wherever its rows lie."""
    last = (select(AuditRow.seq).where(AuditRow.unit_code == Unit.code, AuditRow.action.in_(sorted(every_trigger())))
            .order_by(AuditRow.seq.desc()).limit(1).correlate(Unit).scalar_subquery())
    out: dict[str, str] = {}
    for part in pieces(session, codes):
        q = (select(Unit.code, AuditRow.at, AuditRow.detail).join(AuditRow, AuditRow.seq == last)
             .where(among(session, Unit.code, part)))
        for code, at, detail in session.execute(q):
            out[code] = effective_at(at, detail)
    return out


def _applicants(session, codes: list[str]) -> dict[str, list[str]]:
    """Who applied for each township or resubmitted it (whom the verdict may not come from), each once, in
    the order of their latest application: the last is the latest applicant."""
    out: dict[str, list[str]] = {}
    for part in pieces(session, codes):
        q = (select(AuditRow.unit_code, AuditRow.actor)
             .where(among(session, AuditRow.unit_code, part), AuditRow.action.in_(APPLY_ACTIONS)).order_by(AuditRow.seq)
             .execution_options(**scope.its_rows))
        for code, actor in session.execute(q):
            names = out.setdefault(code, [])
            if actor in names:
                names.remove(actor)
            names.append(actor)
    return out


@dataclass(frozen=True)
class Tally:
    """The units of one county, city or province that passed the filters, counted by state."""

    code: str
    name: str
    level: str
    units: int
    states: dict[str, int]
    overdue: int


@dataclass
class _Count:
    units: int = 0
    states: Counter = field(default_factory=Counter)
    overdue: int = 0


def tally(db: Database, rows: list[UnitRow], by: str) -> list[Tally]:
    """`units --by`: the listed units counted per county, city or province they lie in."""
    check_by(by)
    with db.read() as session:
        tree = UnitTree.upper(session)
    if not tree.at_level(by):
        raise no_level(by)
    acc: dict[str, _Count] = {}
    for r in rows:
        if r.level == by:
            key = r.code
        else:
            key = r.parent if by == "county" and r.level == "township" else tree.ancestor_at(r.parent, by)
        if key is None or key not in tree:
            continue
        a = acc.get(key)
        if a is None:
            a = acc[key] = _Count()
        a.units += 1
        if r.state:
            a.states[r.state] += 1
        a.overdue += bool(r.overdue)
    return [Tally(k, tree[k].name, tree[k].level, a.units, dict(a.states), a.overdue) for k, a in sorted(acc.items())]


def _cohort(text: str | None) -> str | None:
    """The cohort of the campaign in force an official named (identifier, Chinese, English or short name)."""
    if not text:
        return None
    found = parse_cohort(text)
    if found is None:
        raise BadInput(_("{option}: unknown value “{value}”; one of: {choices}").format(
            option="--cohort", value=text, choices=choices(COHORT_NAMES, COHORT_SHORT)))
    return found
