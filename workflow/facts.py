"""Loading what the guards and milestones look at, a set of units at a time (no query per row)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Child, Evidence, Facts

from .models import AuditRow, ChecklistValue, Unit, UnitCohort

CHUNK = 900  # below SQLite's default limit of bound parameters
APPLY_ACTIONS = ("apply", "resubmit")


def _chunks(codes: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(codes), CHUNK):
        yield codes[i : i + CHUNK]


class FactsLoader:
    """Holds units, cohorts, checklist values and children for the units asked about.

    `overlay` carries states changed earlier in the same batch, so later rows see them.
    """

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime):
        self.session = session
        self.campaign = campaign
        self.now = now
        self.units: dict[str, Unit] = {}
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
        for part in _chunks(todo):
            for u in self.session.scalars(select(Unit).where(Unit.code.in_(part))):
                self.units[u.code] = u
        # what authz walks up to check jurisdiction: known now, so a batch does not ask per row
        self.session.info.setdefault("anjian_parents", {}).update((c, self.units[c].parent_code) for c in todo if c in self.units)
        parents = [c for c in todo if c in self.units and self.units[c].level in ("county", "city")]
        kids: list[str] = []
        for part in _chunks(parents):
            rows = self.session.scalars(select(Unit).where(Unit.parent_code.in_(part), Unit.level == "township"))
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
        for part in _chunks(todo):
            for v in self.session.scalars(select(ChecklistValue).where(ChecklistValue.unit_code.in_(part))):
                self.values[v.unit_code][v.item] = v.value
        townships = [c for c in todo if c in self.units and self.units[c].level == "township"]
        for part in _chunks(townships):
            rows = self.session.execute(
                select(AuditRow.unit_code, AuditRow.actor).where(AuditRow.unit_code.in_(part),
                                                                 AuditRow.action.in_(APPLY_ACTIONS))
                .order_by(AuditRow.seq))
            for code, actor in rows:
                self.applicants[code] = actor

    def _load_cohorts(self, codes: list[str]) -> None:
        for part in _chunks(sorted(set(codes))):
            for code, cohort in self.session.execute(
                    select(UnitCohort.unit_code, UnitCohort.cohort).where(UnitCohort.unit_code.in_(part))):
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
