"""Read-only services: milestone status derived from states (never stored twice), the city at a
glance (`status`), unit lists (`units`) and one unit in full (`show`)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Child, Facts, checklist
from anjian.states.labels import COHORTS, state_name
from anjian.states.machines import SPECS
from anjian.states.milestones import MilestoneStatus, milestones
from anjian.workflow.clock import local_date
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import ChecklistValue, Unit, UnitCohort


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
    from anjian.workflow.engine import machine  # transitions is needed here only

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
                          u.state, state_name(u.level, u.state), u.version, sorted(loader.cohorts.get(u.code, ()), key=COHORTS.index),
                          items, ms, trig, children, now.isoformat())


# -- the whole registry at once (set-based) -------------------------------------------------------
BY_LEVELS = ("county", "city", "province")
_BITS = {c: 1 << i for i, c in enumerate(COHORTS)}


def _cohorts_of(mask: int) -> frozenset[str]:
    return frozenset(c for c, bit in _BITS.items() if mask & bit)


def _mask_query():
    """Per unit, its cohorts as one integer (a bit each): lets SQL group townships by what they owe."""
    mask = func.sum(case(_BITS, value=UnitCohort.cohort, else_=0))
    return select(UnitCohort.unit_code, mask.label("mask")).group_by(UnitCohort.unit_code).subquery()


def _state_only(campaign: Campaign, level: str) -> bool:
    """Whether every milestone rule for this level is decided by the state and cohorts alone."""
    return all(not r.guards for m in campaign.milestones for r in m.rules if r.level == level)


class Snapshot:
    """Every unit above the townships, and the townships counted by (parent, state, cohorts) in one
    GROUP BY: what status, units and the reminder pass need, without a query or a machine per row.

    A township's milestones depend on its state and cohorts only (the campaign says so; checked), so
    they are worked out once per distinct pair. A county's come from its townships' counts.
    """

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime, replayed=None):
        self.session, self.campaign, self.now = session, campaign, now
        self.today = local_date(now)
        self._town: dict[tuple[str, int], list[MilestoneStatus]] = {}
        self._county: dict[str, list[MilestoneStatus]] = {}
        self.exact = _state_only(campaign, "township")
        self._loader: FactsLoader | None = None
        self._values: dict[str, dict[str, str]] | None = None
        self.upper: dict[str, tuple[str, str, str | None, str | None]] = {}  # code -> name, level, parent, state
        self.groups: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # parent -> (state, mask, count)
        if replayed is not None:
            self._from_replay(replayed)
            return
        for code, name, level, parent, state in session.execute(
                select(Unit.code, Unit.name, Unit.level, Unit.parent_code, Unit.state).where(Unit.level != "township")):
            self.upper[code] = (name, level, parent, state)
        masks = _mask_query()
        mask = func.coalesce(masks.c.mask, literal_column("0"))  # a literal: PostgreSQL must see one expression
        q = (select(Unit.parent_code, Unit.state, mask, func.count())
             .select_from(Unit).outerjoin(masks, masks.c.unit_code == Unit.code)
             .where(Unit.level == "township").group_by(Unit.parent_code, Unit.state, mask))
        for parent, state, mask, n in session.execute(q):
            self.groups[parent].append((state, int(mask), n))

    def _from_replay(self, r) -> None:
        """The same counts from a campaign replayed to `now` (timeline.Replay): states and cohorts as
        they stood then, not as they stand today."""
        counts: dict[tuple[str, str, int], int] = defaultdict(int)
        for code, (name, level, parent) in r.units.items():
            state = r.state.get(code)
            if level != "township":
                self.upper[code] = (name, level, parent, state)
                continue
            mask = sum(_BITS[c] for c in r.cohorts.get(code, ()) if c in _BITS)
            counts[(parent, state, mask)] += 1
        for (parent, state, mask), n in sorted(counts.items()):
            self.groups[parent].append((state, mask, n))
        self._values = r.values

    def loader(self) -> FactsLoader:
        if self._loader is None:
            self._loader = FactsLoader(self.session, self.campaign, self.now)
        return self._loader

    def township(self, state: str, mask: int, code: str | None = None) -> list[MilestoneStatus]:
        """A township's milestones; by (state, cohorts) when the campaign allows, else from its own facts."""
        if not self.exact:
            return milestones(self.loader().facts(code), self.campaign, self.today)
        key = (state, mask)
        if key not in self._town:
            facts = Facts(level="township", code="", name="", state=state, cohorts=_cohorts_of(mask),
                          campaign=self.campaign, now=self.now)
            self._town[key] = milestones(facts, self.campaign, self.today)
        return self._town[key]

    def county(self, code: str) -> list[MilestoneStatus]:
        if code not in self._county:
            self._county[code] = milestones(self.county_facts(code), self.campaign, self.today)
        return self._county[code]

    def county_facts(self, code: str) -> Facts:
        name, level, _, state = self.upper[code]
        kids: list[Child] = []
        for st, mask, n in self.groups.get(code, ()):
            kids.extend((Child("", "", st, _cohorts_of(mask)),) * n)
        if self._values is None:  # the counties' own checklists, for a guard that reads them: one query
            self._values = defaultdict(dict)
            for unit, item, value in self.session.execute(
                    select(ChecklistValue.unit_code, ChecklistValue.item, ChecklistValue.value)
                    .join(Unit, Unit.code == ChecklistValue.unit_code).where(Unit.level != "township")):
                self._values[unit][item] = value
        return Facts(level=level, code=code, name=name, state=state, cohorts=frozenset(), campaign=self.campaign,
                     now=self.now, checklist=dict(self._values.get(code, {})), children=tuple(kids))

    def ancestor(self, code: str | None, level: str) -> str | None:
        """The unit of `level` above `code` (itself when it is of that level)."""
        while code is not None and code in self.upper:
            if self.upper[code][1] == level:
                return code
            code = self.upper[code][2]
        return None

    def group_of(self, parent: str, by: str) -> str | None:
        """Where a township under `parent` is counted when grouping by `by`: its county — or, for the
        townships a city holds directly (东莞市, 中山市…), that city — its city, or its province."""
        if by == "county":
            return parent
        return self.ancestor(parent, by)


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


def _descendants(session: Session, code: str) -> set[str]:
    """The unit and everything under it (for `history` of a county or city)."""
    found, frontier = {code}, [code]
    while frontier:
        nxt = []
        for i in range(0, len(frontier), 900):
            nxt.extend(session.scalars(select(Unit.code).where(Unit.parent_code.in_(frontier[i:i + 900]))))
        frontier = [c for c in nxt if c not in found]
        found.update(frontier)
    return found


def _scope(session: Session, resolver: Resolver, where: str, levels: tuple[str, ...]) -> Unit:
    ref = resolver.resolve(where, "county", levels=levels)
    return session.get(Unit, ref.code)


def units(db: Database, now: dt.datetime, level: str | None = None, county: str | None = None,
          cohort: str | None = None, state: str | None = None, overdue: bool = False) -> list[UnitRow]:
    """Units filtered by level, county (or city, province), cohort, state, and whether any milestone is
    overdue — two queries for the whole registry, whatever its size."""
    known = sorted({s for spec in SPECS.values() for s in spec.states})
    if state and state not in known:  # a misspelt state would otherwise list nothing, silently
        raise BadInput(f"state “{state}” does not exist; states: {', '.join(known)}")
    with db.read() as session:
        campaign = campaign_in_force(session)
        within = None
        if county:
            scope = _scope(session, Resolver(session), county, ("county", "city", "province"))
        snap = Snapshot(session, campaign, now)
        if county:
            within = {c for c in snap.upper if c == scope.code or snap.ancestor(snap.upper[c][2], scope.level) == scope.code}
            within.add(scope.code)
        masks = _mask_query()
        q = (select(Unit.code, Unit.name, Unit.level, Unit.parent_code, Unit.state, func.coalesce(masks.c.mask, 0))
             .outerjoin(masks, masks.c.unit_code == Unit.code).order_by(Unit.code))
        if level:
            q = q.where(Unit.level == level)
        if state:
            q = q.where(Unit.state == state)
        if cohort:
            q = q.where(Unit.code.in_(select(UnitCohort.unit_code).where(UnitCohort.cohort == cohort)))
        out = []
        for code, name, lvl, parent, st, mask in session.execute(q):
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
            cohorts = [c for c in COHORTS if mask & _BITS[c]]
            pname = snap.upper[parent][0] if parent in snap.upper else None
            out.append(UnitRow(code, name, lvl, parent, st, cohorts, pname, late if lvl in ("township", "county") else None))
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


def tally(db: Database, rows: list[UnitRow], by: str) -> list[Tally]:
    """`units --by`: the listed units counted per county, city or province they lie in."""
    if by not in BY_LEVELS:
        raise BadInput(f"--by {by!r}: group by one of {', '.join(BY_LEVELS)}")
    with db.read() as session:
        upper = {c: (n, lvl, p) for c, n, lvl, p in session.execute(
            select(Unit.code, Unit.name, Unit.level, Unit.parent_code).where(Unit.level != "township"))}

    if not any(lvl == by for _, lvl, _ in upper.values()):
        raise _no_level(by)

    def up(code: str | None) -> str | None:
        while code is not None and code in upper:
            if upper[code][1] == by:
                return code
            code = upper[code][2]
        return None

    acc: dict[str, dict] = {}
    for r in rows:
        key = r.code if r.level == by else (r.parent if by == "county" and r.level == "township" else up(r.parent))
        if key is None or key not in upper:
            continue
        a = acc.setdefault(key, {"units": 0, "states": {}, "overdue": 0})
        a["units"] += 1
        if r.state:
            a["states"][r.state] = a["states"].get(r.state, 0) + 1
        a["overdue"] += bool(r.overdue)
    return [Tally(k, upper[k][0], upper[k][1], a["units"], a["states"], a["overdue"]) for k, a in sorted(acc.items())]


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
    level: str = "county"
    parent: str | None = None
    counties: int = 1
    counties_overdue: int = 0


@dataclass(frozen=True)
class StatusResult:
    now: str
    today: str
    campaign: str
    title: str
    city: dict | None
    counties: list[CountyStatus]  # the rows, one per county — or per city or province with `by`
    totals: dict
    by: str = "county"

    def as_json(self) -> dict:
        return asdict(self)


def status(db: Database, now: dt.datetime, county: str | None = None, by: str = "county", as_of: bool = False) -> StatusResult:
    """Per county (or city, or province): its stage, townships accepted/total per cohort, the next
    milestone, what is overdue. One GROUP BY over the townships; milestones per distinct case.
    With `as_of` the states are those the audit log says units had at `now` (a report of the past)."""
    if by not in BY_LEVELS:
        raise BadInput(f"--by {by!r}: group by one of {', '.join(BY_LEVELS)}")
    with db.read() as session:
        campaign = campaign_in_force(session)
        scope = None
        if county:
            scope = _scope(session, Resolver(session), county, ("county", "city", "province"))
            if scope.level == "township":
                raise BadInput(f"{scope.name}（{scope.code}）is a township, not a county, city or province")
        if as_of:
            from anjian.workflow.views.timeline import replay

            snap = Snapshot(session, campaign, now, replay(session, campaign, now))
        else:
            snap = Snapshot(session, campaign, now)
        today = snap.today
        # Every county, and every city that holds townships directly, is a county-level row.
        rows = sorted(c for c, (_, lvl, _, _) in snap.upper.items() if lvl == "county")
        rows += sorted(c for c, (_, lvl, _, _) in snap.upper.items() if lvl == "city" and snap.groups.get(c))
        if scope is not None:
            rows = [c for c in rows if c == scope.code or snap.ancestor(snap.upper[c][2], scope.level) == scope.code]
        per = [_county_row(snap, c) for c in rows]
        per.sort(key=lambda r: r.code)
        out = per if by == "county" else _grouped(snap, per, by)
        totals = {"townships": 0, "accepted": 0, "started": 0, "overdue_townships": 0, "counties_overdue": 0,
                  "counties": len(per)}
        for r in per:
            totals["townships"] += r.townships
            totals["accepted"] += r.accepted
            totals["started"] += r.started
            totals["overdue_townships"] += r.overdue_townships
            totals["counties_overdue"] += bool(r.overdue)
        city = snap.upper.get(campaign.city) if campaign.city else None
        city_info = ({"code": campaign.city, "name": city[0], "state": city[3], "state_name": state_name("city", city[3])}
                     if city else None)
        return StatusResult(now.isoformat(), today.isoformat(), campaign.id, campaign.title, city_info, out, totals, by)


def _county_row(snap: Snapshot, code: str) -> CountyStatus:
    name, level, parent, state = snap.upper[code]
    by = {k: [0, 0] for k in COHORTS}
    townships = accepted = started = late_kids = 0
    for st, mask, n in snap.groups.get(code, ()):
        townships += n
        accepted += n if st == "accepted" else 0
        started += n if st != "not_started" else 0
        for c in COHORTS:
            if mask & _BITS[c]:
                by[c][1] += n
                by[c][0] += n if st == "accepted" else 0
        if snap.exact and any(m.status == "overdue" for m in snap.township(st, mask)):
            late_kids += n
    if not snap.exact:  # a campaign whose township milestones read more than state and cohorts
        kids = [k for k in snap.session.scalars(select(Unit.code).where(Unit.parent_code == code, Unit.level == "township"))]
        snap.loader().prefetch([code])
        late_kids = sum(any(m.status == "overdue" for m in snap.township("", 0, k)) for k in kids)
    if level == "county":
        ms = snap.county(code)
        nxt = next((asdict(m) for m in ms if m.status == "pending"), None)
        late = [m.id for m in ms if m.status == "overdue"]
        shown_state = state_name("county", state)
    else:  # a city holding townships directly has no county stage of its own
        nxt, late, state, shown_state = None, [], None, "—"
    return CountyStatus(code, name, state, shown_state, townships, accepted, started, by, nxt, late, late_kids,
                        level, parent, 1, int(bool(late)))


def _no_level(by: str) -> BadInput:
    words = {"city": "cities", "province": "provinces"}
    return BadInput(f"--by {by}: this registry has no {words.get(by, by)} (it starts lower down); "
                    "group by a level it has, e.g. --by county")


def _grouped(snap: Snapshot, per: list[CountyStatus], by: str) -> list[CountyStatus]:
    """County rows summed into their city or province."""
    if not any(lvl == by for _, lvl, _, _ in snap.upper.values()):
        raise _no_level(by)
    acc: dict[str, dict] = {}
    for r in per:
        key = r.code if r.level == by else snap.ancestor(r.parent, by)
        if key is None:
            continue
        a = acc.setdefault(key, {"townships": 0, "accepted": 0, "started": 0, "overdue_townships": 0, "counties": 0,
                                 "counties_overdue": 0, "cohorts": {k: [0, 0] for k in COHORTS}, "overdue": set()})
        for k in ("townships", "accepted", "started", "overdue_townships", "counties", "counties_overdue"):
            a[k] += getattr(r, k)
        for k, (done, total) in r.cohorts.items():
            a["cohorts"][k][0] += done
            a["cohorts"][k][1] += total
        a["overdue"].update(r.overdue)
    out = []
    order = [m.id for m in snap.campaign.milestones]
    for code in sorted(acc):
        a = acc[code]
        name, level, parent, _ = snap.upper[code]
        out.append(CountyStatus(code, name, None, "—", a["townships"], a["accepted"], a["started"], a["cohorts"], None,
                                sorted(a["overdue"], key=order.index), a["overdue_townships"], level, parent,
                                a["counties"], a["counties_overdue"]))
    return out
