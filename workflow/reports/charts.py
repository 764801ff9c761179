"""Charts for the reports, drawn with matplotlib as inline SVG: text stays text (the browser sets the
Chinese in the reader's own fonts), no script, no external reference, one id and aria-label per chart.

matplotlib is imported inside the functions (it takes a second to load) and only its SVG canvas is
used — never pyplot, never a GUI backend.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from anjian.i18n import N_, _, pgettext

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "DejaVu Sans"]
ACCEPTED, STARTED, IDLE, LATE, TODAY = "#2e7d32", "#f9a825", "#cfd8dc", "#c62828", "#c62828"
# The charts' titles (aria-label and <title>), translated when drawn.
COUNTIES_LABEL = N_("Townships per county: up to standard, building, not started")
TREND_LABEL = N_("Townships up to standard per county over time")
STAGES_LABEL = N_("The plan's stages, its milestones and today")
LINE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#a6761d", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]


@dataclass(frozen=True)
class Bar:
    """One county in the progress chart."""

    name: str
    accepted: int
    started: int
    townships: int
    overdue: bool = False


@dataclass(frozen=True)
class Series:
    """One county's accepted townships over time: (day, count) at each change, oldest first."""

    name: str
    points: Sequence[tuple[dt.date, int]]


@dataclass(frozen=True)
class Mark:
    """A date to mark on a time axis: a milestone's deadline, or a stage."""

    label: str
    day: dt.date
    end: dt.date | None = None
    row: str | None = None


# Text drawn as outlines instead of <text>: for a chart that is an image file of its own (an <img> on a
# web page), which cannot count on the fonts of whoever looks at it (a browser may even draw an image's
# text before it has found a CJK font, and never again). Inline charts keep their text: selectable, read aloud.
TEXT_AS_PATHS: ContextVar[bool] = ContextVar("anjian_chart_text_as_paths", default=False)


@contextmanager
def text_as_paths() -> Iterator[None]:
    token = TEXT_AS_PATHS.set(True)
    try:
        yield
    finally:
        TEXT_AS_PATHS.reset(token)


@contextmanager
def _style():
    """matplotlib settings for one chart, restored afterwards: SVG text as text (or outlines, see
    TEXT_AS_PATHS), CJK fonts first."""
    import matplotlib

    quiet = logging.getLogger("matplotlib.font_manager")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "findfont: Font family … not found" for the fonts this machine lacks
    try:
        with matplotlib.rc_context({
            "svg.fonttype": "path" if TEXT_AS_PATHS.get() else "none", "svg.hashsalt": "anjian", "font.family": ["sans-serif"],
            "font.sans-serif": CJK_FONTS, "axes.unicode_minus": False, "font.size": 9,
            "axes.spines.top": False, "axes.spines.right": False,
        }), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
            yield
    finally:
        quiet.setLevel(level)


def _svg(fig, chart_id: str, label: str) -> str:
    """The figure as an <svg> element for inline HTML: no XML prolog, no namespace URLs, ids made
    unique to this chart (a page holds several), and the chart's own id, role and aria-label."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    text = re.sub(r'(\bid="|url\(#|href="#)([^")]+)', lambda m: f"{m[1]}{chart_id}-{m[2]}", text)
    label = html.escape(label, quote=True)
    return text.replace("<svg", f'<svg id="{chart_id}" class="chart" role="img" aria-label="{label}"', 1).replace(
        ">", f"><title>{label}</title>", 1)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def county_bars(bars: Sequence[Bar], chart_id: str = "chart-counties",
                label: str = COUNTIES_LABEL) -> str:
    """Per county a horizontal bar of its townships: accepted, started but not yet accepted, not
    started; counties with an overdue milestone have their name in red."""
    with _style():
        fig = _figure(9, 0.3 * max(len(bars), 1) + 1.1)
        ax = fig.add_subplot()
        names = [b.name for b in bars][::-1]
        rows = list(bars)[::-1]
        y = range(len(rows))
        accepted = [b.accepted for b in rows]
        building = [b.started - b.accepted for b in rows]
        idle = [b.townships - b.started for b in rows]
        ax.barh(y, accepted, color=ACCEPTED, label=_("up to standard"))
        ax.barh(y, building, left=accepted, color=STARTED, label=_("building (started, not yet up to standard)"))
        ax.barh(y, idle, left=[a + s for a, s in zip(accepted, building, strict=True)], color=IDLE, label=_("not started"))
        ax.set_yticks(list(y), names)
        for tick, b in zip(ax.get_yticklabels(), rows, strict=True):
            if b.overdue:
                tick.set_color(LATE)
        most = max([b.townships for b in rows] + [1])
        for i, b in enumerate(rows):
            ax.text(b.townships + most * 0.01, i, f"{b.accepted}/{b.townships}", va="center", fontsize=8)
        ax.set_xlim(0, most * 1.12)
        ax.set_xlabel(pgettext("chart", "townships"))
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False, fontsize=8)
        return _svg(fig, chart_id, _(label))


def _date_axis(ax, first: dt.date, last: dt.date) -> None:
    import matplotlib.dates as mdates

    ax.set_xlim(first, last)
    months = (1, 4, 7, 10) if (last - first).days > 400 else range(1, 13)
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=months))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.xaxis.set_minor_locator(mdates.MonthLocator())


def _today(ax, today: dt.date, first: dt.date, last: dt.date, top: float):
    """Today's red line and its label, drawn on the side of the line that stays inside the axes: a label
    to the right of a late `today` would run into the legend placed beside the chart."""
    ax.axvline(today, color=TODAY, linewidth=1.4, zorder=5)
    late = (today - first) > (last - first) / 2
    words = _("today {date}").format(date=today.isoformat())
    label = f"{words} " if late else f" {words}"
    return ax.text(today, top, label, color=TODAY, fontsize=8, va="top", ha="right" if late else "left", zorder=6)


def trend(series: Sequence[Series], deadlines: Sequence[Mark], today: dt.date, first: dt.date, last: dt.date,
          chart_id: str = "chart-trend", label: str = TREND_LABEL) -> str:
    """Accepted townships per county over time as step lines, carried to `today`, with each
    milestone's deadline as a dashed vertical line and today's in red."""
    with _style():
        return _svg(trend_figure(series, deadlines, today, first, last), chart_id, _(label))


def trend_figure(series: Sequence[Series], deadlines: Sequence[Mark], today: dt.date, first: dt.date, last: dt.date):
    """The trend chart as a matplotlib figure (`trend` writes it as SVG). With no line to draw yet there is
    no legend (matplotlib would warn of an empty one) and the chart says why it is empty."""
    fig = _figure(9, 3.6)
    ax = fig.add_subplot()
    top = 1
    drawn = 0
    for i, s in enumerate(series):
        days = [d for d, _ in s.points if d <= today]
        counts = [n for d, n in s.points if d <= today]
        if not days:
            continue
        days.append(max(today, days[-1]))
        counts.append(counts[-1])
        top = max(top, *counts)
        ax.step(days, counts, where="post", color=LINE_COLORS[i % len(LINE_COLORS)], linewidth=1.6, label=s.name)
        drawn += 1
    ax.set_ylim(0, top * 1.25 + 0.5)
    for m in deadlines:
        ax.axvline(m.day, color="#607d8b", linestyle="--", linewidth=0.8)
        ax.text(m.day, top * 1.25 + 0.4, f"{m.day:%m-%d} {m.label}", rotation=90, fontsize=7, va="top",
                ha="right", color="#455a64")
    _today(ax, today, first, last, top * 0.6)
    _date_axis(ax, first, last)
    ax.set_ylabel(pgettext("chart", "townships up to standard"))
    ax.yaxis.get_major_locator().set_params(integer=True)
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    else:
        ax.text(0.5, 0.5, _("No township is up to standard or building yet"), transform=ax.transAxes, ha="center", va="center",
                fontsize=9, color="#607d8b")
    return fig


def stages(phases: Sequence[Mark], deadlines: Sequence[Mark], today: dt.date, chart_id: str = "chart-stages",
           label: str = STAGES_LABEL) -> str:
    """The campaign's stages as bars on a time axis, named on the left (past ones darker, the current
    one outlined), each milestone a diamond with its date on its stage's row, and a red line for today."""
    with _style():
        fig = _figure(9, 0.42 * max(len(phases), 1) + 0.9)
        ax = fig.add_subplot()
        rows = {p.row or p.label: i for i, p in enumerate(reversed(phases))}
        for p in phases:
            i = rows[p.row or p.label]
            end = (p.end or p.day) + dt.timedelta(days=1)
            current = p.day <= today < end
            ax.barh(i, (end - p.day).days, left=p.day, height=0.5, color="#78909c" if end <= today else "#b0bec5",
                    edgecolor="#263238" if current else "none", linewidth=1.5)
        for m in deadlines:
            i = rows.get(m.row or "", 0)
            ax.plot([m.day], [i], marker="D", markersize=7, color="#546e7a" if m.day < today else "#1565c0",
                    markeredgecolor="white", zorder=4)
            ax.text(m.day, i + 0.3, f"{m.day:%m-%d}", fontsize=7, ha="center", va="bottom", color="#263238")
        ax.set_yticks(list(range(len(phases))), [p.label for p in reversed(phases)])
        ax.set_ylim(-0.5, len(phases) - 0.05)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        first = min([p.day for p in phases] + [today]) - dt.timedelta(days=10)
        last = max([(p.end or p.day) for p in phases] + [today]) + dt.timedelta(days=10)
        _date_axis(ax, first, last)
        _today(ax, today, first, last, len(phases) - 0.1)
        return _svg(fig, chart_id, _(label))
