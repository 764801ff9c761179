"""Loading what the guards and milestones look at, a set of units at a time (no query per row)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Child, Evidence, Facts
from anjian.workflow.store.db import among, pieces
from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit, UnitCohort

APPLY_ACTIONS = ("apply", "resubmit")


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
        self.applicants: dict[str, str | None] = {}
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
        self.session.info.setdefault("anjian_parents", {}).update((c, self.units[c].parent_code) for c in todo if c in self.units)
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
                .order_by(AuditRow.seq))
            for code, actor in rows:
                self.applicants[code] = actor

    def _load_cohorts(self, codes: list[str]) -> None:
        for part in pieces(self.session, sorted(set(codes))):
            for code, cohort in self.session.execute(
                    select(UnitCohort.unit_code, UnitCohort.cohort).where(among(self.session, UnitCohort.unit_code, part))):
                self.cohorts[code].add(cohort)

    def state(self, code: str) -> str | None:
        return self.overlay.get(code, self.units[code].state)

    def facts(self, code: str, actor: str | None = None, note: str | None = None,
              evidence: tuple[Evidence, ...] = ()) -> Facts:
        self.prefetch([code])
        u = self.units[code]
        kids = tuple(
            Child(k, self.units[k].name, self.state(k), frozenset(self.cohorts.get(k, ())))
            for k in self.children.get(code, ())
        )
        return Facts(
            level=u.level, code=code, name=u.name, state=self.state(code),
            cohorts=frozenset(self.cohorts.get(code, ())), campaign=self.campaign, now=self.now,
            checklist=dict(self.values.get(code, {})), children=kids, actor=actor, note=note,
            evidence=evidence, last_applicant=self.applicants.get(code),
        )
