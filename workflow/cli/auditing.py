"""`anjian history` and `anjian audit verify`."""

from __future__ import annotations

import click

from .common import command, emit, format_option


@click.command()
@click.argument("unit", required=False)
@click.option("--since", metavar="DATE", help="Only rows at or after this date/time (Asia/Shanghai).")
@click.option("--actor", metavar="NAME", help="Only rows by this official.")
@click.option("--children", is_flag=True, help="With a county: include its townships.")
@format_option(("table", "json"))
@command
def history(env, unit, since, actor, children, fmt) -> None:
    """The audit trail: every transition, record, designation and load, oldest first.

    Example:

        anjian history 宽城峪耳崖镇 --since 2015-01-01
    """
    from .. import audit, render
    from ..clock import parse_time, shown
    from ..names import Resolver
    from ..progress import _descendants

    db = env.database()
    since_at = parse_time(since, "--since") if since else None
    with db.read() as session:
        codes = None
        if unit:
            ref = Resolver(session).resolve(unit)
            codes = sorted(_descendants(session, ref.code)) if children else [ref.code]
        rows = audit.history(session, codes, since_at, actor)
    data = [{"seq": r.seq, "at": r.at, "actor": r.actor, "unit": r.unit, "trigger": r.trigger,
             "from_state": r.from_state, "to_state": r.to_state, "note": r.note, "evidence": r.evidence,
             "unit_name": r.unit_name, "detail": r.detail} for r in rows]
    headers = ["序号", "时间", "操作人", "单位", "操作", "原状态", "新状态", "说明"]
    table_rows = [[r.seq, shown(r.at), r.actor, r.unit_name or r.unit, r.trigger, r.from_state, r.to_state,
                   _describe(r)] for r in rows]
    emit(fmt, lambda: render.table(headers, table_rows) + f"\n共 {len(rows)} 条", data)


def _describe(r) -> str:
    parts = []
    if r.trigger == "record":
        parts.append(f"{r.detail.get('item')} = {r.detail.get('value')}")
    elif r.trigger in ("designate", "undesignate"):
        parts.append(r.detail.get("cohort", ""))
    elif r.trigger in ("registry_load", "campaign_load"):
        parts.append(str(r.detail.get("source", "")))
    if r.note:
        parts.append(r.note.replace("\n", " ")[:60])
    if r.evidence:
        parts.append(f"附件 {len(r.evidence)}")
    return "；".join(p for p in parts if p)


@click.group()
def audit() -> None:
    """Check the audit log.

    Example:

        anjian audit verify
    """


@audit.command()
@command
def verify(env) -> None:
    """Walk the hash chain from the first row; exit 6 naming the first bad row.

    Example:

        anjian audit verify
    """
    from .. import audit as audit_log
    from ..errors import AuditBroken

    with env.database().read() as session:
        v = audit_log.verify(session)
    if not v.ok:
        raise AuditBroken(f"audit row {v.bad_seq}: {v.reason}", [f"{v.rows} row(s) read before it stopped"])
    click.echo(f"审计日志完整：{v.rows} 条记录，链尾 #{v.head_seq} {v.head_hash[:16]}…")
