"""The progress report's early warning (预警): each county's coming milestones with the chance of meeting
them at its present pace, the warned first — one row per county and milestone, from the forecasts the
report's `status` already computed (never a second forecast), and the words every format writes them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anjian.i18n import _, pgettext
from anjian.states.campaign import Milestone
from anjian.states.labels import MILESTONE_SHORT
from anjian.workflow.outlook.pace import RUNS, WINDOW
from anjian.workflow.settings import ForecastSettings
from anjian.workflow.views.status import CountyStatus


@dataclass(frozen=True)
class WarningRow:
    """One coming milestone of one county at its pace (field order is the JSON's key order)."""

    county: str  # the county's code
    county_name: str
    milestone: str
    milestone_name: str
    deadline: dt.date
    needed: int  # townships still to be accepted for it
    probability: float  # of meeting the deadline, 0–1
    expected: dt.date | None  # the median completion day; None: not within two years
    basis: str  # county (its own record) | city (its city's pace, scaled to its size)
    per_week: float  # acceptances a working week the pace expects
    warning: bool  # less likely than the threshold, its deadline within the horizon


def rows(counties: Sequence[CountyStatus], milestones: Sequence[Milestone]) -> list[WarningRow]:
    """Every county's forecast rows: the warned first (the nearest deadline, then the least likely),
    then the others by county and deadline."""
    names = {m.id: m.name for m in milestones}
    out = [WarningRow(c.code, c.name, f.milestone, names.get(f.milestone, f.milestone), f.deadline, f.needed,
                      f.probability, f.expected, f.basis, f.per_week, f.warning)
           for c in counties for f in c.forecast]
    return sorted(out, key=lambda r: (0, r.deadline, r.probability, r.county) if r.warning
                  else (1, r.county, r.deadline, r.probability))


def percent_words(p: float) -> str:
    """A probability as the report writes it: 12%."""
    return f"{p:.0%}"


def expected_words(day: dt.date | None) -> str:
    """The median completion day, or words saying it is beyond two years at this pace."""
    return day.isoformat() if day is not None else pgettext("forecast", "not within two years")


def basis_words(basis: str) -> str:
    return {"county": pgettext("forecast", "its own record"),
            "city": pgettext("forecast", "the city's pace")}.get(basis, basis)


def pace_words(per_week: float) -> str:
    """Acceptances a week: one decimal, two below one (a small county's city-scaled pace is a few hundredths)."""
    return f"{per_week:.1f}" if per_week >= 0.95 else f"{per_week:.2f}"


def short_name(r: WarningRow) -> str:
    """The milestone in a few characters (the built-in campaign's short names), else its name."""
    return MILESTONE_SHORT.get(r.milestone, r.milestone_name)


def mark(r: WarningRow) -> str:
    return pgettext("forecast", "⚠ warned") if r.warning else ""


def headers(sheet: bool = False) -> list[str]:
    """The section's columns, in every format (a workbook's chance is a number of per cent)."""
    return [pgettext("column", "Warning"), pgettext("column", "County"), pgettext("column", "Milestone"),
            pgettext("column", "Deadline"),
            pgettext("forecast", "Chance in time (%)") if sheet else pgettext("forecast", "Chance in time"),
            pgettext("forecast", "Expected done"), pgettext("forecast", "Townships still needed"),
            pgettext("forecast", "Pace (a week)"), pgettext("forecast", "Pace from")]


def cells(r: WarningRow) -> list[str]:
    """One row's cells as text (Markdown and the page)."""
    return [mark(r), r.county_name, r.milestone_name, r.deadline.isoformat(), percent_words(r.probability),
            expected_words(r.expected), str(r.needed), pace_words(r.per_week), basis_words(r.basis)]


def typed(r: WarningRow) -> list[object]:
    """One row's cells for a workbook: numbers and dates typed (the chance in per cent)."""
    return [mark(r) or None, r.county_name, r.milestone_name, r.deadline, round(100 * r.probability, 1),
            r.expected or expected_words(None), r.needed, r.per_week, basis_words(r.basis)]


def sheet(rows: list[WarningRow]) -> tuple[list[str], list[list[object]]]:
    """The workbook sheet's headers and typed rows."""
    return headers(sheet=True), [typed(r) for r in rows]


def county_cell(c: CountyStatus) -> str | None:
    """A county's warned milestones with their chances, for its row of the CSV: 县示范 12%; 重点 30%."""
    warned = sorted((f for f in c.forecast if f.warning), key=lambda f: (f.deadline, f.probability))
    return _("; ").join(f"{MILESTONE_SHORT.get(f.milestone, f.milestone)} {percent_words(f.probability)}"
                        for f in warned) or None


def summary(counties_warned: int) -> str:
    """The sentence the Markdown summary gains ("" when no county is warned)."""
    return _(" {count} counties warned: a coming milestone is unlikely at their present pace.").format(
        count=counties_warned) if counties_warned else ""


def markdown(rows: list[WarningRow], counties_warned: int, settings: ForecastSettings,
             table: Callable[[list[str], list[list[object]]], list[str]]) -> list[str]:
    """The Markdown section's lines, its table drawn by the report's `table`; a warned row's mark, county
    and chance in bold."""
    bold = (0, 1, 4)
    out = ["", _("## Early warning ({n} counties warned)").format(n=counties_warned), "", explanation(settings), ""]
    if not rows:
        return [*out, _("No coming milestone waits on acceptances.")]
    return out + table(headers(), [[f"**{v}**" if r.warning and i in bold else v for i, v in enumerate(cells(r))]
                                   for r in rows])


def html_context(rows: list[WarningRow], settings: ForecastSettings) -> dict[str, object]:
    """What the HTML template's section reads: the rows as cells, the headers, the explanation."""
    return {"warnings": [{"county": r.county, "milestone": r.milestone, "warned": r.warning, "cells": cells(r),
                          "short": short_name(r)} for r in rows],
            "warning_heads": headers(), "warning_note": explanation(settings)}


def explanation(settings: ForecastSettings) -> str:
    """What the section's figures mean, in one paragraph, with the warning's threshold and horizon."""
    return _("The chance that a county meets each coming milestone at its present pace: its acceptances of "
             "the last {window} working days (a county with too little history of its own takes the city's "
             "pace, scaled to its size), simulated {runs:,} times. A milestone is warned of (⚠) when it is less "
             "likely than {threshold} with its deadline at most {days} days away. Expected done is the median "
             "day the townships still needed would all be accepted.").format(
        window=WINDOW, runs=RUNS, threshold=percent_words(settings.threshold), days=settings.horizon_days)
