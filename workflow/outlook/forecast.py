"""The early warning (预警) that `status` shows: for each county and each coming milestone it owes and has
not met, how many of its townships still need acceptance, its pace from the audit log, and the chance it
meets the deadline at that pace, with the median completion day (`outlook/pace.py` does the arithmetic).

Set-based like the rest of `status`: the counties' records come from one grouped query over the audit
log's start, accept and revoke rows (counts per county and hour, never a replay per township), and what
each milestone still needs from the township counts the snapshot already holds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, func, literal_column, select

from anjian.states.campaign import Campaign, Milestone
from anjian.states.milestones import MilestoneStatus
from anjian.workflow.clock import from_utc_text, local_date
from anjian.workflow.outlook.pace import Calendar, CityPace, Draws, Record, city_pace, forecast, warned
from anjian.workflow.outlook.snapshot import Group, Snapshot, bits, cohorts_of
from anjian.workflow.settings import ForecastSettings
from anjian.workflow.store.models import AuditRow, Unit

SEED = 2014  # the same database and `now` give the same figures every time
ACTIONS = ("start", "accept", "revoke")
BACK_DAYS = 130  # calendar days behind today the calendar reaches: the window's 60 working days and holidays
AHEAD_DAYS = 730  # past the last deadline: a median completion later than this is shown as none (null)


@dataclass(frozen=True)
class Forecast:
    """One coming milestone of a county at its present pace (field order is the JSON's key order)."""

    milestone: str
    deadline: dt.date
    needed: int  # townships still to be accepted for it
    probability: float  # that it is met by the deadline
    expected: dt.date | None  # the median completion day; None: not within two years of the deadline
    basis: str  # county (its own record) | city (its city's rate, scaled: too little history of its own)
    per_week: float  # acceptances per working week the pace expects
    warning: bool  # less likely than the threshold, with the deadline within the horizon


def needed(m: Milestone, groups: list[Group], campaign: Campaign) -> int:
    """Townships of a county still to be accepted for the milestone: those whose own rule for it is
    "accepted" and are not yet; for a cohort a county must have at least N of (1–3 county demonstration
    townships), at least N accepted even when fewer are designated."""
    need, bit = 0, bits(campaign)
    for g in groups:
        rule = next((r for r in m.rules if not r.when_has and r.applies("township", cohorts_of(g.mask, campaign))), None)
        if rule is not None and tuple(rule.states) == ("accepted",) and g.state != "accepted":
            need += g.count
    for r in m.rules:
        if r.level != "township" or tuple(r.states) != ("accepted",):
            continue
        for c in r.cohorts:
            cohort = campaign.cohorts.get(c)
            if cohort is not None and cohort.per_county and c in bit:
                done = sum(g.count for g in groups if g.state == "accepted" and g.mask & bit[c])
                need = max(need, cohort.per_county[0] - done)
    return need


def records(snap: Snapshot) -> dict[str, Record]:
    """Every county's record (and every city's that holds townships directly): its townships, its first
    start and its net acceptances by day, as of `snap.today` — one grouped query over the audit log."""
    late = case((AuditRow.detail.like('%"effective"%'), AuditRow.detail), else_=literal_column("''"))
    rows = (select(Unit.parent_code.label("county"), AuditRow.action.label("action"),
                   func.substr(AuditRow.at, 1, 13).label("hour"), late.label("late"))
            .join(Unit, Unit.code == AuditRow.unit_code)
            .where(Unit.level == "township", AuditRow.action.in_(ACTIONS))).subquery()
    q = select(rows.c.county, rows.c.action, rows.c.hour, rows.c.late, func.count()).group_by(
        rows.c.county, rows.c.action, rows.c.hour, rows.c.late)
    first: dict[str, dt.date] = {}
    net: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for county, action, hour, late_detail, n in snap.session.execute(q):
        day = _day(hour, late_detail)
        if day > snap.today:
            continue
        if action == "start":
            first[county] = min(day, first.get(county, day))
        else:
            net[county][day] += n if action == "accept" else -n
    out = {}
    for code, groups in snap.groups.items():
        if code not in snap.upper:
            continue
        days = tuple(sorted((d, n) for d, n in net.get(code, {}).items() if n))
        out[code] = Record(sum(g.count for g in groups), first.get(code), days)
    return out


def _day(hour: str, late_detail: str) -> dt.date:
    """The Shanghai day a row counts on: the date a late entry (补录) attests, else the day it was written."""
    if late_detail:
        effective = json.loads(late_detail).get("effective")
        if effective:
            return dt.date.fromisoformat(effective)
    return local_date(from_utc_text(hour + ":00:00.000000Z"))


def forecasts(snap: Snapshot, codes: list[str], settings: ForecastSettings | None = None, *,
              is_workday: Callable[[dt.date], bool]) -> dict[str, list[Forecast]]:
    """For each county of `codes`, its coming milestones (owed, not met, deadline today or later) that
    wait on acceptances, each with its forecast; `is_workday` is the office's calendar (the callers have
    it loaded: `reminders.workdays`, a layer above)."""
    settings = settings or ForecastSettings()
    owed: dict[str, list[tuple[Milestone, MilestoneStatus, int]]] = {}
    for code in codes:
        if snap.upper[code].level != "county":
            continue
        groups = snap.groups.get(code, [])
        coming = [(m, s, needed(m, groups, snap.campaign))
                  for m, s in zip(_owed(snap, code), snap.county(code), strict=True) if s.status == "pending"]
        if coming := [c for c in coming if c[2] > 0]:
            owed[code] = coming
    if not owed:
        return {}
    today = snap.today
    last = max(s.deadline for coming in owed.values() for _, s, _ in coming)
    cal = Calendar.of(today - dt.timedelta(days=BACK_DAYS), last + dt.timedelta(days=AHEAD_DAYS), is_workday)
    recs = records(snap)
    began = snap.campaign.stages[0].starts if snap.campaign.stages else snap.campaign.issued
    pools: dict[str | None, list[str]] = defaultdict(list)
    for code in recs:
        pools[_pool(snap, code)].append(code)
    paces: dict[str | None, CityPace] = {}
    draws = Draws(SEED)
    out: dict[str, list[Forecast]] = {}
    for code, coming in owed.items():
        pool = _pool(snap, code)
        if pool not in paces:
            paces[pool] = city_pace((recs[c] for c in pools[pool]), began, today, cal)
        pace, outlooks = forecast(recs.get(code, Record(0, None)), paces[pool], [n for _, _, n in coming],
                                  [s.deadline for _, s, _ in coming], today, cal, draws)
        out[code] = [Forecast(m.id, s.deadline, o.needed, round(o.probability, 3), o.expected, pace.basis,
                              round(pace.per_week(), 2),
                              warned(o, s.deadline, today, settings.threshold, settings.horizon_days))
                     for (m, s, _), o in zip(coming, outlooks, strict=True)]
    return out


def _owed(snap: Snapshot, code: str) -> list[Milestone]:
    """The campaign's milestones in the order `snap.county` lists the county's statuses."""
    ids = [s.id for s in snap.county(code)]
    by_id = {m.id: m for m in snap.campaign.milestones}
    return [by_id[i] for i in ids]


def _pool(snap: Snapshot, code: str) -> str | None:
    """Whose pace stands in for a county with too little history: its city's (a city holding townships
    directly is its own)."""
    return snap.tree.ancestor_at(code, "city")
