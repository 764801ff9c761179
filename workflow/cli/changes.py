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
@click.option("--file", "file", metavar="FILE.csv|FILE.xlsx",
              help="Bulk: a CSV or .xlsx with columns unit,cohort (optional remove); with --remove every row is removed.")
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
        recs, problems = tables.read_table(file, ("unit", "cohort"), ("remove",), env.settings.limits)
        tables.refuse_if(problems, file)
        rows = records.designation_rows(recs, remove)
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


RECORD_HEADERS = ["单位代码", "单位", "清单项", "内容", "要求", "现值", "填报值", "证明材料"]


@click.command()
@click.argument("unit", required=False)
@click.argument("pairs", nargs=-1)
@click.option("--evidence", "evidence", multiple=True, metavar="ITEM=FILE",
              help="A file that shows an item: ITEM=FILE (repeatable); with one ITEM VALUE, just FILE.")
@click.option("--file", "file", metavar="FILE.csv|FILE.xlsx",
              help="Bulk: a CSV or .xlsx with columns unit,item,value (optional evidence, a path from the file's folder).")
@click.option("--partial", is_flag=True, help="With --file: record the rows that pass and report the rest.")
@click.option("--errors", "errors", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="With --file: write every problem row to FILE (CSV: line,unit,item,kind,reason).")
@click.option("--template", "template", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.xlsx",
              help="Write UNIT's checklist as a sheet to fill in; read it back with --file FILE.xlsx.")
@click.option("--effective", metavar="DATE", help=EFFECTIVE_HELP)
@format_option(("table", "json"))
@command
def record(env, unit, pairs, evidence, file, partial, errors, template, effective, fmt) -> None:
    """Record checklist facts: flags (是/否), counts, texts such as a keeper's name.

    ITEM is the item's code (see `anjian show UNIT`), its label, or a distinctive part of the label.
    Several ITEM=VALUE pairs are recorded together, all or nothing.

    Example:

        anjian record 宽城峪耳崖镇 staff.full_time 4
        anjian record 宽城峪耳崖镇 six.vehicle=是 staff.full_time=4 --evidence six.vehicle=车辆登记证.pdf
        anjian record 宽城峪耳崖镇 --template 峪耳崖镇清单.xlsx
        anjian record --file 峪耳崖镇清单.xlsx
        anjian record --file checklists.csv --partial --errors problems.csv
    """
    if template is not None:
        if not unit or pairs or file or evidence:
            fail("--template FILE.xlsx goes with UNIT alone (e.g. anjian record 宽城峪耳崖镇 --template 清单.xlsx)")
        _record_template(env, unit, template, fmt)
        return
    if file:
        if unit or pairs or evidence:
            fail("--file takes its units, items, values and evidence from the file; give no UNIT, ITEM=VALUE or --evidence")
        _record_file(env, file, partial, errors, fmt, effective)
        return
    if errors or partial:
        fail("--partial and --errors go with --file FILE")
    if not unit or not pairs:
        fail("give UNIT ITEM VALUE or UNIT ITEM=VALUE … (e.g. anjian record 宽城峪耳崖镇 staff.full_time=4), or --file FILE")
    if len(pairs) == 2 and "=" not in pairs[0] and all("=" not in e for e in evidence):
        _record_one(env, unit, pairs[0], pairs[1], evidence, effective, fmt)
        return
    from anjian.workflow.services import checklist as records

    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].strip()]
    if bad:
        fail("write each fact as ITEM=VALUE (e.g. staff.full_time=4)", [f"“{p}”" for p in bad])
    items = [p.split("=", 1) for p in pairs]
    files: dict[str, list[str]] = {}
    for e in evidence:
        if "=" not in e:
            fail(f"with ITEM=VALUE pairs, --evidence is ITEM=FILE, not “{e}”")
        name, path = e.split("=", 1)
        files.setdefault(name.strip(), []).append(path)
    named = {i.strip() for i, _v in items}
    stray = sorted(set(files) - named)
    if stray:
        fail("--evidence names an item that is not recorded here", stray)
    rows = [records.RecordRow(0, unit, i.strip(), v, tuple(files.get(i.strip(), ()))) for i, v in items]
    _record_rows(env, rows, "record", False, None, fmt, effective)


def _record_one(env, unit, item, value, evidence, effective, fmt) -> None:
    """The one-fact form `record UNIT ITEM VALUE [--evidence FILE]`, as before."""
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import checklist as records

    now, on = env.write_now, _effective(effective)
    res = records.record(env.database(), unit, item, value, env.actor, now, tuple(evidence), env.settings.evidence_dir,
                         env.settings.limits.evidence_max_bytes, effective=on)
    emit(fmt, lambda: "\n".join(_recorded_lines([res])), render.to_jsonable(res) | {"changed": res.changed})


def _recorded_lines(recorded) -> list[str]:
    lines = []
    for res in recorded:
        lines += [f"⚠ {w}" for w in res.warnings]
        if res.changed:
            was = f"（原为 {res.previous}）" if res.previous is not None else ""
            lines.append(f"{res.name}（{res.code}）{res.label}：{res.value}{was}  审计序号 {res.seq}")
        else:
            lines.append(f"{res.name}（{res.code}）{res.label} 已是 {res.value}，无变化")
    return lines


def _record_file(env, file: str, partial: bool, errors: Path | None, fmt: str, effective: str | None) -> None:
    """`record --file`: rows whose value and evidence are both empty are left out (a sheet not filled in
    everywhere); evidence paths are taken from the file's folder."""
    from anjian.workflow.formats import tables
    from anjian.workflow.services import checklist as records

    recs, problems = tables.read_table(file, ("unit", "item", "value"), ("evidence", "label", "required", "current"),
                                       env.settings.limits)
    tables.refuse_if(problems, file)
    folder = Path(file).parent
    rows = []
    for r in recs:
        value, ev = r.values.get("value", ""), r.values.get("evidence", "")
        if not value and not ev:
            continue
        paths = tuple(str(folder / p.strip()) for p in ev.replace("；", ";").split(";") if p.strip())
        rows.append(records.RecordRow(r.line, r.values["unit"], r.values["item"], value, paths))
    _record_rows(env, rows, file, partial, errors, fmt, effective)


def _record_rows(env, rows, source: str, partial: bool, errors: Path | None, fmt: str, effective: str | None) -> None:
    """Record a batch and report it: the first 50 lines and problems on the terminal, a count, every
    problem in --errors FILE and JSON. With --partial, exit 0 when at least one row was recorded."""
    now, on = env.write_now, _effective(effective)
    from anjian.workflow.errors import BadInput, NotPermitted
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import checklist as records

    res = records.record_batch(env.database(), rows, env.actor, now, partial, env.settings.evidence_dir,
                               env.settings.limits.evidence_max_bytes, on)
    if errors is not None:
        table = [[p.line, p.unit, p.item, p.kind, "; ".join(p.reasons)] for p in res.problems]
        write_file(errors, (render.as_csv(["line", "unit", "item", "kind", "reason"], table) + "\n").encode("utf-8-sig"))
    lines = _recorded_lines(res.recorded)
    if res.recorded or partial or not res.problems:
        head = f"已记录 {res.written} 项，无变化 {len(res.recorded) - res.written} 项，共 {res.rows} 项"
    else:
        head = f"未记录：{len(res.problems)} 项有问题，整批未写入"
    emit(fmt, lambda: "\n".join(lines[:SHOWN] + ([f"… 共 {len(lines)} 行"] if len(lines) > SHOWN else []) + [head]),
         {"recorded": [render.to_jsonable(r) | {"changed": r.changed} for r in res.recorded],
          "problems": render.to_jsonable(res.problems)})
    if res.problems:
        details = [(f"line {p.line} " if p.line else "") + f"({p.unit} {p.item}): {'; '.join(p.reasons)}"
                   for p in res.problems]
        if len(details) > SHOWN and errors:
            details = details[:SHOWN] + [f"全部问题已写入 {errors}"]
        worst = BadInput if any(p.kind == "bad_input" for p in res.problems) else NotPermitted
        if partial and res.recorded:
            click.echo(f"{source}: {len(res.problems)} 行未记录（已记录其余 {len(res.recorded)} 行）", err=True)
            for d in details[:SHOWN]:
                click.echo(f"  - {d}", err=True)
            if len(details) > SHOWN:
                click.echo(f"  - 另有 {len(details) - SHOWN} 条未列出", err=True)
            return
        raise worst(f"{source}: {len(res.problems)} row(s) " + ("not recorded" if partial else "refused; nothing was written"),
                    details)


def _record_template(env, unit: str, out: Path, fmt: str) -> None:
    """Write UNIT's checklist as a sheet: the items it has to fill, their requirement, current value,
    an empty value column and an empty evidence column."""
    from anjian.workflow.formats import xlsx
    from anjian.workflow.services import checklist as records

    ref, rows = records.template_rows(env.database(), unit)
    write_file(out, xlsx.workbook(f"{ref.name}清单", RECORD_HEADERS,
                                  [[ref.code, ref.name, *row, None, None] for row in rows]))
    emit(fmt, lambda: f"{ref.name}（{ref.code}）的清单已写入 {out}：{len(rows)} 项；填好“填报值”后用 anjian record --file {out} 记录",
         {"unit": ref.code, "file": str(out), "items": len(rows)})


@click.command()
@click.argument("unit", required=False)
@click.argument("trigger", required=False)
@click.option("--note", metavar="TEXT", help="The note: an inspector's opinion, a reason, a finding.")
@click.option("--evidence", "evidence", multiple=True, metavar="FILE", help="A file to attach (repeatable).")
@click.option("--expect-version", type=int, metavar="N",
              help="Refuse (exit 5) unless the unit is still at this version (see `anjian show`).")
@click.option("--file", "file", metavar="FILE.csv|FILE.xlsx", help="Bulk: a CSV or .xlsx with columns unit,trigger,note.")
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
    recs, problems = tables.read_table(file, ("unit", "trigger"), ("note",), env.settings.limits)
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
    from anjian.states.labels import TRIGGER_NAMES, state_name

    lines = [f"{t.name}（{t.code}）{TRIGGER_NAMES.get(t.trigger, t.trigger)}："
             f"{state_name(t.level, t.from_state)} → {state_name(t.level, t.to_state)}" for t in res.applied]
    head = (f"已执行 {len(res.applied)} / {res.rows} 行" if res.applied or partial or not res.problems
            else f"未执行：{len(res.problems)} 行有问题，整批未写入")
    emit(fmt, lambda: "\n".join(lines[:SHOWN] + ([f"… 共 {len(lines)} 行"] if len(lines) > SHOWN else []) + [head]),
         {"applied": render.to_jsonable(res.applied), "problems": render.to_jsonable(res.problems)})
    if res.problems:
        details = [f"line {p.line} ({p.unit} {p.trigger}): {'; '.join(p.reasons)}" for p in res.problems[:SHOWN]]
        if len(res.problems) > SHOWN:
            where = f"全部问题已写入 {errors}" if errors else "全部问题见 --errors FILE 或 --format json"
            details.append(f"另有 {len(res.problems) - SHOWN} 条未列出；{where}")
        if partial and res.applied:  # something was written: the refused rows are reported, the exit is 0
            click.echo(f"{file}: {len(res.problems)} 行未执行（已执行其余 {len(res.applied)} 行）", err=True)
            for d in details:
                click.echo(f"  - {d}", err=True)
            return
        kinds = {p.kind for p in res.problems}
        worst = BadInput if "bad_input" in kinds else NotPermitted if "not_permitted" in kinds else Refused
        raise worst(f"{file}: {len(res.problems)} row(s) " + ("not applied" if partial else "refused; nothing was written"), details)
