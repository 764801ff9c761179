"""`anjian status`, `units` and `show`: read-only views."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from anjian.states.labels import COHORT_SHORT, required_words, value_words
from anjian.states.labels import LEVEL_NAMES as LEVEL_WORDS
from anjian.states.labels import MILESTONE_COHORTS as COHORTS
from anjian.states.labels import MILESTONE_STATUS as STATUS_WORDS
from anjian.workflow.cli.common import EXPORTS, command, emit, format_option, out_option

if TYPE_CHECKING:
    from anjian.states.milestones import MilestoneStatus

BY_WORDS = {"county": "县区", "city": "市", "province": "省"}
BY_CHOICE = click.Choice(["county", "city", "province"])


@click.command()
@click.option("--county", metavar="UNIT", help="Only this county — or the counties of this city or province.")
@click.option("--by", type=BY_CHOICE, default="county", show_default=True,
              help="One row per county, or summed per city or province.")
@format_option(EXPORTS)
@out_option()
@command
def status(env, county: str | None, by: str, fmt: str, out) -> None:
    """The city at a glance: per county its stage, townships accepted/total per cohort,
    the next milestone with days left, and what is overdue. A national or provincial
    registry is easier to read summed: --by province or --by city. For a spreadsheet,
    --format csv or xlsx with --out FILE (Chinese headers, stage ids beside their names).

    Example:

    \b
        anjian status --now 2015-04-01
        anjian status --by province
        anjian status --format xlsx --out 进度.xlsx
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.status import status as compute

    res = compute(env.database(), env.now, county, by)
    if by == "county":
        headers = ["代码", "县区", "阶段", "省示范", "县示范", "重点", "全部达标", "已开展", "下一节点", "剩余天数", "逾期节点", "逾期乡镇"]
        rows = [[c.code, c.name, c.state_name, *(_frac(c.cohorts[k]) for k in COHORTS),
                 f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}",
                 c.next_milestone.id if c.next_milestone else None,
                 c.next_milestone.days if c.next_milestone else None, c.overdue, c.overdue_townships or None]
                for c in res.counties]
    else:
        headers = ["代码", BY_WORDS[by], "县区", "有逾期的县区", "省示范", "县示范", "重点", "全部达标", "已开展", "逾期节点", "逾期乡镇"]
        rows = [[c.code, c.name, c.counties, c.counties_overdue or None,
                 *(_frac(c.cohorts[k]) for k in COHORTS),
                 f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}", c.overdue, c.overdue_townships or None]
                for c in res.counties]

    def text() -> str:
        city = res.city
        head = f"{res.title}（{res.campaign}）  今天 {res.today}"
        if city:
            head += f"  {city.name}：{city.state_name}"
        t = res.totals
        foot = (f"合计：乡镇 {t.townships} 个，已达标 {t.accepted}，已开展 {t.started}，"
                f"逾期乡镇 {t.overdue_townships}，有逾期节点的县区 {t.counties_overdue}")
        return "\n".join([head, "", render.table(headers, rows), "", foot])

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
        shares = [*(_frac(c.cohorts[k]) for k in COHORTS), f"{c.accepted}/{c.townships}", f"{c.started}/{c.townships}",
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


def _state_order(state: str) -> tuple[int, str]:
    from anjian.states.machines import SPECS

    for i, level in enumerate(("township", "county", "city")):
        if state in SPECS[level].states:
            return i * 10 + SPECS[level].states.index(state), state
    return 99, state


def _state_word(state: str) -> str:
    from anjian.states.labels import STATE_NAMES

    for level in ("township", "county", "city"):
        if (level, state) in STATE_NAMES:
            return STATE_NAMES[level, state]
    return state


def _frac(pair: list[int]) -> str | None:
    accepted, total = pair
    return f"{accepted}/{total}" if total else None


@click.command()
@click.option("--level", type=click.Choice(["province", "city", "county", "township"]), help="Only this level.")
@click.option("--county", metavar="UNIT", help="Only units within this county (or city, province).")
@click.option("--cohort", type=click.Choice(["provincial_demo", "county_demo", "key", "heavy_task"]), help="Only this cohort.")
@click.option("--state", metavar="STATE", help="Only units in this state (e.g. building).")
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

    if state:
        state = state.replace("-", "_")
    res = compute(env.database(), env.now, level, county, cohort, state, overdue)
    if by:
        groups = tally(env.database(), res, by)
        states = sorted({s for g in groups for s in g.states}, key=_state_order)
        headers = ["代码", BY_WORDS[by], "单位数", *(_state_word(s) for s in states), "有逾期"]
        rows = [[g.code, g.name, g.units, *(g.states.get(s) for s in states), g.overdue or None] for g in groups]
        emit(fmt, lambda: render.table(headers, rows) + f"\n共 {len(res)} 个单位，{len(groups)} 个{BY_WORDS[by]}", groups,
             sheet=lambda: _tally_sheet(groups, states, by), out=out)
        return
    headers = ["代码", "名称", "级别", "上级", "状态", "类别", "逾期节点"]
    rows = [[u.code, u.name, u.level, u.parent_name or u.parent, u.state, [COHORT_SHORT[c] for c in u.cohorts], u.overdue]
            for u in res]
    emit(fmt, lambda: render.table(headers, rows) + f"\n共 {len(res)} 个", res, sheet=lambda: _units_sheet(res), out=out)


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
    """One unit in full: its checklist (what is missing), milestones, and for each trigger
    whether it is open now and, if not, every reason why.

    Example:

        anjian show 宽城峪耳崖镇
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.show import show as compute

    res = compute(env.database(), unit, env.now, env.actor_name)

    def text() -> str:
        out = [f"{res.path}（{res.code}）  {res.level}  状态：{res.state_name}  版本 {res.version}"]
        if res.cohorts:
            out.append("类别：" + "、".join(COHORT_SHORT[c] for c in res.cohorts))
        if res.children:
            out.append("下辖乡镇：" + "，".join(f"{k} {v}" for k, v in sorted(res.children.items())))
        if res.checklist:
            missing = [c for c in res.checklist if not c.ok]
            out += ["", f"规范化建设清单（{len(res.checklist) - len(missing)}/{len(res.checklist)} 项达标）"]
            out.append(render.table(["", "项目", "要求", "现状", "代码"], [
                ["✓" if c.ok else "✗", c.label, required_words(c.kind, c.required), value_words(c.value), c.item] for c in res.checklist]))
        if res.milestones:
            out += ["", "时间节点", render.table(["节点", "期限", "状态", "天数"], [
                [m.id, m.deadline.isoformat(), STATUS_WORDS[m.status], _days(m)] for m in res.milestones])]
        if res.triggers:
            out += ["", "可进行的操作"]
            for t in res.triggers:
                mark = "✓ 可以" if t.allowed else "✗ 不能"
                out.append(f"  {t.name:<24} {mark}")
                out.extend(f"      - {r}" for r in t.unmet)
        return "\n".join(out)

    emit(fmt, text, res)


def _days(m: MilestoneStatus) -> str:
    if m.status == "pending":
        return f"剩 {m.days} 天"
    if m.status == "overdue":
        return f"逾期 {m.days} 天"
    return ""
