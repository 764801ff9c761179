"""`anjian history` and `anjian audit verify`."""

from __future__ import annotations

import click

from anjian.i18n import N_, _
from anjian.workflow.cli.common import command, emit, format_option


@click.command()
@click.argument("unit", required=False)
@click.option("--since", metavar="DATE", help="Only rows at or after this date/time (Asia/Shanghai).")
@click.option("--until", metavar="DATE", help="Only rows before this date/time (Asia/Shanghai); a date alone "
                                              "includes that whole day.")
@click.option("--actor", metavar="NAME", help="Only rows by this official.")
@click.option("--action", "actions", metavar="ACTION", multiple=True,
              help="Only rows of this action: a trigger (e.g. accept, or its name) or one of the log's own "
                   "(record, designate, checkpoint …); repeat for more.")
@click.option("--children", is_flag=True, help="With a county: include its townships.")
@click.option("--newest-first", is_flag=True, help="The newest rows first.")
@click.option("--rows", "most", type=click.IntRange(min=1), metavar="N", help="At most N rows (a page of them).")
@click.option("--skip", type=click.IntRange(min=0), default=0, metavar="N",
              help="Skip the first N rows (in the order listed): with --rows, the pages after the first.")
@format_option(("table", "json"))
@command
def history(env, unit, since, until, actor, actions, children, newest_first, most, skip, fmt) -> None:
    """The audit trail: every transition, record, designation and load, oldest first.
    JSON rows also carry each row's hash and the hash before it in the chain.

    \b
    Example:
        anjian history 宽城峪耳崖镇 --since 2015-01-01
        anjian history --action accept --since 2015-01-01 --until 2015-03-31
        anjian history --newest-first --rows 100 --skip 100 --format json
    """
    from anjian.workflow.clock import parse_time, shown
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.history import history as listing

    since_at = parse_time(since, "--since") if since is not None else None
    until_at = _until(until) if until is not None else None
    wanted = [_action_id(a) for a in actions] or None
    from anjian.workflow.cli.views import viewer_of
    from anjian.workflow.engine.authz import refusals_audited

    viewer = viewer_of(env)
    with refusals_audited(env.database(), viewer or env.actor_name, env.stamp, "history"):
        rows = listing(env.database(), unit, since_at, actor, children, until=until_at, actions=wanted,
                       newest_first=newest_first, limit=most, offset=skip, viewer=viewer)
    headers = [_("No."), _("Time"), _("By"), _("Unit"), _("Action"), _("From"), _("To"), _("Details")]
    table_rows = [[r.seq, shown(r.at), r.shown_actor, r.unit_name or r.unit, _action(r.trigger),
                   _state(r.from_state), _state(r.to_state), _describe(r)] for r in rows]

    def data() -> list[dict]:
        """The rows, with what the table says in words beside the identifiers (the note stays apart)."""
        import dataclasses

        from anjian.workflow.formats.output import to_jsonable

        return [{**to_jsonable(r), "shown_actor": r.shown_actor, "action_name": _action(r.trigger),
                 "from_state_name": _state(r.from_state), "to_state_name": _state(r.to_state),
                 "description": _describe(dataclasses.replace(r, note=None))} for r in rows]

    emit(fmt, lambda: render.table(headers, table_rows) + "\n" + _("{count} in all").format(count=len(rows)),
         data() if fmt == "json" else rows)


def _until(text: str):
    """--until: before this time; a date alone means before the next day's 00:00 (the day is included)."""
    import datetime as dt

    from anjian.workflow.clock import parse_time

    moment = parse_time(text, "--until")
    return moment + dt.timedelta(days=1) if len(text.strip()) == 10 else moment


def _action_id(text: str) -> str:
    """The action `--action` names: a trigger or a log action, by identifier or by name; else exit 2."""
    from anjian.states.labels import TRIGGER_NAMES, Words, choices, parse
    from anjian.workflow.errors import BadInput

    found = parse(TRIGGER_NAMES, text) or parse(Words(ACTIONS), text)
    if found is None:
        raise BadInput(_("--action: unknown action “{value}”; one of: {choices}").format(
            value=text, choices=choices(TRIGGER_NAMES) + "、" + choices(Words(ACTIONS))))
    return found


ACTIONS = {"record": N_("checklist recorded"), "designate": N_("cohort designated"), "undesignate": N_("cohort removed"),
           "denied": N_("refusal recorded"), "circular": N_("circular issued"), "registry_load": N_("registry loaded"),
           "campaign_load": N_("campaign loaded"), "campaign_add": N_("campaign added"), "calendar_load": N_("calendar loaded"), "checkpoint": N_("checkpoint written"),
           "user_add": N_("official added"), "user_edit": N_("official changed"), "user_enable": N_("official enabled"),
           "user_disable": N_("official disabled"), "contact_add": N_("contact added"),
           "contact_update": N_("contact updated"), "contact_remove": N_("contact removed"),
           "notice_settle": N_("notices settled"), "password_set": N_("password set"),
           "password_change": N_("password changed"), "signin": N_("signed in"), "signin_failed": N_("sign-in refused"),
           "signout": N_("signed out"), "token_create": N_("token issued"), "token_revoke": N_("token revoked")}


def _action(action: str) -> str:
    """What a row did, in words: a trigger's name, or one of the log's own actions."""
    from anjian.states.labels import TRIGGER_NAMES

    if action in TRIGGER_NAMES:
        return TRIGGER_NAMES[action]
    return _(ACTIONS[action]) if action in ACTIONS else action


def _state(state: str | None) -> str | None:
    """A state's name, whichever machine it belongs to (the township's and the county's have distinct states)."""
    from anjian.states.labels import STATE_NAMES

    if state is None:
        return None
    for level in ("township", "county", "city"):
        if (level, state) in STATE_NAMES:
            return STATE_NAMES[(level, state)]
    return state


def _describe(r) -> str:
    from anjian.workflow.clock import shown

    parts = [_("late entry (a paper record of {day}, entered {at})").format(day=r.effective, at=shown(r.recorded_at))] \
        if r.late else []
    if r.trigger == "record":
        parts.append(f"{r.detail.get('item')} = {r.detail.get('value')}")
    elif r.trigger in ("designate", "undesignate"):
        parts.append(r.detail.get("cohort", ""))
    elif r.trigger == "denied":
        parts.append(_("{attempted}: {reason}").format(attempted=r.detail.get("attempted", ""), reason=r.detail.get("reason", "")))
    elif r.trigger == "circular":
        parts.append(_("circular {milestone} (as of {as_of}, SHA-256 {digest}…)").format(
            milestone=r.detail.get("milestone", ""), as_of=r.detail.get("as_of", ""), digest=str(r.detail.get("sha256", ""))[:12]))
    elif r.trigger in ("user_add", "user_edit", "user_enable", "user_disable", "contact_add", "contact_update",
                       "contact_remove"):
        parts.append(_official_words(r.detail))
    elif r.trigger in ("password_set", "password_change", "signin", "signin_failed", "signout", "token_create",
                       "token_revoke"):
        parts.append(_credential_words(r.detail))
    elif r.trigger in ("registry_load", "campaign_load", "campaign_add"):
        parts.append(str(r.detail.get("source", "")))
    if r.note:
        parts.append(r.note.replace("\n", " ")[:60])
    if r.evidence:
        parts.append(_("attachments: {count}").format(count=len(r.evidence)))
    return _("; ").join(p for p in parts if p)


def _credential_words(d: dict) -> str:
    """A sign-in row: whose credential, which, from where, and why a refusal."""
    kinds = {"token": _("token"), "session": _("browser session")}
    reasons = {"credentials": _("wrong name or password"), "blocked": _("too many failures"),
               "token": _("invalid, expired or revoked token")}
    words = [str(d["official"])] if d.get("official") else []
    if d.get("kind"):
        words.append(kinds.get(d["kind"], str(d["kind"])))
    if d.get("id"):
        words.append(str(d["id"]))
    if d.get("reason"):
        words.append(reasons.get(d["reason"], str(d["reason"])))
    if d.get("address"):
        words.append(_("from {address}").format(address=d["address"]))
    return " ".join(words)


def _official_words(d: dict) -> str:
    """An official's or a contact's row: who, and what it set."""
    from anjian.states.labels import ROLE_NAMES

    words = [str(d.get("name", ""))]
    if d.get("new_name") and d.get("new_name") != d.get("name"):
        words.append(_("renamed {name}").format(name=d["new_name"]))
    if d.get("role"):
        words.append(ROLE_NAMES.get(d["role"], d["role"]))
    for key in ("os_user", "email", "webhook"):
        if d.get(key):
            words.append(str(d[key]))
    return " ".join(words)


@click.group()
def audit() -> None:
    """Check the audit log.

    \b
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

    \b
    Example:
        anjian audit verify --checkpoint checkpoint-1200.json --public-key audit-signing-key.pub
    """
    from pathlib import Path

    from anjian.workflow.errors import BadInput
    from anjian.workflow.services import auditing

    if public_key and not checkpoint:
        raise BadInput(_("--public-key only checks a checkpoint: give --checkpoint FILE as well"))
    cp = auditing.read(checkpoint, Path(public_key) if public_key else env.settings.audit_public_key) if checkpoint else None
    v = auditing.verify(env.database(), cp, replay=not no_replay)
    extra = _(", agrees with the signed checkpoint #{seq}").format(seq=v.checkpoint_seq) if cp else ""
    click.echo(_("The audit log is intact: {rows} row(s), head #{seq} {digest}…").format(
        rows=v.rows, seq=v.head_seq, digest=v.head_hash[:16]) + extra)
    for note in v.notes:  # what rows written by older versions leave undetermined
        click.echo(_("Note: {note}").format(note=note))


@audit.command("checkpoint")
@click.option("--out", metavar="FILE", help="Where to write it (default: the data folder's checkpoints/).")
@click.option("--key", metavar="FILE", help="The private signing key (made on first use, mode 0600; keep it outside "
                                             "the database). Its public key is written beside it (.pub).")
@command
def checkpoint_cmd(env, out, key) -> None:
    """Write a signed checkpoint of the audit log (its head and every row's hash), to keep elsewhere;
    `audit verify --checkpoint FILE` then also catches a truncated or wholesale re-hashed log.

    \b
    Example:
        anjian audit checkpoint --out /media/usb/anjian-checkpoint.json
    """
    from anjian.workflow.services import auditing

    now = env.write_now
    db = env.database()
    cp = auditing.write_checkpoint(db, env.actor, now, _key_path(env, key), out, env.settings.data_dir / "checkpoints")
    click.echo(_("Signed checkpoint written: {path} (up to row {seq}, head {digest}…)").format(
        path=cp.path, seq=cp.seq, digest=cp.head_hash[:16]))
    click.echo(_("Public key to check it with: {key} (give it to the checker: anjian audit verify --checkpoint FILE "
                 "--public-key {key})").format(key=cp.public_key))
