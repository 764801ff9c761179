"""`anjian designate`, `record` and `advance`: the commands that change units."""

from __future__ import annotations

from pathlib import Path

import click

from anjian.i18n import N_, _
from anjian.workflow.cli.common import SHOWN, command, emit, fail, format_option, write_file

EFFECTIVE_HELP = N_("Enter a paper record late (补录): the date it says, YYYY-MM-DD (city office and city "
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
    """Put a township into one of the campaign's cohorts (by its id or its name: key, 重点), or take it out.

    A file is applied all or nothing; the campaign's limits (how many a county may name, the cohorts a
    township must already be in) are checked on the result. `anjian status` shows the cohorts.

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
            fail(_("give either UNIT COHORT or --file, not both"))
        recs, problems = tables.read_table(file, ("unit", "cohort"), ("remove",), env.settings.limits)
        tables.refuse_if(problems, file)
        rows = records.designation_rows(recs, remove)
    else:
        if not (unit and cohort):
            fail(_("give UNIT COHORT (e.g. anjian designate 宽城峪耳崖镇 key), or --file FILE.csv"))
        rows = [records.DesignateRow(0, unit, cohort, remove)]
    res = records.designate(env.database(), rows, env.actor, now)

    def text() -> str:
        from anjian.states.labels import COHORT_NAMES

        lines = []
        for d in res:
            said = (_("{unit} ({code}) taken out of {cohort}") if d.removed else _("{unit} ({code}) named {cohort}")).format(
                unit=d.name, code=d.code, cohort=COHORT_NAMES.get(d.cohort, d.cohort))
            lines.append(said + ("" if d.changed else _(": already so, no change")))
        changed = sum(d.changed for d in res)
        return "\n".join(lines[:SHOWN] + ([_("… {count} rows in all").format(count=len(res))] if len(lines) > SHOWN else [])
                         + [_("{count} changed").format(count=changed)])

    emit(fmt, text, [render.to_jsonable(d) | {"changed": d.changed} for d in res])


# The template's headers: the words tables.HEADER_WORDS reads back (unit code, item, value, evidence).
RECORD_HEADERS = ["单位代码", "单位", "清单项", "内容", "要求", "现值", "填报值", "证明材料"]


@click.command()
@click.argument("unit", required=False)
@click.argument("value", nargs=-1, metavar="[ITEM VALUE | ITEM=VALUE…]")
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
@click.option("--expect-version", type=int, metavar="N",
              help="Refuse (exit 5) unless the unit is still at this version (see `anjian show`).")
@format_option(("table", "json"))
@command
def record(env, unit, value, evidence, file, partial, errors, template, effective, expect_version, fmt) -> None:
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
    pairs = value  # ITEM VALUE, or ITEM=VALUE pairs (named `value` so that a bad byte is named VALUE)
    if expect_version is not None and (file or template is not None):
        fail(_("--expect-version goes with UNIT and its items, not with --file or --template"))
    if template is not None:
        if not unit or pairs or file or evidence:
            fail(_("--template FILE.xlsx goes with UNIT alone (e.g. anjian record 宽城峪耳崖镇 --template 清单.xlsx)"))
        _record_template(env, unit, template, fmt)
        return
    if file:
        if unit or pairs or evidence:
            fail(_("--file takes its units, items, values and evidence from the file; give no UNIT, ITEM=VALUE or --evidence"))
        _record_file(env, file, partial, errors, fmt, effective)
        return
    if errors or partial:
        fail(_("--partial and --errors go with --file FILE"))
    if not unit or not pairs:
        fail(_("give UNIT ITEM VALUE or UNIT ITEM=VALUE … (e.g. anjian record 宽城峪耳崖镇 staff.full_time=4), or --file FILE"))
    if len(pairs) == 2 and "=" not in pairs[0] and all("=" not in e for e in evidence):
        _record_one(env, unit, pairs[0], pairs[1], evidence, effective, fmt, expect_version)
        return
    from anjian.workflow.services import checklist as records

    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].strip()]
    if bad:
        fail(_("write each fact as ITEM=VALUE (e.g. staff.full_time=4)"), [f"“{p}”" for p in bad])
    items = [p.split("=", 1) for p in pairs]
    files: dict[str, list[str]] = {}
    for e in evidence:
        if "=" not in e:
            fail(_("with ITEM=VALUE pairs, --evidence is ITEM=FILE, not “{text}”").format(text=e))
        name, path = e.split("=", 1)
        files.setdefault(name.strip(), []).append(path)
    # an item may be named by its code in one place and its label in the other: compared as items
    keys = records.item_keys(env.database(), sorted({i.strip() for i, _v in items} | set(files)))
    named = {keys[i.strip()] for i, _v in items}
    stray = sorted(name for name in files if keys[name] not in named)
    if stray:
        fail(_("--evidence names an item that is not recorded here"), stray)
    by_key: dict[str, list[str]] = {}
    for name, paths in files.items():
        by_key.setdefault(keys[name], []).extend(paths)
    rows = [records.RecordRow(0, unit, i.strip(), v, tuple(by_key.pop(keys[i.strip()], ()))) for i, v in items]
    _record_rows(env, rows, unit, False, None, fmt, effective, expect_version)


def _record_one(env, unit, item, value, evidence, effective, fmt, expect_version=None) -> None:
    """The one-fact form `record UNIT ITEM VALUE [--evidence FILE]`, as before."""
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import checklist as records

    now, on = env.write_now, _effective(effective)
    res = records.record(env.database(), unit, item, value, env.actor, now, tuple(evidence), env.settings.evidence_dir,
                         env.settings.limits.evidence_max_bytes, effective=on, expect_version=expect_version)
    emit(fmt, lambda: "\n".join(_recorded_lines([res])), render.to_jsonable(res) | {"changed": res.changed})


def _recorded_lines(recorded) -> list[str]:
    lines = []
    for res in recorded:
        lines += [f"⚠ {w}" for w in res.warnings]
        if res.changed:
            was = _(" (was {previous})").format(previous=res.previous) if res.previous is not None else ""
            lines.append(_("{unit} ({code}) {label}: {value}{was}  audit no. {seq}").format(
                unit=res.name, code=res.code, label=res.label, value=res.value, was=was, seq=res.seq))
        else:
            lines.append(_("{unit} ({code}) {label} is already {value}, no change").format(
                unit=res.name, code=res.code, label=res.label, value=res.value))
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


def _record_rows(env, rows, source: str, partial: bool, errors: Path | None, fmt: str, effective: str | None,
                 expect_version: int | None = None) -> None:
    """Record a batch and report it: the first 50 lines and problems on the terminal, a count, every
    problem in --errors FILE and JSON. With --partial, exit 0 when at least one row was recorded."""
    now, on = env.write_now, _effective(effective)
    from anjian.workflow.errors import BadInput, NotPermitted
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import checklist as records

    res = records.record_batch(env.database(), rows, env.actor, now, partial, env.settings.evidence_dir,
                               env.settings.limits.evidence_max_bytes, on, expect_version)
    if errors is not None:
        table = [[p.line, p.unit, p.item, p.kind, "; ".join(p.reasons)] for p in res.problems]
        write_file(errors, (render.as_csv(["line", "unit", "item", "kind", "reason"], table) + "\n").encode("utf-8-sig"))
    lines = _recorded_lines(res.recorded)
    if res.recorded or partial or not res.problems:
        head = _("{written} recorded, {same} unchanged, {rows} in all").format(
            written=res.written, same=len(res.recorded) - res.written, rows=res.rows)
    else:
        head = _("nothing recorded: {count} with problems, the whole batch was refused").format(count=len(res.problems))
    emit(fmt, lambda: "\n".join(lines[:SHOWN] + ([_("… {count} rows in all").format(count=len(lines))] if len(lines) > SHOWN else [])
                                + [head]),
         {"recorded": [render.to_jsonable(r) | {"changed": r.changed} for r in res.recorded],
          "problems": render.to_jsonable(res.problems)})
    if res.problems:
        details = [(_("line {line} ").format(line=p.line) if p.line else "") + f"({p.unit} {p.item}): {'; '.join(p.reasons)}"
                   for p in res.problems]
        if len(details) > SHOWN and errors:
            details = details[:SHOWN] + [_("every problem was written to {file}").format(file=errors)]
        worst = BadInput if any(p.kind == "bad_input" for p in res.problems) else NotPermitted
        if partial and res.recorded:
            click.echo(_("{source}: {count} rows not recorded (the other {done} rows were)").format(
                source=source, count=len(res.problems), done=len(res.recorded)), err=True)
            for d in details[:SHOWN]:
                click.echo(f"  - {d}", err=True)
            if len(details) > SHOWN:
                click.echo("  - " + _("{count} more not listed").format(count=len(details) - SHOWN), err=True)
            return
        said = (_("{source}: {count} row(s) not recorded") if partial
                else _("{source}: {count} row(s) refused; nothing was written"))
        raise worst(said.format(source=source, count=len(res.problems)), details)


def _record_template(env, unit: str, out: Path, fmt: str) -> None:
    """Write UNIT's checklist as a sheet: the items it has to fill, their requirement, current value,
    an empty value column and an empty evidence column."""
    from anjian.workflow.formats import xlsx
    from anjian.workflow.services import checklist as records

    ref, rows = records.template_rows(env.database(), unit)
    write_file(out, xlsx.workbook(_("{unit} checklist").format(unit=ref.name), RECORD_HEADERS,
                                  [[ref.code, ref.name, *row, None, None] for row in rows]))
    emit(fmt, lambda: _("{unit} ({code}): {count} checklist items written to {file}; fill in 填报值, then run "
                        "anjian record --file {file}").format(unit=ref.name, code=ref.code, count=len(rows), file=out),
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
    County triggers: submit_plan, approve_demonstration, certify_key_compliance, certify_full_coverage
    (a campaign may declare its own: `anjian show COUNTY` lists them).
    A --file batch is all or nothing unless --partial.

    Example:

        anjian advance 宽城峪耳崖镇 apply
        anjian advance 宽城县 submit_plan --evidence 推进方案.pdf
        anjian advance --file batch.csv --partial
        anjian advance 宽城峪耳崖镇 accept --effective 2015-03-20 --note "3月20日验收纸质记录"
    """
    if file:
        if unit or trigger or evidence or note or expect_version is not None:
            fail(_("--file takes its units, triggers and notes from the file; "
                   "give no UNIT, TRIGGER, --note, --evidence or --expect-version"))
        _advance_file(env, file, partial, errors, fmt, effective)
        return
    if errors:
        fail(_("--errors goes with --file FILE.csv"))
    if partial:
        fail(_("--partial goes with --file FILE.csv"))
    if not (unit and trigger):
        fail(_("give UNIT TRIGGER (e.g. anjian advance 宽城峪耳崖镇 apply), or --file FILE.csv"))
    now, on = env.write_now, _effective(effective)
    from anjian.workflow.services import advance as actions

    t = actions.advance(env.database(), unit, trigger, env.actor, now, note, tuple(evidence), expect_version,
                        env.settings.evidence_dir, env.settings.limits.evidence_max_bytes, effective=on)
    from anjian.states.labels import TRIGGER_NAMES, state_name

    emit(fmt, lambda: _("{unit} ({code}) {trigger}: {old} → {new}  audit no. {seq}, version {version}").format(
        unit=t.name, code=t.code, trigger=TRIGGER_NAMES.get(t.trigger, t.trigger), old=state_name(t.level, t.from_state),
        new=state_name(t.level, t.to_state), seq=t.seq, version=t.version), t)


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

    lines = [_("{unit} ({code}) {trigger}: {old} → {new}").format(
        unit=t.name, code=t.code, trigger=TRIGGER_NAMES.get(t.trigger, t.trigger), old=state_name(t.level, t.from_state),
        new=state_name(t.level, t.to_state)) for t in res.applied]
    head = (_("{done} / {rows} rows done").format(done=len(res.applied), rows=res.rows)
            if res.applied or partial or not res.problems
            else _("nothing done: {count} rows with problems, the whole batch was refused").format(count=len(res.problems)))
    emit(fmt, lambda: "\n".join(lines[:SHOWN] + ([_("… {count} rows in all").format(count=len(lines))] if len(lines) > SHOWN else [])
                                + [head]),
         {"applied": render.to_jsonable(res.applied), "problems": render.to_jsonable(res.problems)})
    if res.problems:
        details = [_("line {line} ").format(line=p.line) + f"({p.unit} {p.trigger}): {'; '.join(p.reasons)}"
                   for p in res.problems[:SHOWN]]
        if len(res.problems) > SHOWN:
            where = (_("every problem was written to {file}").format(file=errors) if errors
                     else _("every problem: --errors FILE or --format json"))
            details.append(_("{count} more not listed; {where}").format(count=len(res.problems) - SHOWN, where=where))
        if partial and res.applied:  # something was written: the refused rows are reported, the exit is 0
            click.echo(_("{source}: {count} rows not done (the other {done} rows were)").format(
                source=file, count=len(res.problems), done=len(res.applied)), err=True)
            for d in details:
                click.echo(f"  - {d}", err=True)
            return
        kinds = {p.kind for p in res.problems}
        worst = BadInput if "bad_input" in kinds else NotPermitted if "not_permitted" in kinds else Refused
        said = (_("{source}: {count} row(s) not applied") if partial
                else _("{source}: {count} row(s) refused; nothing was written"))
        raise worst(said.format(source=file, count=len(res.problems)), details)
