"""The progress report (进度报告): the city's state per county and cohort, the campaign's stages and
milestones against today, who is overdue, and the counties' trend rebuilt from the audit log — as
one self-contained HTML page with inline SVG charts, Markdown, CSV or an Excel workbook. `build` gathers
the data (a frozen ProgressReport); the functions after it only render it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from anjian.i18n import _, is_english, pgettext
from anjian.states import labels
from anjian.states.campaign import Milestone, Stage
from anjian.states.labels import COHORT_SHORT, LEVEL_NAMES, MILESTONE_SHORT, state_name
from anjian.workflow.clock import SHANGHAI, from_utc_text
from anjian.workflow.formats.output import as_csv, to_jsonable
from anjian.workflow.reports import early_warning as ew
from anjian.workflow.settings import ForecastSettings
from anjian.workflow.store.db import Database
from anjian.workflow.views.status import CountyStatus, Totals, status
from anjian.workflow.views.timeline import Outcome, TrendPoint
from anjian.workflow.views.units import UnitRow

STATUS_CLASS = {"on_time": "on-time", "late": "late", "overdue": "overdue", "pending": "pending"}


@dataclass(frozen=True)
class Late:
    """A milestone a unit has missed, and by how many days as of the report."""

    id: str
    name: str
    deadline: dt.date
    days: int


@dataclass(frozen=True)
class OverdueUnit:
    code: str
    name: str
    level: str
    county_code: str | None
    county_name: str | None
    state_name: str
    cohorts: list[str]
    late: list[Late]


@dataclass(frozen=True)
class MilestoneTally:
    """How the counties and townships stand on one milestone: counts by outcome status."""

    milestone: Milestone
    counties: dict[str, int]
    townships: dict[str, int]


@dataclass(frozen=True)
class ProgressReport:
    title: str
    campaign: str
    issuer: str
    scope: str
    now: dt.datetime
    today: dt.date
    start: dt.date
    city_state: str | None
    counties: list[CountyStatus]
    totals: Totals
    stages: tuple[Stage, ...]
    milestones: tuple[Milestone, ...]
    outcomes: dict[str, dict[str, Outcome]]  # county code -> milestone id -> its outcome
    tallies: list[MilestoneTally]
    overdue: list[OverdueUnit]
    trend: dict[str, list[TrendPoint]]  # county code -> its counts, oldest first
    last_change: dt.datetime | None
    drill: bool = False  # from a drill (演练) database: every format says so
    warning: ForecastSettings = ForecastSettings()  # the early warning's threshold and horizon (预警)

    @property
    def names(self) -> dict[str, str]:
        return {c.code: c.name for c in self.counties}

    @property
    def stale(self) -> bool:
        """Whether units changed after `now`: the states shown are today's, the trend stops at `now`."""
        return self.last_change is not None and self.last_change > self.now


def build(db: Database, now: dt.datetime, county: str | None = None,
          warning: ForecastSettings | None = None) -> ProgressReport:
    """Everything the progress report shows, for the city or one county (or city) as of `now` (预警 by `warning`)."""
    from sqlalchemy import func, select

    from anjian.workflow.services.registry import campaign_in_force
    from anjian.workflow.store.models import AuditRow
    from anjian.workflow.store.scope import its_rows
    from anjian.workflow.views.timeline import replay

    with db.read() as session:
        campaign = campaign_in_force(session)
        rep = replay(session, campaign, now)
        trend, outcomes = rep.trend(), rep.outcomes()
        last = session.scalar(select(func.max(AuditRow.at)).where(AuditRow.action.in_(rep.moving)),
                              execution_options=its_rows)
    st = status(db, now, county, as_of=rep, warning=warning)  # states as they stood at `now` (one replay)
    late_units = _overdue_as_of(rep, outcomes, {c.code for c in st.counties})
    scope_codes = {c.code for c in st.counties}
    by_id = {m.id: m for m in campaign.milestones}
    per_county: dict[str, dict[str, Outcome]] = {c: {} for c in scope_codes}
    tallies = {m.id: (Counter(), Counter()) for m in campaign.milestones}
    for o in outcomes:
        if o.county_code not in scope_codes:
            continue
        if o.level == "county":
            per_county[o.unit_code][o.milestone] = o
            tallies[o.milestone][0][o.status] += 1
        elif o.level == "township":
            tallies[o.milestone][1][o.status] += 1
    overdue = [OverdueUnit(u.code, u.name, u.level, u.code if u.level == "county" else u.parent,
                           u.name if u.level == "county" else u.parent_name, state_name(u.level, u.state), u.cohorts,
                           [Late(i, by_id[i].name, by_id[i].deadline, (st.today - by_id[i].deadline).days)
                            for i in u.overdue or ()])
               for u in late_units if u.level in ("township", "county")]
    overdue.sort(key=lambda u: (u.county_code or "", u.level != "county", u.code))
    single = county and len(st.counties) == 1 and st.counties[0].level == "county"
    scope = st.counties[0].name if single else (st.city.name if st.city else campaign.title)
    start = min([p[0].day for p in trend.values() if p] + [s.starts for s in campaign.stages])
    return ProgressReport(
        campaign.title, campaign.id, campaign.issuer, scope, now, st.today, start,
        st.city.state_name if st.city else None, st.counties, st.totals, campaign.stages, campaign.milestones,
        per_county, [MilestoneTally(m, dict(tallies[m.id][0]), dict(tallies[m.id][1])) for m in campaign.milestones],
        overdue, {c: p for c, p in trend.items() if c in scope_codes}, from_utc_text(last) if last else None, st.drill,
        warning or ForecastSettings())


def _overdue_as_of(rep, outcomes, counties: set[str]) -> list[UnitRow]:
    """The units with a milestone overdue at the replay's `now`, as `units --overdue` lists them."""
    late: dict[str, list[str]] = {}
    for o in outcomes:
        if o.status == "overdue" and o.county_code in counties:
            late.setdefault(o.unit_code, []).append(o.milestone)
    rows = []
    for code in sorted(late):
        _, name, level, parent = rep.tree[code]
        cohorts = [c for c in labels.cohort_ids() if c in rep.cohorts.get(code, ())]
        rows.append(UnitRow(code, name, level, parent, rep.state.get(code), cohorts,
                            rep.tree[parent].name if parent in rep.tree else None, late[code]))
    return rows


# -- words shared by every format ------------------------------------------------------------------
def cn_date(day: dt.date) -> str:
    """A date as the report writes it: 2015年4月10日, or 10 April 2015 in English."""
    return f"{day.year}年{day.month}月{day.day}日" if not is_english() else day.strftime("%d %B %Y").lstrip("0")


def outcome_words(o) -> str:
    """A county's standing on a milestone in a few characters: 按期, 晚5天, 逾期101天, 剩20天."""
    if o is None:
        return ""
    return {"on_time": lambda: pgettext("outcome", "on time"),
            "late": lambda: pgettext("outcome", "{days} days late").format(days=o.days),
            "overdue": lambda: pgettext("outcome", "{days} days overdue").format(days=o.days),
            "pending": lambda: pgettext("outcome", "{days} days left").format(days=o.days)}[o.status]()


def short(m: Milestone) -> str:
    return MILESTONE_SHORT.get(m.id) or (m.name if len(m.name) <= 8 else m.name[:7] + "…")


def percent(done: int, total: int) -> float:
    return round(100 * done / total, 1) if total else 0.0


def stage_phase(stage: Stage, today: dt.date) -> str:
    """'passed', 'current' or 'ahead': where a stage stands against today."""
    if today > stage.ends:
        return "passed"
    return "current" if today >= stage.starts else "ahead"


def stage_status(stage: Stage, today: dt.date) -> str:
    return {"passed": _("ended"), "current": _("under way"), "ahead": _("not begun")}[stage_phase(stage, today)]


def _late_words(rep: ProgressReport, ids: list[str]) -> str:
    by_id = {m.id: m for m in rep.milestones}
    return _("; ").join(pgettext("outcome", "{name} ({days} days overdue)").format(
        name=by_id[i].name, days=(rep.today - by_id[i].deadline).days) for i in ids)


# -- CSV and the workbook's first sheet: one row per county ----------------------------------------
def county_table(rep: ProgressReport) -> tuple[list[str], list[list[object]]]:
    """Headers and typed rows (numbers stay numbers) of the per-county table."""
    cohorts = labels.milestone_cohort_ids()
    headers = [pgettext("column", "Code"), pgettext("column", "County"), pgettext("column", "Stage"), pgettext("column", "Townships"), pgettext("column", "Up to standard"),
               pgettext("export", "Up to standard (%)"), pgettext("column", "Started"),
               *(h for c in cohorts for h in (pgettext("export", "{cohort} up to standard").format(cohort=COHORT_SHORT[c]),
                                              pgettext("export", "{cohort} in all").format(cohort=COHORT_SHORT[c]))),
               pgettext("column", "Next milestone"), pgettext("export", "Its deadline"), pgettext("export", "Days left"),
               pgettext("column", "Overdue milestones"), pgettext("export", "Overdue townships"),
               *(f"{m.deadline.isoformat()} {m.name}" for m in rep.milestones), pgettext("column", "Warning")]
    rows = []
    for c in rep.counties:
        nxt = c.next_milestone
        rows.append([c.code, c.name, c.state_name, c.townships, c.accepted, percent(c.accepted, c.townships), c.started,
                     *(n for k in cohorts for n in c.cohorts[k]),
                     nxt.name if nxt else None, nxt.deadline if nxt else None,
                     nxt.days if nxt else None, _late_words(rep, c.overdue) or None, c.overdue_townships,
                     *(outcome_words(rep.outcomes[c.code].get(m.id)) or None for m in rep.milestones),
                     ew.county_cell(c)])
    return headers, rows


def csv_text(rep: ProgressReport) -> str:
    """One row per county, Chinese headers; cells a spreadsheet would run as formulas are quoted."""
    return as_csv(*county_table(rep))


# -- Markdown ----------------------------------------------------------------------------------------
def text_bar(done: int, total: int, cells: int = 20) -> str:
    """A progress bar in characters: █ for done, ░ for the rest."""
    n = round(cells * done / total) if total else 0
    return "█" * n + "░" * (cells - n)


def _md_cell(v: object) -> str:
    text = "—" if v is None or v == "" else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[object]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return out


def markdown(rep: ProgressReport) -> str:
    """The report as Markdown: tables with text bars, the stages against today, the overdue, the trend.
    Printed to the terminal by default, so its words come from the catalog (Chinese unless ANJIAN_LANG=en)."""
    from anjian.workflow.services.registry import DRILL_BANNER

    t = rep.totals
    out = [f"> **{DRILL_BANNER}**", ""] if rep.drill else []
    state = _("; the city is in the {stage}").format(stage=rep.city_state) if rep.city_state else ""
    out += [_("# {title} progress report ({scope})").format(title=rep.title, scope=rep.scope), "",
            _("As of {date} ({time}){state}.").format(date=cn_date(rep.today),
                                                      time=f"{rep.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}", state=state),
            "",
            _("{townships} townships: {accepted} up to standard ({pct}%), {started} started, {late} overdue; "
              "{counties} counties with an overdue milestone.").format(
                townships=t.townships, accepted=t.accepted, pct=percent(t.accepted, t.townships), started=t.started,
                late=t.overdue_townships, counties=t.counties_overdue)]
    out[-1] += ew.summary(t.counties_warned)
    if rep.stale:
        out += ["", _("> Note: there were changes after {time}; every figure here is replayed from the audit log "
                      "to the report's time.").format(time=f"{rep.last_change.astimezone(SHANGHAI):%Y-%m-%d %H:%M}")]
    out += ["", _("## Counties"), ""]
    out += _md_table([pgettext("column", "County"), pgettext("column", "Stage"), pgettext("column", "All"),
                      pgettext("column", "Started"), *(COHORT_SHORT[k] for k in labels.milestone_cohort_ids()),
                      pgettext("column", "Next milestone"), pgettext("column", "Late")], [
        [c.name, c.state_name, f"`{text_bar(c.accepted, c.townships)}` {c.accepted}/{c.townships}",
         f"{c.started}/{c.townships}", *(_frac(c.cohorts[k]) for k in labels.milestone_cohort_ids()),
         _("{name} ({days} days left)").format(name=c.next_milestone.name, days=c.next_milestone.days)
         if c.next_milestone else None,
         f"**{_late_words(rep, c.overdue)}**" if c.overdue else None] for c in rep.counties])
    out += ["", _("## Stages and milestones"), "", _("Today: {date}").format(date=rep.today.isoformat()), ""]
    out += _md_table([pgettext("column", "Stage"), pgettext("column", "From"), pgettext("column", "To"),
                      pgettext("column", "Status")], [
        [s.name, s.starts.isoformat(), s.ends.isoformat(), stage_status(s, rep.today)] for s in rep.stages])
    out.append("")
    out += _md_table([pgettext("column", "Milestone"), pgettext("column", "Deadline"), pgettext("column", "From today"),
                      pgettext("column", "Counties on time/late/overdue/not due"),
                      pgettext("column", "Townships on time/late/overdue/not due")], [
        [m.milestone.name, m.milestone.deadline.isoformat(), _days_to(m.milestone.deadline, rep.today),
         _counts(m.counties), _counts(m.townships)] for m in rep.tallies])
    out += ["", _("## Milestones per county"), ""]
    out += _md_table([pgettext("column", "County"), *(m.name for m in rep.milestones)], [
        [c.name, *(_md_outcome(rep.outcomes[c.code].get(m.id)) for m in rep.milestones)] for c in rep.counties])
    out += ew.markdown(ew.rows(rep.counties, rep.milestones), t.counties_warned, rep.warning, _md_table)
    out += ["", _("## Overdue units ({n})").format(n=len(rep.overdue)), ""]
    out += _md_table([pgettext("column", "Code"), pgettext("column", "Unit"), pgettext("column", "County"),
                      pgettext("column", "State"), pgettext("column", "Overdue milestones")], [
        [u.code, f"**{u.name}**", u.county_name, u.state_name,
         _("; ").join(_("**{name} {days} days overdue** (deadline {deadline})").format(
             name=x.name, days=x.days, deadline=x.deadline.isoformat()) for x in u.late)] for u in rep.overdue])
    out += ["", _("## Trend (townships up to standard over time)"), ""]
    out += _md_table([pgettext("column", "County"), pgettext("column", "Date"), pgettext("column", "Up to standard"),
                      pgettext("column", "Started"), pgettext("column", "Townships")], [
        [rep.names.get(code, code), p.day.isoformat(), p.accepted, p.started, p.townships]
        for code, points in rep.trend.items() for p in points])
    return "\n".join(out) + "\n"


def _frac(pair: list[int]) -> str | None:
    return f"{pair[0]}/{pair[1]}" if pair[1] else None


def _md_outcome(o) -> str:
    words = outcome_words(o)
    return f"**{words}**" if o is not None and o.status in ("late", "overdue") else words


def _counts(c: dict[str, int]) -> str:
    return "/".join(str(c.get(k, 0)) for k in ("on_time", "late", "overdue", "pending"))


def _days_to(deadline: dt.date, today: dt.date) -> str:
    d = (deadline - today).days
    return pgettext("outcome", "{days} days left").format(days=d) if d >= 0 else \
        pgettext("outcome", "{days} days past").format(days=-d)


# -- Excel -------------------------------------------------------------------------------------------
def workbook(rep: ProgressReport) -> bytes:
    """An .xlsx: 县区进度 (with a bar chart), 逾期单位, 趋势, 节点完成 and 预警; bold frozen headers, numbers
    and dates typed, text always text."""
    import io

    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference

    from anjian.workflow.formats.xlsx import fill_sheet

    wb = Workbook()
    headers, rows = county_table(rep)
    sheet = pgettext("sheet", "County progress")
    ws = fill_sheet(wb.active, pgettext("sheet", "drill {sheet}").format(sheet=sheet) if rep.drill else sheet, headers, rows)
    if rows:
        chart = BarChart()
        chart.type, chart.title = "bar", pgettext("export", "Townships up to standard per county")
        chart.y_axis.title = pgettext("chart", "townships")
        chart.add_data(Reference(ws, min_col=4, max_col=5, min_row=1, max_row=len(rows) + 1), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=2, max_row=len(rows) + 1))
        chart.height, chart.width = 4 + 0.6 * len(rows), 16
        ws.add_chart(chart, f"A{len(rows) + 4}")
    fill_sheet(wb.create_sheet(), pgettext("sheet", "Overdue units"), [
        pgettext("column", "Code"), pgettext("column", "Unit"), pgettext("column", "Level"), pgettext("column", "County"), pgettext("column", "State"), pgettext("column", "Cohorts"), pgettext("column", "Overdue milestones"),
        pgettext("column", "Deadline"), pgettext("export", "Days overdue")], [
        [u.code, u.name, LEVEL_NAMES[u.level], u.county_name, u.state_name,
         _(", ").join(COHORT_SHORT[c] for c in u.cohorts) or None, x.name, x.deadline, x.days]
        for u in rep.overdue for x in u.late])
    fill_sheet(wb.create_sheet(), pgettext("sheet", "Trend"), [
        pgettext("export", "County code"), pgettext("column", "County"), pgettext("column", "Date"), pgettext("column", "Up to standard"), pgettext("column", "Started"),
        pgettext("column", "Townships")], [
        [code, rep.names.get(code, code), p.day, p.accepted, p.started, p.townships]
        for code, points in rep.trend.items() for p in points])
    words = {"on_time": pgettext("export", "done on time"), "late": pgettext("export", "done late"),
             "overdue": pgettext("export", "overdue, not done"), "pending": pgettext("export", "not yet due")}
    fill_sheet(wb.create_sheet(), pgettext("sheet", "Milestones met"), [
        pgettext("export", "County code"), pgettext("column", "County"), pgettext("column", "Milestone"), pgettext("column", "Deadline"), pgettext("column", "Status"),
        pgettext("export", "Days"), pgettext("export", "Done at"), pgettext("export", "Audit No.")], [
        [c.code, c.name, m.name, m.deadline, words[o.status], o.days,
         o.met_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if o.met_at else None, o.met_seq]
        for c in rep.counties for m in rep.milestones if (o := rep.outcomes[c.code].get(m.id)) is not None])
    fill_sheet(wb.create_sheet(), pgettext("sheet", "Early warning"), *ew.sheet(ew.rows(rep.counties, rep.milestones)))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- HTML ----------------------------------------------------------------------------------------------


def render_template(name: str, **context: object) -> str:
    from anjian.workflow.reports.templating import render_template as render  # strict, autoescaped, i18n

    return render(name, **context)


CHARTS = ("counties", "trend", "stages")


def charts(rep: ProgressReport, only: tuple[str, ...] = CHARTS) -> dict[str, str]:
    """The inline SVG charts (the three, or those in `only`): counties' bars, the trend, the stage timeline."""
    from markupsafe import Markup

    from anjian.workflow.reports import charts as ch

    def counties() -> str:
        return ch.county_bars([ch.Bar(c.name, c.accepted, c.started, c.townships, bool(c.overdue))
                               for c in rep.counties])

    def trend() -> str:
        series = [ch.Series(rep.names.get(code, code), [(p.day, p.accepted) for p in pts])
                  for code, pts in rep.trend.items()]
        end = max(s.ends for s in rep.stages) if rep.stages else rep.today
        ahead = [m.deadline for m in rep.milestones if m.deadline >= rep.today]
        last = min(end, max(rep.today + dt.timedelta(days=30), (ahead[0] if ahead else end) + dt.timedelta(days=10)))
        last = max(last, rep.today + dt.timedelta(days=10))
        deadlines = [ch.Mark(short(m), m.deadline) for m in rep.milestones if rep.start <= m.deadline <= last]
        return ch.trend(series, deadlines, rep.today, rep.start - dt.timedelta(days=5), last)

    def stages() -> str:
        phases = [ch.Mark(s.name, s.starts, s.ends, s.id) for s in rep.stages]
        return ch.stages(phases, [ch.Mark(m.name, m.deadline, row=m.stage) for m in rep.milestones], rep.today)

    drawn = {"counties": counties, "trend": trend, "stages": stages}
    return {name: Markup(drawn[name]()) for name in CHARTS if name in only}


def svg_document(svg: str) -> str:
    """An inline chart as a file of its own (an image a page shows with <img>, or a download): the SVG
    namespace an element in HTML goes without, and the XML prolog."""
    text = str(svg)  # plain text, not the Markup an HTML page is given (which would escape what is added)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)


def as_json(rep: ProgressReport, chart_names: tuple[str, ...] = ()) -> dict:
    """The report's data for a program (or a page that draws it its own way): the figures, the counties
    with their townships by state and each milestone's outcome, the stages and milestones against today,
    the overdue units, the trend; and, for each chart named, the chart as an SVG document."""
    t = rep.totals
    return {
        "title": rep.title, "campaign": rep.campaign, "issuer": rep.issuer, "scope": rep.scope, "now": rep.now,
        "today": rep.today, "city_state": rep.city_state, "drill": rep.drill, "stale": rep.stale,
        "last_change": rep.last_change, "totals": t, "accepted_pct": percent(t.accepted, t.townships),
        "counties": [{**to_jsonable(c), "accepted_pct": percent(c.accepted, c.townships),
                      "outcomes": dict(rep.outcomes.get(c.code, {}))} for c in rep.counties],
        "stages": [{"id": s.id, "name": s.name, "starts": s.starts, "ends": s.ends, "phase": stage_phase(s, rep.today)}
                   for s in rep.stages],
        "milestones": [{"id": m.id, "name": m.name, "deadline": m.deadline, "stage": m.stage,
                        "days": (m.deadline - rep.today).days, "counties": x.counties, "townships": x.townships}
                       for m, x in zip(rep.milestones, rep.tallies, strict=True)],
        "overdue": rep.overdue,
        "early_warning": ew.rows(rep.counties, rep.milestones),
        "warning_settings": {"threshold": rep.warning.threshold, "horizon_days": rep.warning.horizon_days},
        "trend": rep.trend,
        "charts": _chart_documents(rep, chart_names) if chart_names else {},
    }


def _chart_documents(rep: ProgressReport, names: tuple[str, ...]) -> dict[str, str]:
    """Each chart named as an SVG document of its own, its text drawn as outlines (an image file shows
    the same on any machine, whatever fonts it has)."""
    from anjian.workflow.reports import charts as ch

    with ch.text_as_paths():
        return {name: svg_document(svg) for name, svg in charts(rep, names).items()}


def html(rep: ProgressReport) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external reference."""
    by_id = {m.id: m for m in rep.milestones}
    counties = []
    for c in rep.counties:
        counties.append({
            "code": c.code, "name": c.name, "state": c.state_name, "townships": c.townships,
            "accepted": c.accepted, "started": c.started, "pct": percent(c.accepted, c.townships),
            "started_pct": percent(c.started - c.accepted, c.townships),
            "cohorts": [_frac(c.cohorts[k]) or "—" for k in labels.milestone_cohort_ids()],
            "next": (_("{name} ({days} days left)").format(name=short(by_id[c.next_milestone.id]), days=c.next_milestone.days)
                     if c.next_milestone else "—"),
            "next_name": _("{name}, deadline {deadline}").format(name=c.next_milestone.name, deadline=c.next_milestone.deadline)
            if c.next_milestone else "",
            "late": _(", ").join(pgettext("report", "{name} {days} days").format(
                name=short(by_id[i]), days=(rep.today - by_id[i].deadline).days) for i in c.overdue),
            "late_names": _late_words(rep, c.overdue), "overdue_townships": c.overdue_townships,
            "outcomes": [{"words": outcome_words(o) or "—", "cls": STATUS_CLASS.get(getattr(o, "status", ""), "none")}
                         for o in (rep.outcomes[c.code].get(m.id) for m in rep.milestones)],
        })
    t = rep.totals
    return render_template(
        "report_progress.html.j2",
        lang="en" if is_english() else "zh-CN",
        title=_("{title} progress report").format(title=rep.title), scope=rep.scope, campaign=rep.campaign, issuer=rep.issuer,
        today=rep.today.isoformat(), today_cn=cn_date(rep.today), now=f"{rep.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}",
        city_state=rep.city_state or "", totals=t, pct=percent(t.accepted, t.townships),
        stale=(f"{rep.last_change.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if rep.stale else ""),
        counties=counties, milestones=[{"name": m.name, "short": short(m), "deadline": m.deadline.isoformat(),
                                        "days": _days_to(m.deadline, rep.today), "passed": m.deadline < rep.today}
                                       for m in rep.milestones],
        stages=[{"name": s.name, "starts": s.starts.isoformat(), "ends": s.ends.isoformat(),
                 "status": stage_status(s, rep.today), "phase": stage_phase(s, rep.today)} for s in rep.stages],
        tallies=[{"name": x.milestone.name, "deadline": x.milestone.deadline.isoformat(),
                  "counties": [x.counties.get(k, 0) for k in ("on_time", "late", "overdue", "pending")],
                  "townships": [x.townships.get(k, 0) for k in ("on_time", "late", "overdue", "pending")]}
                 for x in rep.tallies],
        overdue=[{"code": u.code, "name": u.name, "county": u.county_name or "—", "state": u.state_name,
                  "level": LEVEL_NAMES[u.level],
                  "cohorts": _(", ").join(COHORT_SHORT[c] for c in u.cohorts) or "—",
                  "late": [{"name": x.name, "deadline": x.deadline.isoformat(), "days": x.days} for x in u.late]}
                 for u in rep.overdue],
        trend=[{"name": rep.names.get(code, code), "points": [
            {"day": p.day.isoformat(), "accepted": p.accepted, "started": p.started, "townships": p.townships}
            for p in pts]} for code, pts in rep.trend.items()],
        charts=charts(rep), cohort_names=[COHORT_SHORT[k] for k in labels.milestone_cohort_ids()],
        drill=_drill_banner(rep.drill),
        **ew.html_context(ew.rows(rep.counties, rep.milestones), rep.warning),
    )


def _drill_banner(drill: bool) -> str:
    """What a report's page says at its top when it comes from a drill database ("" when not)."""
    from anjian.workflow.services.registry import DRILL_BANNER

    return DRILL_BANNER if drill else ""
