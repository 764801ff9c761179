"""The reminder ladder: on which working days a unit is reminded of a deadline, and told it is late.

By default 30, 14, 7, 3 and 1 days before the deadline, then overdue the day after and every 7 days
until met. A reminder that falls on a day off moves to the working day before; an overdue notice that
falls on a day off moves to the working day after, so it never goes out before the deadline passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anjian.workflow.reminders.workdays import WorkCalendar


@dataclass(frozen=True)
class Ladder:
    before: tuple[int, ...] = (30, 14, 7, 3, 1)
    overdue_every: int = 7


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: its name (d-30 … d-1, o+1, o+8 …), the day it goes out, its kind."""

    name: str
    nominal: dt.date
    day: dt.date
    kind: str  # reminder | overdue
    order: int

    @property
    def shifted(self) -> bool:
        return self.day != self.nominal


def reminder_rungs(deadline: dt.date, ladder: Ladder, cal: WorkCalendar) -> list[Rung]:
    """The reminders before a deadline, on working days; rungs that land on the same day merge into
    the later one (the message then tells the true number of days left)."""
    by_day: dict[dt.date, Rung] = {}
    for n, days in enumerate(sorted(set(ladder.before), reverse=True)):
        nominal = deadline - dt.timedelta(days=days)
        day = cal.on_or_before(nominal)
        by_day[day] = Rung(f"d-{days}", nominal, day, "reminder", n)
    return sorted(by_day.values(), key=lambda r: r.order)


def overdue_rungs(deadline: dt.date, ladder: Ladder, cal: WorkCalendar, until: dt.date) -> list[Rung]:
    """Overdue notices from the day after the deadline, every `overdue_every` days, up to `until`."""
    out: list[Rung] = []
    late = 1
    base = len(ladder.before)
    while True:
        nominal = deadline + dt.timedelta(days=late)
        if nominal > until:
            break
        day = cal.on_or_after(nominal)
        if not out or day != out[-1].day:
            out.append(Rung(f"o+{late}", nominal, day, "overdue", base + late))
        late += ladder.overdue_every
    return [r for r in out if r.day <= until]


def latest_due(deadline: dt.date, today: dt.date, ladder: Ladder, cal: WorkCalendar) -> Rung | None:
    """The one rung to send today if nothing later was sent: the latest whose day has come.

    A daemon that was down across several rungs thus sends the latest missed one, once.
    """
    if today <= deadline:
        due = [r for r in reminder_rungs(deadline, ladder, cal) if r.day <= today]
    else:
        due = overdue_rungs(deadline, ladder, cal, today)
    return due[-1] if due else None


def rung_order(name: str, ladder: Ladder) -> int:
    """Sort key of a rung name: later rungs are larger."""
    if name.startswith("d-"):
        days = int(name[2:])
        return sorted(set(ladder.before), reverse=True).index(days) if days in ladder.before else -days
    return len(ladder.before) + int(name[2:])
