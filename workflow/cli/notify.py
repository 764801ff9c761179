"""`anjian contact`, `remind`, `notices`, `deadlines`, `calendar` and `daemon`."""

from __future__ import annotations

from pathlib import Path

import click

from anjian.i18n import N_, _
from anjian.workflow.cli.common import command, emit, format_option

KIND_WORDS = {"reminder": N_("deadline reminder"), "overdue": N_("overdue notice"), "warning": N_("early warning")}
STATUS_WORDS = {"sent": N_("sent"), "claimed": N_("sending"), "sending": N_("sending"), "retry": N_("to retry"),
                "failed": N_("failed"), "planned": N_("to send"), "ambiguous": N_("to check")}
UNITS_SHOWN = 3  # units named in a table cell; the rest are counted


def _units(codes: list[str], names: dict[str, str], most: int = UNITS_SHOWN) -> str:
    """Units by name and code: '峪耳崖镇（130827102）、… 等 15 个单位'."""
    shown = [_("{name} ({code})").format(name=names.get(c, c), code=c) for c in codes[:most]]
    more = len(codes) - len(shown)
    return _(", ").join(shown) + (_(" and {count} more").format(count=more) if more > 0 else "")


def _notify(env):
    from anjian.workflow.settings import notify_settings

    return notify_settings(env.settings.data_dir)


def _hooks(env):
    """Where this command may let webhooks go: the allowlist of the settings (`webhook_hosts`)."""
    from anjian.notifications.netguard import Policy

    return Policy.of(_notify(env).value("webhook_hosts"))


@click.group()
def contact() -> None:
    """Who receives a unit's notices.

    \b
    Example:
        anjian contact add 宽城峪耳崖镇 --name 王站长 --email wang@kc.gov.cn
    """


@contact.command("add")
@click.argument("unit")
@click.option("--name", required=True, help="The person's name.")
@click.option("--email", metavar="ADDRESS", help="E-mail address.")
@click.option("--webhook", metavar="URL", help="Group-robot webhook URL (WeCom/DingTalk style).")
@click.option("--campaigns", metavar="ID,ID", help="Only the notices of these campaigns (where the database runs "
              "several; by default those of every campaign that covers the unit).")
@command
def contact_add(env, unit, name, email, webhook, campaigns) -> None:
    """Add a contact to a unit.

    \b
    Example:
        anjian contact add 宽城县 --name 李科长 --email li@kc.gov.cn --webhook https://robot.example/hook
    """
    from anjian.workflow.services import contacts

    now = env.write_now
    c = contacts.add(env.database(), unit, name, email, webhook, env.actor, now, hooks=_hooks(env), campaigns=campaigns)
    click.echo(_("Contact added: {name} ({unit}): {email} {webhook}").format(
        name=c.name, unit=c.unit_name, email=c.email or "", webhook=c.webhook or "").rstrip())


@contact.command("import")
@click.argument("file", metavar="FILE.csv")
@command
def contact_import(env, file) -> None:
    """Add or update contacts from a CSV file (columns unit,name,email,webhook, and campaigns where the
    database runs several); all rows or none.

    Run it again with the file changed: a unit's contact of the same name takes the new address or
    webhook; rows as they are stored change nothing.

    \b
    Example:
        anjian contact import contacts.csv
    """
    from anjian.workflow.formats import tables
    from anjian.workflow.services import contacts

    now = env.write_now
    recs, problems = _read_table(tables, file, ("unit", "name"), ("email", "webhook", "campaigns"), env.settings.limits)
    done = contacts.import_many(env.database(), recs, env.actor, now, unreadable=problems, hooks=_hooks(env))
    click.echo(_("Contacts added: {added}, updated: {updated}, unchanged: {unchanged}").format(
        added=len(done.added), updated=len(done.updated), unchanged=done.unchanged))


def _read_table(tables, file, required, optional, limits):
    """The rows of a CSV file, or of an .xlsx sheet and Chinese headers once formats/tables has `read_table`."""
    reader = getattr(tables, "read_table", None)
    if reader is not None:
        return reader(file, required, optional, limits)
    return tables.read_csv(file, required, optional, limits)


@contact.command("list")
@click.argument("unit", required=False)
@format_option()
@command
def contact_list(env, unit, fmt) -> None:
    """List contacts (of one unit, or all).

    \b
    Example:
        anjian contact list 宽城县
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import contacts

    rows = contacts.listing(env.database(), unit, env.actor)
    headers = [_("Unit code"), _("Unit"), _("Name"), _("E-mail"), _("Webhook")]
    table = [[c.unit, c.unit_name, c.name, c.email, c.webhook] for c in rows]
    if any(c.campaigns for c in rows):  # a database of several campaigns, some contacts taking only some
        headers.append(_("Campaigns"))
        for line, c in zip(table, rows, strict=True):
            line.append(c.campaigns or _("all"))
    emit(fmt, lambda: render.table(headers, table) + "\n" + _("{count} contact(s) in all").format(count=len(rows)), rows,
         lambda: render.as_csv(headers, table))


@contact.command("remove")
@click.argument("unit")
@click.option("--name", required=True, help="The contact's name.")
@command
def contact_remove(env, unit, name) -> None:
    """Remove a unit's contact.

    \b
    Example:
        anjian contact remove 宽城县 --name 李科长
    """
    from anjian.workflow.services import contacts

    now = env.write_now
    contacts.remove(env.database(), unit, name, env.actor, now)
    click.echo(_("Contact removed: {name}").format(name=name))


@click.command()
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@format_option(("table", "json"))
@command
def remind(env, dry_run, fmt) -> None:
    """One reminder pass at `now`: each recipient gets at most one message listing everything due for them.
    On a database of several campaigns, each campaign's pass in turn unless --campaign names one.

    A county whose forecast (as `status` shows it) warns of a coming milestone gets an early warning,
    its city office a copy, once a week while it stays warned. Running it twice at the same time
    sends nothing new. Units without a contact are reported.

    \b
    Example:
        anjian remind --now 2015-03-24T08:30 --dry-run
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.reminders.results import PassResult
    from anjian.workflow.reminders.run import run_passes

    now = env.now if dry_run else env.write_now  # a dry run only reads: at --now, as of then
    db = env.database()
    res = PassResult.merged(run_passes(db, now, _notify(env), env.settings.outbox, dry_run=dry_run))

    def text() -> str:
        from anjian.workflow.reminders.notices import unit_names
        from anjian.workflow.reminders.warnings import is_weekly

        listed = res.sent + res.deferred + res.failed
        lonely = sorted({str(s["unit"]) for s in res.skipped if s.get("reason") == "no contact"})
        bosses = sorted({str(s["unit"]) for s in res.skipped if "for_unit" in s and not is_weekly(s["rung"])})
        watchers = sorted({str(s["unit"]) for s in res.skipped if "for_unit" in s and is_weekly(s["rung"])})
        names = unit_names(db, {c for s in listed for c in s.units[:UNITS_SHOWN]} | set(lonely[:20]) | set(bosses[:20])
                           | set(watchers[:20]))
        day = _("working day") if res.workday else _("day off")
        head = _("{today} ({day}, calendar: {calendar})").format(today=res.today, day=day, calendar=res.calendar) + (
            _("  dry run, nothing sent") if dry_run else "") + (
            _("  campaigns: {ids}").format(ids="、".join(res.campaigns)) if res.campaigns else "")
        rows = [[s.notice_id, s.recipient, s.channel, _(KIND_WORDS[s.kind]), _(STATUS_WORDS[s.status]), _units(s.units, names),
                 s.milestones] for s in listed]
        headers = [_("Notice"), _("Recipient"), _("Channel"), _("Kind"), _("Status"), _("Units"), _("Milestones")]
        out = [head, render.table(headers, rows)]
        if lonely:
            out.append(_("Units without a contact, not reminded: {count}: ").format(count=len(lonely)) + _units(lonely, names, 20))
        if bosses:
            out.append(_("Higher units without a contact for overdue notices: {count}: ").format(count=len(bosses))
                       + _units(bosses, names, 20))
        if watchers:
            out.append(_("Higher units without a contact for early warnings: {count}: ").format(count=len(watchers))
                       + _units(watchers, names, 20))
        out += [s["reason"] for s in res.skipped if "unit" not in s]
        if res.unsettled:
            out.append(_("{count} notice(s) to check ({new} found by this pass): another pass was interrupted while "
                         "sending them, they may have gone out and were not sent again. `anjian notices --status ambiguous` "
                         "lists them; after checking, settle them with `anjian notices settle`").format(
                count=res.unsettled, new=len(res.ambiguous)))
        if res.swept:
            out.append(_("Removed {count} temporary file(s) of interrupted writes from the outbox").format(count=res.swept))
        return "\n".join(out)

    if fmt == "json":
        _echo_json(res.as_json())
    else:
        emit(fmt, text, res)


def _echo_json(data: dict) -> None:
    """What `emit` prints as JSON, with each entry of a list on one line, written out as it goes: a
    national pass lists a hundred thousand entries. Indenting every key of every entry needs the json
    module's Python encoder (0.7 s for such a pass) and the whole text at once hundreds of MB; an entry
    a line is the C encoder's work, and as easy to read and to grep."""
    import json

    flat = json.JSONEncoder(ensure_ascii=False).encode
    fields = list(data.items())
    click.echo("{")
    for k, (key, value) in enumerate(fields):
        end = "," if k < len(fields) - 1 else ""
        head = f"  {flat(key)}: "
        if not isinstance(value, list) or not value:
            click.echo(f"{head}{flat(value)}{end}")
            continue
        click.echo(head + "[")
        for i in range(0, len(value), 2000):
            part = value[i:i + 2000]
            tail = "," if i + 2000 < len(value) else ""
            click.echo(",\n".join("    " + flat(v) for v in part) + tail)
        click.echo(f"  ]{end}")
    click.echo("}")


@click.group(invoke_without_command=True)
@click.option("--unit", metavar="UNIT", help="Only notices about this unit.")
@click.option("--status", type=click.Choice(["sent", "claimed", "sending", "retry", "failed", "ambiguous"]),
              help="Only notices in this status (ambiguous: left unfinished by another pass, not sent again).")
@format_option()
@command
def notices(env, unit, status, fmt) -> None:
    """What was sent, to whom, when, by which channel, with its status.

    \b
    Example:
        anjian notices --status ambiguous
    """
    if click.get_current_context().invoked_subcommand:
        return
    from anjian.workflow.clock import shown
    from anjian.workflow.formats import output as render
    from anjian.workflow.reminders.notices import notices as listing
    from anjian.workflow.reminders.notices import unit_names

    db = env.database()
    rows = listing(db, unit, status)
    names = unit_names(db, {c for n in rows for c in n.units[:UNITS_SHOWN]}) if fmt != "json" else {}
    headers = [_("Notice"), _("Created"), _("Sent"), _("Recipient"), _("Channel"), _("Kind"), _("Status"), _("Attempts"),
               _("Units"), _("Milestones"), _("Remark")]
    table = [[n.id, shown(n.created_at), shown(n.sent_at) if n.sent_at else None, n.recipient, n.channel, _(KIND_WORDS[n.kind]),
              _(STATUS_WORDS[n.status]), n.attempts, _units(n.units, names), n.milestones, _remark(n)] for n in rows]
    emit(fmt, lambda: render.table(headers, table) + "\n" + _("{count} in all").format(count=len(rows)), rows,
         lambda: render.as_csv(headers, table))


def _remark(n) -> str:
    """The 备注 of a notice: why one is held (ambiguous) and what to do, a possible duplicate, the last error."""
    if n.status == "ambiguous":
        return _("{owner} was interrupted sending it to {target}: it may have gone out and was not sent again; "
                 "after checking run `anjian notices settle {id} --sent` or `--resend`").format(
            owner=n.owner or _("an unrecorded pass"), target=n.target or _("an unrecorded place"), id=n.id)
    return (_("possibly sent twice; ") if n.ambiguous else "") + (n.last_error or "")


@notices.command("settle")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Every notice held as ambiguous.")
@click.option("--sent", "how", flag_value="sent", help="They went out (found where they were written): mark them sent.")
@click.option("--resend", "how", flag_value="resend", help="They did not go out: the next pass sends them.")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path),
              help="Decide each by the other outbox folder: its file there means sent, none means resend.")
@command
def settle(env, ids, every, how, outbox) -> None:
    """Settle notices another pass left ambiguous, after checking the outbox or mailbox they went to.

    \b
    Example:
        anjian notices settle 20161201-3f2a9c0d11e4b5a6 --sent
    """
    from anjian.workflow.errors import BadInput
    from anjian.workflow.reminders.notices import settle as settle_notices

    if (how is None) == (outbox is None):
        raise BadInput(_("give one of --sent, --resend or --outbox DIR"))
    if bool(ids) == every:
        raise BadInput(_("name the notices (ID…) or give --all"))
    done = settle_notices(env.database(), ids, outbox if outbox is not None else how, env.actor, env.now)
    click.echo(_("Settled {count} notice(s): {sent} marked sent, {resend} to be sent again by the next pass").format(
        count=len(done.sent) + len(done.resend), sent=len(done.sent), resend=len(done.resend)))


@click.command()
@click.argument("unit", required=False)
@click.option("--ics", metavar="FILE", help="Also write the dates as an iCalendar file.")
@format_option(("table", "json"))
@command
def deadlines(env, unit, ics, fmt) -> None:
    """The deadlines and the working days each is reminded on (30, 14, 7, 3, 1 days before; a day off
    moves a reminder to the working day before), and the first overdue notices.

    \b
    Example:
        anjian deadlines 宽城峪耳崖镇 --ics 峪耳崖镇.ics
    """
    from pathlib import Path

    from anjian.states.labels import MILESTONE_STATUS
    from anjian.workflow.formats import output as render
    from anjian.workflow.views.deadlines import deadlines as compute
    from anjian.workflow.views.deadlines import to_ics

    res = compute(env.database(), env.now, unit)
    if ics:
        try:
            Path(ics).write_bytes(to_ics(res))
        except OSError as exc:  # a folder that does not exist, a directory, no permission: the user's input
            from anjian.workflow.errors import BadInput

            raise BadInput(_("--ics {path}: cannot write the file ({why})").format(path=ics, why=exc.strerror)) from None

    def text() -> str:
        out = [_("{unit}  today {today}  calendar: {calendar}").format(
            unit=res.unit_name or _("all milestones"), today=res.today,
            calendar=_(", ").join(f"{y} {s}" for y, s in res.calendar.items()))]
        out += [f"⚠ {w}" for w in res.warnings]
        rows = []
        for m in res.milestones:
            days = "、".join(_short(r.day, m.deadline) + ("*" if r.shifted else "") for r in m.reminders)
            late = "、".join(_short(r.day, m.deadline) for r in m.overdue)
            rows.append([m.id, m.deadline, MILESTONE_STATUS.get(m.status, m.status) if m.status else "—", days, late])
        out.append(render.table([_("Milestone"), _("Deadline"), _("Status"),
                                 _("Reminder days (* moved to the working day before)"), _("Overdue notice days")], rows))
        if ics:
            out.append(_("Written: {path}").format(path=ics))
        return "\n".join(out)

    emit(fmt, text, res)


def _short(day: str, deadline: str) -> str:
    """MM-DD when in the deadline's year, the full date when not (2016-01-04 after 2015-12-31)."""
    return day[5:] if day[:4] == deadline[:4] else day


@click.group()
def calendar() -> None:
    """The official working-day calendar (holidays and make-up working days).

    \b
    Example:
        anjian calendar load 2027-schedule.csv
    """


@calendar.command("load")
@click.argument("file", metavar="FILE.csv")
@command
def calendar_load(env, file) -> None:
    """Load a year's official schedule (columns date,workday[,name]; workday 1/0 or 班/休).

    \b
    Example:
        anjian calendar load 2027-schedule.csv
    """
    from anjian.workflow.reminders.workdays import load_schedule

    now = env.write_now
    years = load_schedule(env.database(), file, env.actor, now, env.settings.limits)
    click.echo(_("Official schedule loaded: ") + _(", ").join(
        _("{year}: {days} day(s)").format(year=y, days=n) for y, n in years.items()))


@click.command()
@click.option("--log-file", metavar="FILE", help="Also append the log to this file.")
@command
def daemon(env, log_file) -> None:
    """Run the scheduler: each day at 08:30 Asia/Shanghai (settings: [daemon] at) it moves the city on
    the stage dates and sends the day's reminders on working days; once at start-up to catch up;
    retries due every few minutes. Stops cleanly on SIGTERM/SIGINT. On an SQLite database it refuses a
    second copy; on PostgreSQL several daemons (on one machine or several) run as peers, and each notice
    is still sent once.

    \b
    Example:
        anjian daemon --log-file /var/log/anjian.log
    """
    import logging
    import sys

    from anjian.workflow.reminders.daemon import Daemon, clock_from

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    start = env.write_now if env.now_given else None  # a drill's daemon may start at --now
    Daemon(env.database(), _notify(env), env.settings.outbox, clock_from(start)).run()
