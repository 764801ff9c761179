"""China's official working days: public holidays and the make-up working weekends (调休).

Sources, in order: a schedule the office loaded for that year (`anjian calendar load`), the official
calendar packaged by `chinesecalendar` (published one year at a time), and for a year neither covers
a fallback of weekends plus the statutory holidays the `holidays` library computes — said so by
`source(year)`, so `deadlines` and the daemon's log can warn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache

from anjian.i18n import _

OFFICE, OFFICIAL, FALLBACK = "office", "official", "fallback"


@cache
def _statutory(year: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.China(years=year).keys())


def _official(day: dt.date) -> bool | None:
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None


class WorkCalendar:
    """Answers whether a day is a working day, and which source said so."""

    def __init__(self, office: Mapping[dt.date, bool] | None = None):
        self.office = dict(office or {})
        self.office_years = {d.year for d in self.office}

    def source(self, year: int) -> str:
        if year in self.office_years:
            return OFFICE
        return OFFICIAL if _official(dt.date(year, 6, 1)) is not None else FALLBACK

    def is_workday(self, day: dt.date) -> bool:
        # The office's file lists the days it rules on; any other day follows the official calendar
        # (or the fallback), so a file of make-up days alone does not turn holidays into working days.
        if day in self.office:
            return self.office[day]
        official = _official(day)
        if official is not None:
            return official
        return day.weekday() < 5 and day not in _statutory(day.year)

    def on_or_before(self, day: dt.date) -> dt.date:
        """The day itself if it is a working day, else the working day before it."""
        while not self.is_workday(day):
            day -= dt.timedelta(days=1)
        return day

    def on_or_after(self, day: dt.date) -> dt.date:
        while not self.is_workday(day):
            day += dt.timedelta(days=1)
        return day

    def fallback_years(self, first: dt.date, last: dt.date) -> list[int]:
        """Years in [first, last] for which only the fallback rule is available."""
        return [y for y in range(first.year, last.year + 1) if self.source(y) == FALLBACK]


def load_office_calendar(session) -> WorkCalendar:
    """The calendar with whatever schedule the office loaded into this database."""
    from sqlalchemy import select

    from anjian.workflow.store.models import CalendarDay

    rows = session.execute(select(CalendarDay.day, CalendarDay.workday)).all()
    return WorkCalendar({dt.date.fromisoformat(d): bool(w) for d, w in rows})


def load_schedule(db, path: str, actor: str, now, limits=None) -> dict[int, int]:
    """Load the office's official schedule (CSV or .xlsx: date,workday[,name], English or Chinese headers)
    for the years it covers, replacing any earlier schedule for those years; all rows or none."""
    from sqlalchemy import delete, insert

    from anjian.workflow.formats.tables import read_table, refuse_if
    from anjian.workflow.store import audit
    from anjian.workflow.store.models import CalendarDay

    records, problems = read_table(path, ("date", "workday"), ("name",), limits)
    words = {"1": 1, "是": 1, "班": 1, "上班": 1, "workday": 1, "work": 1, "true": 1, "yes": 1,
             "0": 0, "否": 0, "休": 0, "休息": 0, "holiday": 0, "off": 0, "false": 0, "no": 0}
    rows, seen = [], set()
    for r in records:
        try:
            day = dt.date.fromisoformat(r.values["date"]) if r.values["date"].isascii() else None
        except ValueError:
            day = None
        if day is None:
            problems.append(_("line {line}: date {date!r} is not YYYY-MM-DD").format(line=r.line, date=r.values["date"]))
            continue
        flag = words.get(r.values["workday"].strip().lower())
        if flag is None:
            problems.append(_("line {line}: workday {value!r} is not 1/0 (班/休)").format(line=r.line, value=r.values["workday"]))
            continue
        if day in seen:
            problems.append(_("line {line}: {day} is listed twice").format(line=r.line, day=day))
            continue
        seen.add(day)
        rows.append({"day": day.isoformat(), "workday": flag, "name": r.values.get("name") or None, "source": str(path)})
    if not rows and not problems:
        problems.append(_("the file lists no days"))
    refuse_if(problems, str(path))
    years = sorted({int(r["day"][:4]) for r in rows})
    from anjian.workflow.engine.authz import may, refusals_audited

    with refusals_audited(db, actor, now, "calendar load"), db.write() as session:
        may(session, actor, "calendar")
        for y in years:
            session.execute(delete(CalendarDay).where(CalendarDay.day.like(f"{y}-%")))
        session.execute(insert(CalendarDay), rows)
        audit.append(session, [audit.Entry(now, actor, "calendar_load", detail={
            "source": str(path), "years": years, "days": len(rows),
            "rows": [[r["day"], r["workday"], r["name"]] for r in rows]})])
    return {y: sum(1 for r in rows if r["day"].startswith(str(y))) for y in years}
