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

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from anjian.states.campaign import Campaign
from anjian.states.guards import Facts
from anjian.states.machines import every_trigger
from anjian.states.milestones import is_met
from anjian.workflow.clock import from_utc_text, local_date
from anjian.workflow.engine.facts import Part, facts_of
from anjian.workflow.engine.tree import UnitTree
from anjian.workflow.store import scope
from anjian.workflow.store.audit import effective_at
from anjian.workflow.store.db import among
from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit, UnitCohort

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
    attested: bool = False  # met by a late entry (补录): `met_at` is the date its paper record says


@dataclass
class _Standing:
    met: bool
    since: dt.datetime | None = None
    seq: int | None = None


class Replay:
    """States and cohorts walked forward from the registry load to `now`, event by event."""

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime, only: frozenset[str] | None = None):
        self.campaign, self.now = campaign, now
        self.moving = every_trigger(campaign)  # the audit actions that move a unit's state in this campaign
        self.only = only  # the units evaluated and counted (None: all); a show replays one unit's rows
        self.today = local_date(now)
        units = select(Unit.code, Unit.name, Unit.level, Unit.parent_code)
        if only is not None:  # the units above townships (a few thousand nationally) and the townships replayed
            units = units.where(or_(Unit.level != "township", among(session, Unit.code, sorted(only))))
        self.tree = UnitTree(session.execute(units))
        self.children: dict[str, list[str]] = defaultdict(list)  # the townships of each county (or city)
        for u in self.tree:
            if u.level == "township" and u.parent:
                self.children[u.parent].append(u.code)
        self.state = {u.code: campaign.machines[u.level].initial for u in self.tree if u.level in campaign.machines}
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
            .where(AuditRow.unit_code.is_not(None), AuditRow.action.in_(self.moving | set(DESIGNATIONS)),
                   *([among(session, AuditRow.unit_code, sorted(only))] if only is not None else []))
            .order_by(AuditRow.seq).execution_options(**scope.its_rows)).all()
        start = session.execute(select(AuditRow.at).where(AuditRow.action == "registry_load").order_by(AuditRow.seq)
                                .execution_options(**{scope.EVERY_CAMPAIGN: True})).scalar()
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
        self.attested: set[int] = set()  # the rows that are late entries (补录), counted at their date
        self._walk(events)

    # -- evaluation --------------------------------------------------------------------------------
    def part(self, code: str) -> Part:
        u = self.tree[code]
        return Part(code, u.name, u.level, self.state.get(code), self.cohorts.get(code, ()))

    def facts(self, code: str, at: dt.datetime) -> Facts:
        kids = self.children.get(code, ()) if self.tree[code].level != "township" else ()
        return facts_of(self.part(code), self.campaign, at, checklist=self.values.get(code),
                        children=(self.part(k) for k in kids))

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
        only = self.only
        evaluated = [u.code for u in self.tree if u.level in ("township", "county") and (only is None or u.code in only)]
        for code in evaluated:
            self._evaluate(code, self.start, None)
        for u in self.tree:
            if self.children.get(u.code) and (only is None or u.code in only):
                self._count(u.code, first)
        for seq, at_text, code, action, to_state, detail in events:
            when = effective_at(at_text, detail)  # a late entry (补录) counts from the date it attests
            if when != at_text:
                self.attested.add(seq)
            at = from_utc_text(when)
            if at > self.now:
                continue  # later than now; a row written after it with an earlier time still counts
            if code not in self.tree:
                continue
            if action in self.moving:
                if to_state:
                    self.state[code] = to_state
                self.last_seq[code] = seq
            else:
                cohort = json.loads(detail or "{}").get("cohort")
                if cohort:
                    (self.cohorts[code].add if action == "designate" else self.cohorts[code].discard)(cohort)
            _, _, level, parent = self.tree[code]
            touched = [code] + ([parent] if level == "township" and parent in self.tree else [])
            for c in touched:
                if self.tree[c].level in ("township", "county") and (only is None or c in only):
                    self._evaluate(c, at, seq)
            if level == "township" and parent and (only is None or parent in only):
                self._count(parent, local_date(at))

    # -- answers -----------------------------------------------------------------------------------
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
            u = self.tree[code]
            out.append(Outcome(code, u.name, u.level, self.tree.county_of(code), mid, deadline, st.since if st.met else None,
                               st.seq if st.met else None, status, days, st.met and st.seq in self.attested))
        out.sort(key=lambda o: (order[o.milestone], o.level != "county", o.county_code or "", o.unit_code))
        return out

    def trend(self) -> dict[str, list[TrendPoint]]:
        """Per county (and city holding townships), its counts on each day they changed."""
        return {c: list(p) for c, p in sorted(self.points.items())}


def replay(session: Session, campaign: Campaign, now: dt.datetime, only: frozenset[str] | None = None) -> Replay:
    """The campaign as the audit log says it stood at `now`. With `only`, the rows of those units alone
    are replayed: right for them as long as `only` holds, with each unit, the townships its milestones
    count (a county's, or a city's that holds townships directly); what it says of other units is not."""
    return Replay(session, campaign, now, only)
