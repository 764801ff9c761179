"""`anjian designate`, `record` and `advance`: the commands that change units."""

from __future__ import annotations

from pathlib import Path

import click

from anjian.workflow.cli.common import SHOWN, command, emit, fail, format_option, write_file

EFFECTIVE_HELP = ("Enter a paper record late (补录): the date it says, YYYY-MM-DD (city office and city "
                  "inspectors only; not in the future, not before the unit's previous change).")


def _effective(text: str | None):
    """The date of --effective, or None."""
    if text is None:
        return None
    from anjian.workflow.clock import local_date, parse_time

    return local_date(parse_time(text, "--effective"))


@click.command()
@click.argument("unit", required=False)
@click.argument("cohort", required=False)
@click.option("--remove", is_flag=True, help="Take the township out of the cohort.")
@click.option("--file", "file", metavar="FILE.csv", help="Bulk: a CSV with columns unit,cohort (optional remove).")
@format_option(("table", "json"))
@command
def designate(env, unit, cohort, remove, file, fmt) -> None:
    """Put a township into a cohort (provincial_demo, county_demo, key, heavy_task), or take it out.

    A file is applied all or nothing; the plan's limits (1–3 county demonstration townships per county,
    each also a key township) are checked on the result.

    Example:

        anjian designate 宽城峪耳崖镇 key
        anjian designate --file key-townships.csv
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.formats import tables
    from anjian.workflow.services import checklist as records

    now = env.write_now
    if file:
        if unit or cohort:
            fail("give either UNIT COHORT or --file, not both")
        recs, problems = tables.read_csv(file, ("unit", "cohort"), ("remove",), env.settings.limits)
        tables.refuse_if(problems, file)
        rows = records.designation_rows(recs)
    else:
        if not (unit and cohort):
            fail("give UNIT COHORT (e.g. anjian designate 宽城峪耳崖镇 key), or --file FILE.csv")
        rows = [records.DesignateRow(0, unit, cohort, remove)]
    res = records.designate(env.database(), rows, env.actor, now)

    def text() -> str:
        lines = []
        for d in res:
            verb = "移出" if d.removed else "列为"
            lines.append(f"{d.name}（{d.code}）{verb} {d.cohort}" + ("" if d.changed else "：已是如此，无变化"))
        changed = sum(d.changed for d in res)
        return "\n".join(lines[:50] + ([f"… 共 {len(res)} 行"] if len(lines) > 50 else []) + [f"更改 {changed} 项"])

    emit(fmt, text, [render.to_jsonable(d) | {"changed": d.changed} for d in res])


@click.command()
@click.argument("unit")
@click.argument("item")
@click.argument("value")
@click.option("--evidence", "evidence", multiple=True, metavar="FILE", help="A file that shows it (repeatable).")
@click.option("--effective", metavar="DATE", help=EFFECTIVE_HELP)
@format_option(("table", "json"))
@command
def record(env, unit, item, value, evidence, effective, fmt) -> None:
    """Record one checklist fact: a flag (是/否), a count, or a text such as a keeper's name.

    ITEM is the item's code (see `anjian show UNIT`) or its exact label.

    Example:

        anjian record 宽城峪耳崖镇 staff.full_time 4
        anjian record 宽城峪耳崖镇 six.vehicle 是 --evidence 车辆登记证.pdf
        anjian record 宽城峪耳崖镇 staff.full_time 4 --effective 2015-03-20
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import checklist as records

    now, on = env.write_now, _effective(effective)
    res = records.record(env.database(), unit, item, value, env.actor, now, tuple(evidence), env.settings.evidence_dir,
                         env.settings.limits.evidence_max_bytes, effective=on)

    def text() -> str:
        lines = [f"⚠ {w}" for w in res.warnings]
        if res.changed:
            was = f"（原为 {res.previous}）" if res.previous is not None else ""
            lines.append(f"{res.name}（{res.code}）{res.label}：{res.value}{was}  审计序号 {res.seq}")
        else:
            lines.append(f"{res.name}（{res.code}）{res.label} 已是 {res.value}，无变化")
        return "\n".join(lines)

    emit(fmt, text, render.to_jsonable(res) | {"changed": res.changed})


@click.command()
@click.argument("unit", required=False)
@click.argument("trigger", required=False)
@click.option("--note", metavar="TEXT", help="The note: an inspector's opinion, a reason, a finding.")
@click.option("--evidence", "evidence", multiple=True, metavar="FILE", help="A file to attach (repeatable).")
@click.option("--expect-version", type=int, metavar="N",
              help="Refuse (exit 5) unless the unit is still at this version (see `anjian show`).")
@click.option("--file", "file", metavar="FILE.csv", help="Bulk: a CSV with columns unit,trigger,note.")
@click.option("--partial", is_flag=True, help="With --file: apply the rows that pass and report the rest.")
@click.option("--errors", "errors", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="With --file: write every problem row to FILE (CSV: line,unit,trigger,kind,reason); "
                   "the terminal shows the first 50.")
@click.option("--effective", metavar="DATE", help=EFFECTIVE_HELP)
@format_option(("table", "json"))
@command
def advance(env, unit, trigger, note, evidence, expect_version, file, partial, errors, effective, fmt) -> None:
    """Fire a trigger for a unit. If a guard refuses, every unmet reason is printed (exit 3).

    Township triggers: start, apply, accept, reject, resubmit, revoke.
    County triggers: submit_plan, approve_demonstration, certify_key_compliance, certify_full_coverage.
    A --file batch is all or nothing unless --partial.

    Example:

        anjian advance 宽城峪耳崖镇 apply
        anjian advance 宽城县 submit_plan --evidence 推进方案.pdf
        anjian advance --file batch.csv --partial
        anjian advance 宽城峪耳崖镇 accept --effective 2015-03-20 --note "3月20日验收纸质记录"
    """
    if file:
        if unit or trigger or evidence or note or expect_version is not None:
            fail("--file takes its units, triggers and notes from the file; "
                 "give no UNIT, TRIGGER, --note, --evidence or --expect-version")
        _advance_file(env, file, partial, errors, fmt, effective)
        return
    if errors:
        fail("--errors goes with --file FILE.csv")
    if partial:
        fail("--partial goes with --file FILE.csv")
    if not (unit and trigger):
        fail("give UNIT TRIGGER (e.g. anjian advance 宽城峪耳崖镇 apply), or --file FILE.csv")
    now, on = env.write_now, _effective(effective)
    from anjian.workflow.services import advance as actions

    t = actions.advance(env.database(), unit, trigger, env.actor, now, note, tuple(evidence), expect_version,
                        env.settings.evidence_dir, env.settings.limits.evidence_max_bytes, effective=on)
    from anjian.states.labels import TRIGGER_NAMES, state_name

    emit(fmt, lambda: (f"{t.name}（{t.code}）{TRIGGER_NAMES.get(t.trigger, t.trigger)}："
                       f"{state_name(t.level, t.from_state)} → {state_name(t.level, t.to_state)}"
                       f"  审计序号 {t.seq}，版本 {t.version}"), t)


def _advance_file(env, file: str, partial: bool, errors: Path | None, fmt: str, effective: str | None) -> None:
    """`advance --file`: the batch's limits are checked before anything else; the terminal shows the
    first problems and a count, `--errors FILE` and `--format json` carry every one."""
    from anjian.workflow.formats import tables

    # The limits first, before even the services are imported (SQLAlchemy alone is a second on a busy machine).
    recs, problems = tables.read_csv(file, ("unit", "trigger"), ("note",), env.settings.limits)
    tables.refuse_if(problems, file)
    now, on = env.write_now, _effective(effective)
    from anjian.workflow.errors import BadInput, NotPermitted, Refused
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import advance as actions

    rows = [actions.BatchRow(r.line, r.values["unit"], r.values["trigger"], r.values.get("note") or None) for r in recs]
    res = actions.advance_batch(env.database(), rows, env.actor, now, partial, on)
    if errors is not None:
        table = [[p.line, p.unit, p.trigger, p.kind, "; ".join(p.reasons)] for p in res.problems]
        write_file(errors, (render.as_csv(["line", "unit", "trigger", "kind", "reason"], table) + "\n").encode("utf-8-sig"))
    lines = [f"{t.name}（{t.code}）{t.trigger}: {t.from_state} → {t.to_state}" for t in res.applied]
    head = (f"已执行 {len(res.applied)} / {res.rows} 行" if res.applied or partial or not res.problems
            else f"未执行：{len(res.problems)} 行有问题，整批未写入")
    emit(fmt, lambda: "\n".join(lines[:SHOWN] + ([f"… 共 {len(lines)} 行"] if len(lines) > SHOWN else []) + [head]),
         {"applied": render.to_jsonable(res.applied), "problems": render.to_jsonable(res.problems)})
    if res.problems:
        details = [f"line {p.line} ({p.unit} {p.trigger}): {'; '.join(p.reasons)}" for p in res.problems[:SHOWN]]
        if len(res.problems) > SHOWN:
            where = f"全部问题已写入 {errors}" if errors else "全部问题见 --errors FILE 或 --format json"
            details.append(f"另有 {len(res.problems) - SHOWN} 条未列出；{where}")
        kinds = {p.kind for p in res.problems}
        worst = BadInput if "bad_input" in kinds else NotPermitted if "not_permitted" in kinds else Refused
        raise worst(f"{file}: {len(res.problems)} row(s) " + ("not applied" if partial else "refused; nothing was written"), details)
