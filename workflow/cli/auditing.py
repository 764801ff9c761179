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
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.history import history as listing

    since_at = parse_time(since, "--since") if since is not None else None
    rows = listing(env.database(), unit, since_at, actor, children)
    headers = ["序号", "时间", "操作人", "单位", "操作", "原状态", "新状态", "说明"]
    table_rows = [[r.seq, shown(r.at), r.shown_actor, r.unit_name or r.unit, r.trigger, r.from_state, r.to_state,
                   _describe(r)] for r in rows]
    emit(fmt, lambda: render.table(headers, table_rows) + f"\n共 {len(rows)} 条", rows)


def _describe(r) -> str:
    from anjian.workflow.clock import shown

    parts = [f"补录（{r.effective} 的纸质记录，录入于 {shown(r.recorded_at)}）"] if r.late else []
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
    from pathlib import Path

    return Path(key) if key else env.settings.audit_key


@audit.command()
@click.option("--checkpoint", "checkpoint", metavar="FILE", help="Also compare with this signed checkpoint.")
@click.option("--public-key", metavar="FILE",
              help="The public key to check the checkpoint with (default: ANJIAN_AUDIT_PUBLIC_KEY, the config's "
                   "[audit] public_key, or the .pub beside the signing key). No private key is needed.")
@click.option("--no-replay", is_flag=True, help="Skip checking every unit's state against the log.")
@command
def verify(env, checkpoint, public_key, no_replay) -> None:
    """Walk the hash chain from the first row, compare with a signed checkpoint (checked with the public
    key alone), and check that every unit's state is the one the log implies; exit 6 naming the first bad
    row and why.

    Example:

        anjian audit verify --checkpoint checkpoint-1200.json --public-key audit-signing-key.pub
    """
    from pathlib import Path

    from anjian.workflow.errors import BadInput
    from anjian.workflow.services import auditing

    if public_key and not checkpoint:
        raise BadInput("--public-key 只用于核验检查点：请同时给出 --checkpoint FILE")
    cp = auditing.read(checkpoint, Path(public_key) if public_key else env.settings.audit_public_key) if checkpoint else None
    v = auditing.verify(env.database(), cp, replay=not no_replay)
    extra = f"，与签名检查点 #{v.checkpoint_seq} 一致" if cp else ""
    click.echo(f"审计日志完整：{v.rows} 条记录，链尾 #{v.head_seq} {v.head_hash[:16]}…{extra}")
    for note in v.notes:  # what rows written by older versions leave undetermined
        click.echo(f"注意：{note}")


@audit.command("checkpoint")
@click.option("--out", metavar="FILE", help="Where to write it (default: the data folder's checkpoints/).")
@click.option("--key", metavar="FILE", help="The private signing key (made on first use, mode 0600; keep it outside "
                                             "the database). Its public key is written beside it (.pub).")
@command
def checkpoint_cmd(env, out, key) -> None:
    """Write a signed checkpoint of the audit log (its head and every row's hash), to keep elsewhere;
    `audit verify --checkpoint FILE` then also catches a truncated or wholesale re-hashed log.

    Example:

        anjian audit checkpoint --out /media/usb/anjian-checkpoint.json
    """
    from anjian.workflow.services import auditing

    now = env.write_now
    db = env.database()
    cp = auditing.write_checkpoint(db, env.actor, now, _key_path(env, key), out, env.settings.data_dir / "checkpoints")
    click.echo(f"已写入签名检查点：{cp.path}（截至第 {cp.seq} 条，链尾 {cp.head_hash[:16]}…）")
    click.echo(f"核验用公钥：{cp.public_key}（交给核验人：anjian audit verify --checkpoint FILE --public-key {cp.public_key}）")
