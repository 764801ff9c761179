"""`anjian history` and `anjian audit verify`."""

from __future__ import annotations

import click

from anjian.workflow.cli.common import command, emit, format_option


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
    from anjian.workflow.clock import parse_time, shown
    from anjian.workflow.engine.names import Resolver
    from anjian.workflow.formats import output as render
    from anjian.workflow.store import audit
    from anjian.workflow.views.progress import _descendants

    db = env.database()
    since_at = parse_time(since, "--since") if since is not None else None
    with db.read() as session:
        codes = None
        if unit:
            ref = Resolver(session).resolve(unit)
            codes = sorted(_descendants(session, ref.code)) if children else [ref.code]
        rows = audit.history(session, codes, since_at, actor)
    data = [{"seq": r.seq, "at": r.at, "actor": r.actor, "by": r.detail.get("by"), "unit": r.unit, "trigger": r.trigger,
             "from_state": r.from_state, "to_state": r.to_state, "note": r.note, "evidence": r.evidence,
             "unit_name": r.unit_name, "detail": r.detail} for r in rows]
    headers = ["序号", "时间", "操作人", "单位", "操作", "原状态", "新状态", "说明"]
    table_rows = [[r.seq, shown(r.at), f"{r.detail['by']} acting as {r.actor}" if r.detail.get("by") else r.actor, r.unit_name or r.unit, r.trigger, r.from_state, r.to_state,
                   _describe(r)] for r in rows]
    emit(fmt, lambda: render.table(headers, table_rows) + f"\n共 {len(rows)} 条", data)


def _describe(r) -> str:
    parts = []
    if r.trigger == "record":
        parts.append(f"{r.detail.get('item')} = {r.detail.get('value')}")
    elif r.trigger in ("designate", "undesignate"):
        parts.append(r.detail.get("cohort", ""))
    elif r.trigger == "denied":
        parts.append(f"{r.detail.get('attempted', '')}：{r.detail.get('reason', '')}")
    elif r.trigger == "circular":
        parts.append(f"通报 {r.detail.get('milestone', '')}（截至 {r.detail.get('as_of', '')}，SHA-256 {str(r.detail.get('sha256', ''))[:12]}…）")
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


def _key_path(env, key: str | None):
    import os
    from pathlib import Path

    return Path(key or os.environ.get("ANJIAN_AUDIT_KEY") or env.settings.data_dir / "audit-signing-key.pem")


@audit.command()
@click.option("--checkpoint", "checkpoint", metavar="FILE", help="Also compare with this signed checkpoint.")
@click.option("--key", metavar="FILE", help="The signing key (default: ANJIAN_AUDIT_KEY or the data folder's).")
@click.option("--no-replay", is_flag=True, help="Skip checking every unit's state against the log.")
@command
def verify(env, checkpoint, key, no_replay) -> None:
    """Walk the hash chain from the first row, compare with a signed checkpoint, and check that every
    unit's state is the one the log implies; exit 6 naming the first bad row and why.

    Example:

        anjian audit verify --checkpoint checkpoint-1200.json
    """
    from anjian.workflow.errors import AuditBroken
    from anjian.workflow.store.integrity import load_key, read_checkpoint
    from anjian.workflow.store.integrity import verify as check

    cp = read_checkpoint(checkpoint, load_key(_key_path(env, key), create=False)) if checkpoint else None
    with env.database().read() as session:
        v = check(session, cp, replay=not no_replay)
    if not v.ok:
        where = f"audit row {v.bad_seq}: " if v.bad_seq is not None else ""
        raise AuditBroken(f"{where}{v.reason}", [f"kind: {v.kind}", f"{v.rows} row(s) read"])
    extra = f"，与签名检查点 #{v.checkpoint_seq} 一致" if cp else ""
    click.echo(f"审计日志完整：{v.rows} 条记录，链尾 #{v.head_seq} {v.head_hash[:16]}…{extra}")


@audit.command("checkpoint")
@click.option("--out", metavar="FILE", help="Where to write it (default: the data folder's checkpoints/).")
@click.option("--key", metavar="FILE", help="The signing key (made on first use; keep it outside the database).")
@command
def checkpoint_cmd(env, out, key) -> None:
    """Write a signed checkpoint of the audit log (its head and every row's hash), to keep elsewhere;
    `audit verify --checkpoint FILE` then also catches a truncated or wholesale re-hashed log.

    Example:

        anjian audit checkpoint --out /media/usb/anjian-checkpoint.json
    """
    from pathlib import Path

    from anjian.workflow.engine.authz import may, refusals_audited
    from anjian.workflow.store import audit as audit_log
    from anjian.workflow.store.integrity import load_key, make_checkpoint

    db = env.database()
    actor = env.actor
    with refusals_audited(db, actor, env.now, "audit checkpoint"), db.write() as session:
        may(session, actor, "checkpoint")
        signing = load_key(_key_path(env, key), create=True)
        cp = make_checkpoint(session, signing, env.now)
        path = Path(out) if out else env.settings.data_dir / "checkpoints" / f"checkpoint-{cp.seq}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cp.to_json(), "utf-8")
        except OSError as exc:
            from anjian.workflow.errors import BadInput

            raise BadInput(f"cannot write the checkpoint to {path}: {exc.strerror}") from None
        audit_log.append(session, [audit_log.Entry(env.now, actor, "checkpoint", None,
                                                   detail={"seq": cp.seq, "head_hash": cp.head_hash, "file": str(path)})])
    click.echo(f"已写入签名检查点：{path}（截至第 {cp.seq} 条，链尾 {cp.head_hash[:16]}…）")
