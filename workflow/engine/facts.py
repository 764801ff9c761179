"""What the guards and milestones look at: `facts_of`, the one place a `Facts` is built from its raw
parts (by `show`, `advance`, the reminder pass, the snapshot behind `status`/`units` and the replayed
timeline), and `FactsLoader`, which loads those parts a set of units at a time (no query per row)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Child, Evidence, Facts
from anjian.workflow.engine.tree import tree_of
from anjian.workflow.store import scope
from anjian.workflow.store.db import among, pieces
from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit, UnitCohort

APPLY_ACTIONS = ("apply", "resubmit")


class Part(NamedTuple):
    """A unit as its facts need it: a guard's unit, or one of a county's townships."""

    code: str
    name: str
    level: str
    state: str | None
    cohorts: Iterable[str] = ()


def facts_of(unit: Part, campaign: Campaign, now: dt.datetime, *, checklist: Mapping[str, str] | None = None,
             children: Iterable[Part] = (), actor: str | None = None, note: str | None = None,
             evidence: tuple[Evidence, ...] = (), last_applicant: str | None = None,
             applicants: frozenset[str] = frozenset()) -> Facts:
    """The facts one unit's guards and milestones see. A guard needing a new fact gets it here (and
    its loader in FactsLoader); every caller builds its facts through this function."""
    kids: list[Child] = []
    last = child = None
    for k in children:  # the same part given in a row (a snapshot's counted townships) makes one Child
        if k is not last:
            last, child = k, Child(k.code, k.name, k.state, frozenset(k.cohorts))
        kids.append(child)
    return Facts(level=unit.level, code=unit.code, name=unit.name, state=unit.state, cohorts=frozenset(unit.cohorts),
                 campaign=campaign, now=now, checklist=dict(checklist or {}), children=tuple(kids), actor=actor, note=note,
                 evidence=evidence, last_applicant=last_applicant, applicants=applicants)


class FactsLoader:
    """Holds units, cohorts, checklist values and children for the units asked about.

    `overlay` carries states changed earlier in the same batch, so later rows see them. With `plain`, the
    units are read-only rows (code, name, level, parent_code, state, version) instead of ORM objects: a
    reminder pass reads 44,000 of them and changes none, and building the objects cost it half a second.
    """

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime, plain: bool = False):
        self.session = session
        self._select = (select(Unit.code, Unit.name, Unit.level, Unit.parent_code, Unit.state, Unit.version)
                        if plain else select(Unit))
        self._run = session.execute if plain else session.scalars
        self.campaign = campaign
        self.now = now
        self.units: dict[str, Unit] = {}  # or rows with the same attributes (`plain`)
        self.cohorts: dict[str, set[str]] = defaultdict(set)
        self.values: dict[str, dict[str, str]] = defaultdict(dict)
        self.children: dict[str, list[str]] = {}
        self.applicants: dict[str, list[str]] = defaultdict(list)  # who applied or resubmitted, oldest first
        self.overlay: dict[str, str] = {}
        self._checked: set[str] = set()

    def prefetch(self, codes: Iterable[str]) -> None:
        """Load the units and everything their guards need, in a few set-based queries."""
        todo = sorted(set(codes) - self._checked)
        if not todo:
            return
        self._checked.update(todo)
        for part in pieces(self.session, todo):
            for u in self._run(self._select.where(among(self.session, Unit.code, part))):
                self.units[u.code] = u
        # what authz walks up to check jurisdiction: known now, so a batch does not ask per row
        tree_of(self.session).add(self.units[c] for c in todo if c in self.units)
        parents = [c for c in todo if c in self.units and self.units[c].level in ("county", "city")]
        kids: list[str] = []
        for part in pieces(self.session, parents):
            rows = self._run(self._select.where(among(self.session, Unit.parent_code, part), Unit.level == "township"))
            for u in rows:
                self.units.setdefault(u.code, u)
                self.children.setdefault(u.parent_code, []).append(u.code)
                kids.append(u.code)
        for c in parents:
            self.children.setdefault(c, [])
        kids = [k for k in kids if k not in self._checked]
        self._checked.update(kids)
        todo = todo + kids  # a child's own facts come along: no query per child later
        self._load_cohorts(todo)
        for part in pieces(self.session, todo):
            for v in self.session.scalars(select(ChecklistValue).where(among(self.session, ChecklistValue.unit_code, part))):
                self.values[v.unit_code][v.item] = v.value
        townships = [c for c in todo if c in self.units and self.units[c].level == "township"]
        for part in pieces(self.session, townships):
            rows = self.session.execute(
                select(AuditRow.unit_code, AuditRow.actor).where(among(self.session, AuditRow.unit_code, part),
                                                                 AuditRow.action.in_(APPLY_ACTIONS))
                .order_by(AuditRow.seq).execution_options(**scope.its_rows))
            for code, actor in rows:
                self.applicants[code].append(actor)

    def _load_cohorts(self, codes: list[str]) -> None:
        for part in pieces(self.session, sorted(set(codes))):
            for code, cohort in self.session.execute(
                    select(UnitCohort.unit_code, UnitCohort.cohort).where(among(self.session, UnitCohort.unit_code, part))):
                self.cohorts[code].add(cohort)

    def state(self, code: str) -> str | None:
        return self.overlay.get(code, self.units[code].state)

    def part(self, code: str) -> Part:
        u = self.units[code]
        return Part(code, u.name, u.level, self.state(code), self.cohorts.get(code, ()))

    def facts(self, code: str, actor: str | None = None, note: str | None = None,
              evidence: tuple[Evidence, ...] = ()) -> Facts:
        self.prefetch([code])
        applicants = self.applicants.get(code, ())
        return facts_of(self.part(code), self.campaign, self.now, checklist=self.values.get(code),
                        children=(self.part(k) for k in self.children.get(code, ())), actor=actor, note=note,
                        evidence=evidence, last_applicant=applicants[-1] if applicants else None,
                        applicants=frozenset(applicants))
