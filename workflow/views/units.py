"""`units`: units filtered by level, scope, cohort, state and lateness; and `units --by`, the listed
units counted per county, city or province."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from anjian.i18n import _
from anjian.states.labels import COHORTS
from anjian.states.machines import SPECS
from anjian.workflow.engine.tree import UnitTree
from anjian.workflow.errors import BadInput
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Unit, UnitCohort
from anjian.workflow.views.snapshot import BITS, Snapshot, check_by, mask_query, no_level, scope_unit

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

    def as_json(self) -> dict:
        """The contract's `units` row: the parent's code without its name."""
        return {"code": self.code, "name": self.name, "level": self.level, "parent": self.parent, "state": self.state,
                "cohorts": self.cohorts, "overdue": self.overdue}


def units(db: Database, now: dt.datetime, level: str | None = None, county: str | None = None,
          cohort: str | None = None, state: str | None = None, overdue: bool = False) -> list[UnitRow]:
    """Units filtered by level, county (or city, province), cohort, state, and whether any milestone is
    overdue — two queries for the whole registry, whatever its size."""
    known = sorted({s for spec in SPECS.values() for s in spec.states})
    if state and state not in known:  # a misspelt state would otherwise list nothing, silently
        raise BadInput(_("state “{state}” does not exist; states: {states}").format(state=state, states=", ".join(known)))
    with db.read() as session:
        campaign = campaign_in_force(session)
        scope = scope_unit(session, county) if county else None
        snap = Snapshot(session, campaign, now)
        within = snap.within(scope) if scope is not None else None
        masks = mask_query()
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
            cohorts = [c for c in COHORTS if mask & BITS[c]]
            pname = snap.upper[parent].name if parent in snap.upper else None
            out.append(UnitRow(code, name, lvl, parent, st, cohorts, pname, late if lvl in OWING else None))
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
