"""The dates each milestone is reminded on (after the working-day shifts), for the campaign or a unit,
and their export as an iCalendar file officials can import."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anjian.states.milestones import milestones
from anjian.workflow.clock import local_date
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.reminders.due import ladder_of
from anjian.workflow.reminders.ladder import Ladder, overdue_rungs, reminder_rungs
from anjian.workflow.reminders.workdays import FALLBACK, load_office_calendar
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Unit


@dataclass(frozen=True)
class RungDay:
    rung: str
    kind: str
    nominal: str
    day: str
    shifted: bool


@dataclass(frozen=True)
class MilestoneDates:
    id: str
    name: str
    deadline: str
    status: str | None
    days: int | None
    reminders: list[RungDay]
    overdue: list[RungDay]


@dataclass(frozen=True)
class LadderDays:
    """When reminders go out: days before a deadline, and every how many days once overdue."""

    before: list[int]
    overdue_every: int


@dataclass(frozen=True)
class DeadlinesResult:
    unit: str | None
    unit_name: str | None
    today: str
    ladder: LadderDays
    calendar: dict[str, str]
    warnings: list[str]
    milestones: list[MilestoneDates]


def _rd(r) -> RungDay:
    return RungDay(r.name, r.kind, r.nominal.isoformat(), r.day.isoformat(), r.shifted)


def deadlines(db: Database, now: dt.datetime, unit: str | None = None, overdue_weeks: int = 4) -> DeadlinesResult:
    """Every milestone (of the unit, if given) with its reminder days and first overdue notices."""
    today = local_date(now)
    with db.read() as session:
        campaign = campaign_in_force(session)
        cal = load_office_calendar(session)
        ladder: Ladder = ladder_of(campaign)
        statuses = {}
        code = name = None
        wanted = [m.id for m in campaign.milestones]
        if unit:
            resolver = Resolver(session)
            ref = resolver.resolve(unit)
            code, name = ref.code, resolver.path(session.get_one(Unit, ref.code))
            facts = FactsLoader(session, campaign, now).facts(ref.code)
            ms = milestones(facts, campaign, today)
            statuses = {m.id: m for m in ms}
            wanted = [m.id for m in ms]
        out = []
        for m in campaign.milestones:
            if m.id not in wanted:
                continue
            until = m.deadline + dt.timedelta(days=1 + ladder.overdue_every * (overdue_weeks - 1))
            s = statuses.get(m.id)
            out.append(MilestoneDates(m.id, m.name, m.deadline.isoformat(), s.status if s else None, s.days if s else None,
                                      [_rd(r) for r in reminder_rungs(m.deadline, ladder, cal)],
                                      [_rd(r) for r in overdue_rungs(m.deadline, ladder, cal, until)]))
        years = sorted({m.deadline.year for m in campaign.milestones} | {today.year})
        sources = {str(y): cal.source(y) for y in years}
        warnings = [f"{y} 年尚无官方节假日安排，按周末和法定节假日推算（可用 anjian calendar load 载入当年官方安排）"
                    for y, s in sources.items() if s == FALLBACK]
        return DeadlinesResult(code, name, today.isoformat(), LadderDays(list(ladder.before), ladder.overdue_every),
                               sources, warnings, out)


def to_ics(result: DeadlinesResult, campaign_title: str = "乡镇安全监管规范化建设") -> bytes:
    """An iCalendar file: each deadline and each reminder day as an all-day event."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//anjian//乡镇安全监管规范化建设//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{campaign_title}{'：' + result.unit_name if result.unit_name else ''}")
    stamp = dt.datetime(2014, 12, 10, tzinfo=dt.UTC)
    who = result.unit or "campaign"
    for m in result.milestones:
        deadline = dt.date.fromisoformat(m.deadline)
        ev = Event()
        ev.add("uid", f"{who}-{m.id}-deadline@anjian")
        ev.add("dtstamp", stamp)
        ev.add("summary", f"【期限】{m.name}")
        ev.add("dtstart", deadline)
        ev.add("dtend", deadline + dt.timedelta(days=1))
        ev.add("description", f"{m.name}：{m.deadline} 前完成")
        cal.add_component(ev)
        for r in m.reminders:
            day = dt.date.fromisoformat(r.day)
            ev = Event()
            ev.add("uid", f"{who}-{m.id}-{r.rung}@anjian")
            ev.add("dtstamp", stamp)
            left = (deadline - day).days
            ev.add("summary", f"【提醒】{m.name}（还剩 {left} 天）")
            ev.add("dtstart", day)
            ev.add("dtend", day + dt.timedelta(days=1))
            note = f"原定 {r.nominal}，因非工作日提前" if r.shifted else ""
            ev.add("description", f"{m.name}，期限 {m.deadline}。{note}")
            cal.add_component(ev)
    return cal.to_ical()
