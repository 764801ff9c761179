"""`anjian status`, `units` and `show`: read-only views."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from anjian.i18n import _, pgettext
from anjian.states.labels import (
    COHORT_SHORT,
    MILESTONE_SHORT,
    STATE_NAMES,
    milestone_cohort_ids,
    parse_level,
    value_words,
)
from anjian.states.labels import LEVEL_NAMES as LEVEL_WORDS
from anjian.states.labels import MILESTONE_STATUS as STATUS_WORDS
from anjian.workflow.cli.common import EXPORTS, command, emit, format_option, out_option

if TYPE_CHECKING:
    from anjian.states.milestones import MilestoneStatus

BY_WORDS = {"county": "县区", "city": "市", "province": "省"}  # spreadsheet headers and titles (Chinese, as imports read them)


def by_word(by: str) -> str:
    """The column header of a `--by` grouping, in the current language."""
    return {"county": pgettext("column", "County"), "city": pgettext("column", "City"),
            "province": pgettext("column", "Province")}[by]
BY_CHOICE = click.Choice(["county", "city", "province"])


@click.command()
@click.option("--county", metavar="UNIT", help="Only this county — or the counties of this city or province.")
@click.option("--by", type=BY_CHOICE, default="county", show_default=True,
              help="One row per county, or summed per city or province.")
@click.option("--campaigns", "campaigns", is_flag=True,
              help="List the campaigns this database runs instead (as anjian campaign list).")
@format_option(EXPORTS)
@out_option()
@command
def status(env, county: str | None, by: str, fmt: str, out, campaigns: bool = False) -> None:
    """The city at a glance: per county its stage, townships accepted/total per cohort,
    the next milestone with days left, what is overdue, and a warning of a coming
    milestone it is unlikely to meet at its present pace (each milestone's chance and
    expected date: --format json). A national or provincial registry is easier to
    read summed: --by province or --by city. For a spreadsheet, --format csv or xlsx
    with --out FILE (Chinese headers, stage ids beside their names).

    Example:

    \b
        anjian status --now 2015-04-01
        anjian status --by province
        anjian status --format xlsx --out 进度.xlsx
    """
    if campaigns:
        from anjian.workflow.cli.campaigns import show_campaigns

        return show_campaigns(env, fmt if fmt in ("table", "json", "csv") else "table")
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.status import status as compute

    res = compute(env.database(), env.now, county, by, warning=env.settings.forecast)
    if by == "county":
        headers = [pgettext("column", "Code"), pgettext("column", "County"), pgettext("column", "Stage"), *_cohort_heads(), pgettext("column", "All"), pgettext("column", "Started"), pgettext("column", "Next milestone"),
                   pgettext("column", "Days left"), pgettext("column", "Overdue milestones"), pgettext("column", "Overdue townships"),
                   pgettext("column", "Warning")]
        rows = [[c.code, c.name, c.state_name, *(_frac(c.cohorts[k]) for k in milestone_cohort_ids()),
                 f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}",
                 milestone_word(c.next_milestone.id, c.next_milestone.name) if c.next_milestone else None,
                 c.next_milestone.days if c.next_milestone else None, [milestone_word(m) for m in c.overdue],
                 c.overdue_townships or None, _warning_cell(c.forecast)]
                for c in res.counties]
        drop = (0, 7, 9, 3, 4, 5)  # first to go on a narrow terminal: the code, then the finer counts
    else:
        headers = [pgettext("column", "Code"), by_word(by), pgettext("column", "Counties"), pgettext("column", "Counties overdue"), *_cohort_heads(), pgettext("column", "All"),
                   pgettext("column", "Started"), pgettext("column", "Overdue milestones"), pgettext("column", "Overdue townships")]
        rows = [[c.code, c.name, c.counties, c.counties_overdue or None,
                 *(_frac(c.cohorts[k]) for k in milestone_cohort_ids()),
                 f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}", [milestone_word(m) for m in c.overdue],
                 c.overdue_townships or None]
                for c in res.counties]
        drop = (0, 8, 4, 5, 6, 2)

    def text() -> str:
        city = res.city
        head = _("{title} ({campaign})  today {today}").format(title=res.title, campaign=res.campaign, today=res.today)
        if city:
            head += _("  {city}: {stage}").format(city=city.name, stage=city.state_name)
        t = res.totals
        foot = _("Total: {townships} townships, {accepted} up to standard, {started} started, {late} overdue; "
                 "{counties} counties with an overdue milestone").format(
            townships=t.townships, accepted=t.accepted, started=t.started, late=t.overdue_townships,
            counties=t.counties_overdue)
        if t.counties_warned:
            foot += _("; {count} counties warned: a coming milestone is unlikely at their present pace").format(
                count=t.counties_warned)
        return "\n".join([render.fit_lines(head), "", render.table(headers, rows, drop=drop), "", render.fit_lines(foot)])

    emit(fmt, text, res, sheet=lambda: _status_sheet(res, by), out=out)


def _status_sheet(res, by: str):
    """`status` for a spreadsheet: the table's columns, the stage id beside its name, counts as numbers."""
    counts = ["乡镇数", "已达标乡镇", "已开展乡镇"]
    if by == "county":
        headers = ["代码", "县区", "阶段", "阶段代码", "省示范", "县示范", "重点", "全部达标", "已开展", *counts,
                   "下一节点", "下一节点名称", "期限", "剩余天数", "逾期节点", "逾期乡镇"]
    else:
        headers = ["代码", BY_WORDS[by], "县区", "有逾期的县区", "省示范", "县示范", "重点", "全部达标", "已开展",
                   *counts, "逾期节点", "逾期乡镇"]
    rows = []
    for c in res.counties:
        shares = [*(_frac(c.cohorts[k]) for k in milestone_cohort_ids()), f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}",
                  c.townships, c.accepted, c.started]
        late = ";".join(c.overdue) or None
        if by == "county":
            m = c.next_milestone
            rows.append([c.code, c.name, c.state_name if c.state else None, c.state, *shares,
                         *((m.id, m.name, m.deadline, m.days) if m else (None,) * 4), late, c.overdue_townships])
        else:
            rows.append([c.code, c.name, c.counties, c.counties_overdue, *shares, late, c.overdue_townships])
    title = "进度" if by == "county" else f"进度（按{BY_WORDS[by]}）"
    return title, headers, rows


def _warning_cell(forecast) -> str | None:
    """The 预警 cell: the warned milestone least likely to be met, and its chance, e.g. 县示范 12%."""
    warned = [f for f in forecast if f.warning]
    if not warned:
        return None
    worst = min(warned, key=lambda f: (f.probability, f.deadline))
    return f"{milestone_word(worst.milestone)} {worst.probability:.0%}"


def _cohort_heads() -> list[str]:
    return [COHORT_SHORT[k] for k in milestone_cohort_ids()]


def milestone_word(mid: str, name: str | None = None) -> str:
    """A milestone as a table cell: its short name (the built-in campaign's), else its name, else its id."""
    return MILESTONE_SHORT.get(mid, name or mid)


def _state_order(state: str) -> tuple[int, str]:
    from anjian.states.machines import specs

    machines = specs()
    for i, level in enumerate(("township", "county", "city")):
        if state in machines[level].states:
            return i * 10 + machines[level].states.index(state), state
    return 99, state


def _state_word(state: str) -> str:
    for level in ("township", "county", "city"):
        if (level, state) in STATE_NAMES:
            return STATE_NAMES[level, state]
    return state


def _frac(pair: list[int]) -> str | None:
    accepted, total = pair
    return f"{accepted}/{total}" if total else None


@click.command()
@click.option("--level", metavar="LEVEL", help="Only this level: province, city, county or township (or their names).")
@click.option("--county", metavar="UNIT", help="Only units within this county (or city, province).")
@click.option("--cohort", metavar="COHORT", help="Only this cohort (e.g. key, or its name).")
@click.option("--state", metavar="STATE", help="Only units in this state (e.g. building, or its name).")
@click.option("--overdue", is_flag=True, help="Only units with an overdue milestone.")
@click.option("--by", type=BY_CHOICE, help="Count the units per county, city or province instead of listing them.")
@format_option(EXPORTS)
@out_option()
@command
def units(env, level, county, cohort, state, overdue, by, fmt, out) -> None:
    """List units, filtered — or count them per county, city or province (--by). For a
    spreadsheet, --format csv or xlsx with --out FILE: Chinese headers, and each level,
    state and cohort in Chinese with its id in the next column.

    Example:

    \b
        anjian units --county 宽城 --level township --state building
        anjian units --county 河北省 --level township --state accepted --by city
        anjian units --level township --format xlsx --out 乡镇.xlsx
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.units import tally
    from anjian.workflow.views.units import units as compute

    level = _parsed(level, parse_level, LEVEL_WORDS, "--level")
    # --cohort is read by the view, against the cohorts of the campaign in force
    # --state too: a campaign may declare states of its own (its stages, its county machine)
    res = compute(env.database(), env.now, level, county, cohort, state, overdue, moved=not by)
    if by:
        groups = tally(env.database(), res, by)
        states = sorted({s for g in groups for s in g.states}, key=_state_order)
        headers = [pgettext("column", "Code"), by_word(by), pgettext("column", "Units"), *(_state_word(s) for s in states), pgettext("column", "Overdue")]
        rows = [[g.code, g.name, g.units, *(g.states.get(s) for s in states), g.overdue or None] for g in groups]
        foot = _("{units} units in {groups} × {level}").format(units=len(res), groups=len(groups), level=by_word(by))
        emit(fmt, lambda: render.table(headers, rows, drop=(0,)) + "\n" + foot, groups,
             sheet=lambda: _tally_sheet(groups, states, by), out=out)
        return
    from anjian.states.labels import state_name

    headers = [pgettext("column", "Code"), pgettext("column", "Name"), pgettext("column", "Level"), pgettext("column", "Parent"), pgettext("column", "State"), pgettext("column", "Cohorts"), pgettext("column", "Overdue milestones")]
    rows = [[u.code, u.name, LEVEL_WORDS.get(u.level, u.level), u.parent_name or u.parent,
             state_name(u.level, u.state) if u.state else None, [COHORT_SHORT[c] for c in u.cohorts],
             [milestone_word(m) for m in u.overdue or ()] or None]
            for u in res]
    foot = _("Units: {n}").format(n=len(res))
    emit(fmt, lambda: render.table(headers, rows, drop=(2, 3, 0)) + "\n" + foot, res,
         sheet=lambda: _units_sheet(res), out=out)


def _parsed(text: str | None, parse, words, option: str, *more) -> str | None:
    """The identifier an official typed (identifier, Chinese or English name), or exit 2 naming the choices."""
    if not text:
        return None
    ident = parse(text)
    if ident is None:
        from anjian.states.labels import choices
        from anjian.workflow.errors import BadInput

        raise BadInput(_("{option}: unknown value “{value}”; one of: {choices}").format(
            option=option, value=text, choices=choices(words, *more)))
    return ident


def _tally_sheet(groups, states: list[str], by: str):
    """`units --by` for a spreadsheet: a count per state, headed by the state's name and id, zeros as 0."""
    headers = ["代码", BY_WORDS[by], "单位数", *(f"{_state_word(s)}（{s}）" for s in states), "有逾期"]
    rows = [[g.code, g.name, g.units, *(g.states.get(s, 0) for s in states), g.overdue] for g in groups]
    return f"单位数（按{BY_WORDS[by]}）", headers, rows


def _units_sheet(res):
    """`units` for a spreadsheet: the table's columns in Chinese, each followed by the id to filter on."""
    from anjian.states.labels import state_name

    headers = ["代码", "名称", "级别", "级别代码", "上级", "上级代码", "状态", "状态代码", "类别", "类别代码", "逾期节点"]
    rows = [[u.code, u.name, LEVEL_WORDS.get(u.level, u.level), u.level, u.parent_name, u.parent,
             state_name(u.level, u.state) if u.state else None, u.state,
             "、".join(COHORT_SHORT[c] for c in u.cohorts) or None, ";".join(u.cohorts) or None,
             ";".join(u.overdue or ()) or None] for u in res]
    return "单位", headers, rows


@click.command()
@click.argument("unit")
@format_option(("table", "json"))
@command
def show(env, unit: str, fmt: str) -> None:
    """One unit in full: what is missing from its checklist (by area), its milestones, and the
    steps that could come next with every reason one is refused now. A rectifying township
    shows what the inspector said. --format json lists every trigger.

    Example:

    \b
        anjian show 宽城峪耳崖镇
        anjian show 宽城县 --format json
    """
    from anjian.workflow.engine.authz import refusals_audited
    from anjian.workflow.views.show import show as compute

    viewer = viewer_of(env)
    with refusals_audited(env.database(), viewer or env.actor_name, env.stamp, "show"):
        res = compute(env.database(), unit, env.now, env.actor_name, viewer)
    emit(fmt, lambda: show_text(res), res)


def viewer_of(env):
    """The official asking, if this account is one (a read needs none): the service's signed-in official,
    or the one the OS account maps to. `show` refuses them a unit they may not see in full."""
    if env.call is not None:
        return env.call.actor
    from anjian.workflow.errors import NotPermitted
    from anjian.workflow.services.officials import identify

    try:
        with env.database().read() as session:
            return identify(session, env.login, env.settings.as_user)
    except NotPermitted:
        return None


def show_text(res) -> str:
    """`show` for a terminal: compact — the missing items once, grouped by area; only the next steps."""
    from anjian.states.labels import TRIGGER_NAMES
    from anjian.workflow.formats import output as render

    out = [_("{path} ({code})  {level}  state: {state}  version {version}").format(
        path=res.path, code=res.code, level=LEVEL_WORDS.get(res.level, res.level), state=res.state_name,
        version=res.version)]
    if res.cohorts:
        out.append(_("Cohorts: {cohorts}").format(cohorts=_(", ").join(COHORT_SHORT[c] for c in res.cohorts)))
    if res.remark:
        r = res.remark
        out.append(_("Inspector's remark ({trigger}, {actor}, {at}): {note}").format(
            trigger=TRIGGER_NAMES.get(r.trigger, r.trigger), actor=r.actor, at=r.at, note=r.note or _("(no note)")))
    if res.children:
        out.append(_("Townships: {counts}").format(counts=_(", ").join(
            f"{_state_word(k)} {v}" for k, v in sorted(res.children.items(), key=lambda kv: _state_order(kv[0])))))
    missing = [c for c in res.checklist if not c.ok]
    if res.checklist:
        out += ["", _("Checklist: {ok}/{total} items up to standard").format(
            ok=len(res.checklist) - len(missing), total=len(res.checklist))]
        out += _checklist_lines(res)
        if missing:
            out.append(_("  (item codes: anjian show {unit} --format json; to fill in: anjian record {unit} "
                         "--template FILE.xlsx)").format(unit=res.code))
    if res.milestones:
        out += ["", _("Milestones"), render.table([pgettext("column", "Milestone"), pgettext("column", "Deadline"), pgettext("column", "Status"), pgettext("column", "Days")], [
            [milestone_word(m.id, m.name), m.deadline.isoformat(), _milestone_status(m, res.met_late), _days(m)]
            for m in res.milestones])]
    steps = res.next_triggers
    if steps:
        out += ["", _("Next steps")]
        codes = {f"（{c.item}）" for c in missing}
        for t in steps:
            name = _("{name} ({id})").format(name=TRIGGER_NAMES.get(t.name, t.name), id=t.name)
            mark = _("✓ can") if t.allowed else _("✗ cannot")
            out.append(f"  {mark}  {name}")
            others = [r for r in t.unmet if not any(r.endswith(c) for c in codes)]
            if len(others) < len(t.unmet):
                out.append("      - " + _("Checklist items missing: {n} (listed above)").format(
                    n=len(t.unmet) - len(others)))
            out.extend(f"      - {r}" for r in others)
    return render.fit_lines("\n".join(out))


def _checklist_lines(res) -> list[str]:
    """Per area: how many items are done, then each missing item once (label, code, what it requires)."""
    from anjian.workflow.formats import output as render

    areas: dict[str, list] = {}
    for c in res.checklist:
        areas.setdefault(c.area, []).append(c)
    names = res.areas
    cols = render.terminal_width() or 100
    lines = []
    for area, items in areas.items():
        gaps = [c for c in items if not c.ok]
        done = len(items) - len(gaps)
        head = f"  {names.get(area, area)}  {done}/{len(items)}"
        if not gaps:
            lines.append(head + "  ✓")
            continue
        lines.append(head)
        lines.extend("    " + line for line in _packed([f"✗ {c.label}{_needs(c)}" for c in gaps], cols - 4))
    return lines


def _packed(parts: list[str], cols: int) -> list[str]:
    """Whole parts side by side, as many to a line as fit in `cols` (a part wider than that wraps alone)."""
    from anjian.workflow.formats.output import width_of, wrap

    lines: list[str] = []
    for part in parts:
        if lines and width_of(lines[-1]) + 2 + width_of(part) <= cols:
            lines[-1] += "  " + part
        else:
            lines.extend(wrap(part, max(cols, 20)))
    return lines


def _needs(c) -> str:
    """What a missing item still needs, beyond a plain flag or text: the minimum and the value recorded."""
    if c.kind == "count":
        return "：" + _("at least {n}, now {value}").format(n=c.required, value=value_words(c.value))
    if c.kind == "flag" and c.value is False:
        return "：" + value_words(c.value)
    return ""


def _milestone_status(m: MilestoneStatus, late: dict[str, int]) -> str:
    if m.status == "met" and late.get(m.id):
        return _("met ({days} days late)").format(days=late[m.id])
    return STATUS_WORDS[m.status]


def _days(m: MilestoneStatus) -> str:
    if m.status == "pending":
        return _("{days} days left").format(days=m.days)
    if m.status == "overdue":
        return _("{days} days overdue").format(days=m.days)
    return ""
