"""`status`: the city at a glance — per county (or summed per city or province) its stage, townships
accepted/total per cohort, the next milestone and what is overdue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import select

from anjian.i18n import _
from anjian.states.labels import cohort_ids, state_name
from anjian.states.machines import SPECS
from anjian.states.milestones import MilestoneStatus
from anjian.workflow.errors import BadInput
from anjian.workflow.outlook.forecast import Forecast, forecasts
from anjian.workflow.outlook.snapshot import Snapshot, check_by, no_level, scope_unit
from anjian.workflow.reminders.workdays import load_office_calendar
from anjian.workflow.services.registry import campaign_in_force, drill_in
from anjian.workflow.services.stages import stage_on
from anjian.workflow.settings import ForecastSettings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Unit

if TYPE_CHECKING:
    from anjian.workflow.views.timeline import Replay

TOWNSHIP_STATES = tuple(SPECS["township"].states)


@dataclass(frozen=True)
class CountyStatus:
    code: str
    name: str
    state: str | None
    state_name: str
    townships: int
    accepted: int
    started: int
    cohorts: dict[str, list[int]]  # cohort -> [accepted, total] (a pair in the JSON too)
    next_milestone: MilestoneStatus | None
    overdue: list[str]
    overdue_townships: int
    level: str = "county"
    parent: str | None = None
    counties: int = 1
    counties_overdue: int = 0
    states: dict[str, int] = field(default_factory=dict)  # township state -> how many (every state, zeros too)
    milestones: list[MilestoneStatus] = field(default_factory=list)  # a county's own, in the campaign's order
    forecast: list[Forecast] = field(default_factory=list)  # its coming milestones at its present pace (预警)


@dataclass(frozen=True)
class StageInfo:
    """One stage of the campaign and where it stands against today: passed, current or ahead."""

    id: str
    name: str
    starts: dt.date
    ends: dt.date
    phase: str


@dataclass(frozen=True)
class MilestoneInfo:
    """One milestone of the campaign: its deadline, its stage, and days from today (negative: past)."""

    id: str
    name: str
    deadline: dt.date
    stage: str
    days: int


@dataclass(frozen=True)
class CityInfo:
    """The city the campaign runs in, and its stage."""

    code: str
    name: str
    state: str | None
    state_name: str


@dataclass(frozen=True)
class Totals:
    """The rows summed (field order is the JSON's key order)."""

    townships: int
    accepted: int
    started: int
    overdue_townships: int
    counties_overdue: int
    counties: int
    states: dict[str, int] = field(default_factory=dict)  # township state -> how many
    counties_warned: int = 0  # counties with a coming milestone warned of (预警)


@dataclass(frozen=True)
class StatusResult:
    now: dt.datetime
    today: dt.date
    campaign: str
    title: str
    city: CityInfo | None
    counties: list[CountyStatus]  # the rows, one per county — or per city or province with `by`
    totals: Totals
    by: str = "county"
    drill: bool = False  # a drill (演练) database: practice data, never the real state of the campaign
    stages: list[StageInfo] = field(default_factory=list)  # the campaign's, against today
    milestones: list[MilestoneInfo] = field(default_factory=list)  # the campaign's, by deadline


def status(db: Database, now: dt.datetime, county: str | None = None, by: str = "county",
           as_of: bool | Replay = False, warning: ForecastSettings | None = None) -> StatusResult:
    """Per county (or city, or province): its stage, townships accepted/total per cohort, the next
    milestone, what is overdue, and (per county) the forecast of its coming milestones, warned of by
    `warning`'s threshold and horizon. One GROUP BY over the townships; milestones per distinct case.
    With `as_of` the states are those the audit log says units had at `now` (a report of the past);
    a caller that replayed the log to `now` already gives its Replay instead of True."""
    check_by(by)
    with db.read() as session:
        campaign = campaign_in_force(session)
        scope = None
        if county:
            scope = scope_unit(session, county)
            if scope.level == "township":
                raise BadInput(_("{name} ({code}) is a township, not a county, city or province").format(
                    name=scope.name, code=scope.code))
        if as_of:
            from anjian.workflow.views.timeline import replay

            replayed = replay(session, campaign, now) if isinstance(as_of, bool) else as_of
            snap = Snapshot(session, campaign, now, replayed)
        else:
            snap = Snapshot(session, campaign, now)
        # Every county, and every city that holds townships directly, is a county-level row.
        rows = sorted(u.code for u in snap.upper.values() if u.level == "county")
        rows += sorted(u.code for u in snap.upper.values() if u.level == "city" and snap.groups.get(u.code))
        if scope is not None:
            within = snap.within(scope)
            rows = [c for c in rows if c in within]
        per = sorted((_county_row(snap, c) for c in rows), key=lambda r: r.code)
        # counted in the totals however the rows are grouped
        ahead = forecasts(snap, rows, warning, is_workday=load_office_calendar(session).is_workday)
        per = [replace(r, forecast=ahead.get(r.code, [])) for r in per]
        out = per if by == "county" else _grouped(snap, per, by)
        totals = Totals(sum(r.townships for r in per), sum(r.accepted for r in per), sum(r.started for r in per),
                        sum(r.overdue_townships for r in per), sum(bool(r.overdue) for r in per), len(per),
                        _summed_states(per), sum(any(f.warning for f in r.forecast) for r in per))
        city = snap.upper.get(campaign.city) if campaign.city else None
        # The stored stage lags until the scheduler has run: the stage shown is the one the dates give.
        stage = stage_on(campaign, snap.today) if city else None
        info = CityInfo(city.code, city.name, stage, state_name("city", stage)) if city else None
        return StatusResult(now, snap.today, campaign.id, campaign.title, info, out, totals, by, drill_in(session),
                            *_plan(campaign, snap.today))


def _plan(campaign, today: dt.date) -> tuple[list[StageInfo], list[MilestoneInfo]]:
    """The campaign's stages (passed, current or ahead of today) and its milestones by deadline."""
    def phase(s) -> str:
        return "passed" if today > s.ends else "current" if today >= s.starts else "ahead"

    stages = [StageInfo(s.id, s.name, s.starts, s.ends, phase(s)) for s in campaign.stages]
    milestones = [MilestoneInfo(m.id, m.name, m.deadline, m.stage, (m.deadline - today).days)
                  for m in sorted(campaign.milestones, key=lambda m: m.deadline)]
    return stages, milestones


def _summed_states(rows: list[CountyStatus]) -> dict[str, int]:
    out = dict.fromkeys(TOWNSHIP_STATES, 0)
    for r in rows:
        for k, n in r.states.items():
            out[k] = out.get(k, 0) + n
    return out


def _county_row(snap: Snapshot, code: str) -> CountyStatus:
    u = snap.upper[code]
    by = {k: [0, 0] for k in snap.campaign.cohort_ids}
    states = dict.fromkeys(TOWNSHIP_STATES, 0)
    townships = accepted = started = late_kids = 0
    for g in snap.groups.get(code, ()):
        townships += g.count
        states[g.state] = states.get(g.state, 0) + g.count
        accepted += g.count if g.state == "accepted" else 0
        started += g.count if g.state != "not_started" else 0
        for c, bit in snap.bits.items():
            if g.mask & bit:
                by[c][1] += g.count
                by[c][0] += g.count if g.state == "accepted" else 0
        if snap.exact and any(m.status == "overdue" for m in snap.township(g.state, g.mask)):
            late_kids += g.count
    if not snap.exact:  # a campaign whose township milestones read more than state and cohorts
        kids = list(snap.session.scalars(select(Unit.code).where(Unit.parent_code == code, Unit.level == "township")))
        snap.loader().prefetch([code])
        late_kids = sum(any(m.status == "overdue" for m in snap.township("", 0, k)) for k in kids)
    if u.level == "county":
        ms = snap.county(code)
        nxt = next((m for m in ms if m.status == "pending"), None)
        late = [m.id for m in ms if m.status == "overdue"]
        state, shown_state = u.state, state_name("county", u.state)
    else:  # a city holding townships directly has no county stage of its own
        ms, nxt, late, state, shown_state = [], None, [], None, "—"
    return CountyStatus(code, u.name, state, shown_state, townships, accepted, started, by, nxt, late, late_kids,
                        u.level, u.parent, 1, int(bool(late)), states, list(ms))


@dataclass
class _Sum:
    """County rows being summed into one city or province."""

    townships: int = 0
    accepted: int = 0
    started: int = 0
    overdue_townships: int = 0
    counties: int = 0
    counties_overdue: int = 0
    cohorts: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in cohort_ids()})
    overdue: set[str] = field(default_factory=set)
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOWNSHIP_STATES, 0))

    def add(self, r: CountyStatus) -> None:
        self.townships += r.townships
        self.accepted += r.accepted
        self.started += r.started
        self.overdue_townships += r.overdue_townships
        self.counties += r.counties
        self.counties_overdue += r.counties_overdue
        for k, (done, total) in r.cohorts.items():
            self.cohorts[k][0] += done
            self.cohorts[k][1] += total
        self.overdue.update(r.overdue)
        for k, n in r.states.items():
            self.states[k] = self.states.get(k, 0) + n


def _grouped(snap: Snapshot, per: list[CountyStatus], by: str) -> list[CountyStatus]:
    """County rows summed into their city or province."""
    if not any(u.level == by for u in snap.upper.values()):
        raise no_level(by)
    acc: dict[str, _Sum] = {}
    for r in per:
        key = r.code if r.level == by else snap.tree.ancestor_at(r.parent, by)
        if key is not None:
            if key not in acc:
                acc[key] = _Sum()
            acc[key].add(r)
    order = [m.id for m in snap.campaign.milestones]
    out = []
    for code in sorted(acc):
        a, u = acc[code], snap.upper[code]
        out.append(CountyStatus(code, u.name, None, "—", a.townships, a.accepted, a.started, a.cohorts, None,
                                sorted(a.overdue, key=order.index), a.overdue_townships, u.level, u.parent,
                                a.counties, a.counties_overdue, a.states))
    return out
