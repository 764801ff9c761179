"""The campaign replayed from the audit log: when each unit met each milestone, and each county's
progress day by day — as of any `now`.

The units table holds only the present. The audit log holds every transition and every cohort
designation in order, so walking it up to `now` rebuilds the states and cohorts of that moment; after
each event the unit and its county are evaluated against the same milestone rules `status` uses.
A milestone is met at the event that made it so and stayed so (a revoked acceptance un-meets it),
which is what a circular needs: who was on time, who was late and by how many days, and which audit
row says so.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Child, Facts
from anjian.states.machines import SPECS
from anjian.states.milestones import is_met
from anjian.workflow.clock import from_utc_text, local_date
from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit, UnitCohort

TRANSITIONS = frozenset(t["trigger"] for spec in SPECS.values() for t in spec.transitions)
DESIGNATIONS = ("designate", "undesignate")


@dataclass(frozen=True)
class TrendPoint:
    day: dt.date
    accepted: int
    started: int
    townships: int


@dataclass(frozen=True)
class Outcome:
    """One unit's standing on one milestone it owes, as of `now`."""

    unit_code: str
    unit_name: str
    level: str
    county_code: str | None
    milestone: str
    deadline: dt.date
    met_at: dt.datetime | None
    met_seq: int | None
    status: str  # on_time | late | pending | overdue
    days: int  # days late (late), overdue (overdue), left (pending); 0 when on time


@dataclass
class _Standing:
    met: bool
    since: dt.datetime | None = None
    seq: int | None = None


class Replay:
    """States and cohorts walked forward from the registry load to `now`, event by event."""

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime):
        self.campaign, self.now = campaign, now
        self.today = local_date(now)
        self.units: dict[str, tuple[str, str, str | None]] = {}  # code -> name, level, parent
        self.children: dict[str, list[str]] = defaultdict(list)
        for code, name, level, parent in session.execute(select(Unit.code, Unit.name, Unit.level, Unit.parent_code)):
            self.units[code] = (name, level, parent)
            if level == "township" and parent:
                self.children[parent].append(code)
        self.state = {c: SPECS[lvl].initial for c, (_, lvl, _) in self.units.items() if lvl in SPECS}
        cohorts: dict[str, set[str]] = defaultdict(set)
        for code, cohort in session.execute(select(UnitCohort.unit_code, UnitCohort.cohort)):
            cohorts[code].add(cohort)
        self.values: dict[str, dict[str, str]] = defaultdict(dict)
        for code, item, value in session.execute(
                select(ChecklistValue.unit_code, ChecklistValue.item, ChecklistValue.value)
                .join(Unit, Unit.code == ChecklistValue.unit_code).where(Unit.level != "township")):
            self.values[code][item] = value
        events = session.execute(
            select(AuditRow.seq, AuditRow.at, AuditRow.unit_code, AuditRow.action, AuditRow.to_state, AuditRow.detail)
            .where(AuditRow.unit_code.is_not(None), AuditRow.action.in_(TRANSITIONS | set(DESIGNATIONS)))
            .order_by(AuditRow.seq)).all()
        start = session.execute(select(AuditRow.at).where(AuditRow.action == "registry_load").order_by(AuditRow.seq)).scalar()
        self.start = from_utc_text(start) if start else now
        # The cohorts of the start: today's, with every designation since undone, newest first.
        import json

        for _, _, code, action, _, detail in reversed(events):
            cohort = json.loads(detail or "{}").get("cohort")
            if cohort and action == "designate":
                cohorts[code].discard(cohort)
            elif cohort:
                cohorts[code].add(cohort)
        self.cohorts = cohorts
        self.standing: dict[tuple[str, str], _Standing] = {}
        self.points: dict[str, list[TrendPoint]] = defaultdict(list)
        self.last_seq: dict[str, int] = {}  # each unit's latest transition up to now
        self._walk(events)

    # -- evaluation --------------------------------------------------------------------------------
    def facts(self, code: str, at: dt.datetime) -> Facts:
        name, level, _ = self.units[code]
        kids = tuple(Child(k, self.units[k][0], self.state[k], frozenset(self.cohorts.get(k, ())))
                     for k in self.children.get(code, ())) if level != "township" else ()
        return Facts(level=level, code=code, name=name, state=self.state[code], cohorts=frozenset(self.cohorts.get(code, ())),
                     campaign=self.campaign, now=at, checklist=dict(self.values.get(code, {})), children=kids)

    def _evaluate(self, code: str, at: dt.datetime, seq: int | None) -> None:
        facts = self.facts(code, at)
        for m in self.campaign.milestones:
            met = is_met(m, facts)
            key = (code, m.id)
            if met is None:
                self.standing.pop(key, None)
                continue
            old = self.standing.get(key)
            if old is None or old.met != met:
                self.standing[key] = _Standing(met, at if met else None, seq if met else None)

    def _count(self, county: str, day: dt.date) -> None:
        kids = self.children.get(county, ())
        point = TrendPoint(day, sum(self.state[k] == "accepted" for k in kids),
                           sum(self.state[k] != "not_started" for k in kids), len(kids))
        series = self.points[county]
        if series and day < series[-1].day:  # a row backdated with --now: counted on the day it lands
            day = series[-1].day
            point = TrendPoint(day, point.accepted, point.started, point.townships)
        if series and series[-1].day == day:
            series[-1] = point
        elif not series or (series[-1].accepted, series[-1].started, series[-1].townships) != (
                point.accepted, point.started, point.townships):
            series.append(point)

    def _walk(self, events: list) -> None:
        import json

        first = local_date(self.start)
        evaluated = [c for c, (_, lvl, _) in self.units.items() if lvl in ("township", "county")]
        for code in evaluated:
            self._evaluate(code, self.start, None)
        for code in self.units:
            if self.children.get(code):
                self._count(code, first)
        for seq, at_text, code, action, to_state, detail in events:
            at = from_utc_text(at_text)
            if at > self.now:
                continue  # later than now; a row written after it with an earlier time still counts
            if code not in self.units:
                continue
            if action in TRANSITIONS:
                if to_state:
                    self.state[code] = to_state
                self.last_seq[code] = seq
            else:
                cohort = json.loads(detail or "{}").get("cohort")
                if cohort:
                    (self.cohorts[code].add if action == "designate" else self.cohorts[code].discard)(cohort)
            _, level, parent = self.units[code]
            touched = [code] + ([parent] if level == "township" and parent in self.units else [])
            for c in touched:
                if self.units[c][1] in ("township", "county"):
                    self._evaluate(c, at, seq)
            if level == "township" and parent:
                self._count(parent, local_date(at))

    # -- answers -----------------------------------------------------------------------------------
    def county_of(self, code: str) -> str | None:
        name, level, parent = self.units[code]
        if level == "county":
            return code
        return parent if level == "township" else None

    def outcomes(self, milestone_id: str | None = None) -> list[Outcome]:
        """Every (unit, milestone) owed as of `now`, with when it was met and whether in time."""
        out = []
        deadlines = {m.id: m.deadline for m in self.campaign.milestones}
        order = {m.id: i for i, m in enumerate(self.campaign.milestones)}
        for (code, mid), st in self.standing.items():
            if milestone_id is not None and mid != milestone_id:
                continue
            deadline = deadlines[mid]
            if st.met:
                met_day = local_date(st.since)
                late = (met_day - deadline).days
                status, days = ("late", late) if late > 0 else ("on_time", 0)
            elif self.today > deadline:
                status, days = "overdue", (self.today - deadline).days
            else:
                status, days = "pending", (deadline - self.today).days
            name, level, _ = self.units[code]
            out.append(Outcome(code, name, level, self.county_of(code), mid, deadline, st.since if st.met else None,
                               st.seq if st.met else None, status, days))
        out.sort(key=lambda o: (order[o.milestone], o.level != "county", o.county_code or "", o.unit_code))
        return out

    def trend(self) -> dict[str, list[TrendPoint]]:
        """Per county (and city holding townships), its counts on each day they changed."""
        return {c: list(p) for c, p in sorted(self.points.items())}


def replay(session: Session, campaign: Campaign, now: dt.datetime) -> Replay:
    """The campaign as the audit log says it stood at `now`."""
    return Replay(session, campaign, now)
