"""`anjian contact`, `remind`, `notices`, `deadlines`, `calendar` and `daemon`."""

from __future__ import annotations

from pathlib import Path

import click

from anjian.workflow.cli.common import command, emit, format_option

KIND_WORDS = {"reminder": "到期提醒", "overdue": "逾期通知"}
STATUS_WORDS = {"sent": "已发送", "claimed": "发送中", "sending": "发送中", "retry": "待重试", "failed": "失败",
                "planned": "将发送", "ambiguous": "待核实"}


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

    Example:

        anjian contact add 宽城峪耳崖镇 --name 王站长 --email wang@kc.gov.cn
    """


@contact.command("add")
@click.argument("unit")
@click.option("--name", required=True, help="The person's name.")
@click.option("--email", metavar="ADDRESS", help="E-mail address.")
@click.option("--webhook", metavar="URL", help="Group-robot webhook URL (WeCom/DingTalk style).")
@command
def contact_add(env, unit, name, email, webhook) -> None:
    """Add a contact to a unit.

    Example:

        anjian contact add 宽城县 --name 李科长 --email li@kc.gov.cn --webhook https://robot.example/hook
    """
    from anjian.workflow.services import contacts

    now = env.write_now
    c = contacts.add(env.database(), unit, name, email, webhook, env.actor, now, hooks=_hooks(env))
    click.echo(f"已添加联系人 {c.name}（{c.unit_name}）：{c.email or ''} {c.webhook or ''}".rstrip())


@contact.command("import")
@click.argument("file", metavar="FILE.csv")
@command
def contact_import(env, file) -> None:
    """Add contacts from a CSV file (columns unit,name,email,webhook); all rows or none.

    Example:

        anjian contact import contacts.csv
    """
    from anjian.workflow.formats import tables
    from anjian.workflow.services import contacts

    now = env.write_now
    recs, problems = tables.read_csv(file, ("unit", "name"), ("email", "webhook"), env.settings.limits)
    out = contacts.add_many(env.database(), recs, env.actor, now, unreadable=problems, hooks=_hooks(env))
    click.echo(f"已添加 {len(out)} 个联系人")


@contact.command("list")
@click.argument("unit", required=False)
@format_option()
@command
def contact_list(env, unit, fmt) -> None:
    """List contacts (of one unit, or all).

    Example:

        anjian contact list 宽城县
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import contacts

    rows = contacts.listing(env.database(), unit)
    headers = ["单位代码", "单位", "姓名", "邮箱", "Webhook"]
    table = [[c.unit, c.unit_name, c.name, c.email, c.webhook] for c in rows]
    emit(fmt, lambda: render.table(headers, table) + f"\n共 {len(rows)} 个", rows, lambda: render.as_csv(headers, table))


@contact.command("remove")
@click.argument("unit")
@click.option("--name", required=True, help="The contact's name.")
@command
def contact_remove(env, unit, name) -> None:
    """Remove a unit's contact.

    Example:

        anjian contact remove 宽城县 --name 李科长
    """
    from anjian.workflow.services import contacts

    now = env.write_now
    contacts.remove(env.database(), unit, name, env.actor, now)
    click.echo(f"已删除联系人 {name}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@format_option(("table", "json"))
@command
def remind(env, dry_run, fmt) -> None:
    """One reminder pass at `now`: each recipient gets at most one message listing everything due for them.

    Running it twice at the same time sends nothing new. Units without a contact are reported.

    Example:

        anjian remind --now 2015-03-24T08:30 --dry-run
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.reminders.run import run_pass

    now = env.now if dry_run else env.write_now  # a dry run only reads: at --now, as of then
    res = run_pass(env.database(), now, _notify(env), env.settings.outbox, dry_run=dry_run)

    def text() -> str:
        head = f"{res.today}（{'工作日' if res.workday else '非工作日'}，日历：{res.calendar}）" + ("  试运行，未发送" if dry_run else "")
        rows = [[s.notice_id, s.recipient, s.channel, KIND_WORDS[s.kind], STATUS_WORDS[s.status], s.units, s.milestones]
                for s in res.sent + res.deferred + res.failed]
        out = [head, render.table(["编号", "收件人", "渠道", "类型", "状态", "单位", "节点"], rows)]
        lonely = sorted({str(s["unit"]) for s in res.skipped if s.get("reason") == "no contact"})
        if lonely:
            out.append(f"无联系人、未能发送提醒的单位 {len(lonely)} 个：" + "、".join(lonely[:20]) + (" 等" if len(lonely) > 20 else ""))
        bosses = sorted({str(s["unit"]) for s in res.skipped if "for_unit" in s})
        if bosses:
            out.append(f"无联系人、未能接收逾期通报的上级单位 {len(bosses)} 个：" + "、".join(bosses[:20]))
        out += [s["reason"] for s in res.skipped if "unit" not in s]
        if res.unsettled:
            out.append(f"{res.unsettled} 条通知待核实（其中本次发现 {len(res.ambiguous)} 条）：其他发送过程发送时中断，"
                       "可能已发出，未重发。anjian notices --status ambiguous 列出它们，核对后用 anjian notices settle 处理")
        if res.swept:
            out.append(f"已清除发件箱中中断写入留下的临时文件 {res.swept} 个")
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

    Example:

        anjian notices --status ambiguous
    """
    if click.get_current_context().invoked_subcommand:
        return
    from anjian.workflow.clock import shown
    from anjian.workflow.formats import output as render
    from anjian.workflow.reminders.notices import notices as listing

    rows = listing(env.database(), unit, status)
    headers = ["编号", "生成时间", "发送时间", "收件人", "渠道", "类型", "状态", "次数", "单位", "节点", "备注"]
    table = [[n.id, shown(n.created_at), shown(n.sent_at) if n.sent_at else None, n.recipient, n.channel, KIND_WORDS[n.kind],
              STATUS_WORDS[n.status], n.attempts, n.units, n.milestones, _remark(n)] for n in rows]
    emit(fmt, lambda: render.table(headers, table) + f"\n共 {len(rows)} 条", rows, lambda: render.as_csv(headers, table))


def _remark(n) -> str:
    """The 备注 of a notice: why one is held (ambiguous) and what to do, a possible duplicate, the last error."""
    if n.status == "ambiguous":
        return (f"{n.owner or '未记录的发送过程'} 向 {n.target or '未记录的去向'} 发送时中断：可能已发出，未重发；"
                f"核对后运行 anjian notices settle {n.id} --sent 或 --resend")
    return ("可能重复发送；" if n.ambiguous else "") + (n.last_error or "")


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

    Example:

        anjian notices settle 20161201-3f2a9c0d11e4b5a6 --sent
    """
    from anjian.workflow.errors import BadInput
    from anjian.workflow.reminders.notices import settle as settle_notices

    if (how is None) == (outbox is None):
        raise BadInput("give one of --sent, --resend or --outbox DIR")
    if bool(ids) == every:
        raise BadInput("name the notices (ID…) or give --all")
    done = settle_notices(env.database(), ids, outbox if outbox is not None else how, env.actor, env.now)
    click.echo(f"已核实 {len(done.sent) + len(done.resend)} 条通知：{len(done.sent)} 条记为已发送，"
               f"{len(done.resend)} 条将由下一次发送过程重发")


@click.command()
@click.argument("unit", required=False)
@click.option("--ics", metavar="FILE", help="Also write the dates as an iCalendar file.")
@format_option(("table", "json"))
@command
def deadlines(env, unit, ics, fmt) -> None:
    """The deadlines and the working days each is reminded on (30, 14, 7, 3, 1 days before; a day off
    moves a reminder to the working day before), and the first overdue notices.

    Example:

        anjian deadlines 宽城峪耳崖镇 --ics 峪耳崖镇.ics
    """
    from pathlib import Path

    from anjian.workflow.formats import output as render
    from anjian.workflow.views.deadlines import deadlines as compute
    from anjian.workflow.views.deadlines import to_ics

    res = compute(env.database(), env.now, unit)
    if ics:
        try:
            Path(ics).write_bytes(to_ics(res))
        except OSError as exc:  # a folder that does not exist, a directory, no permission: the user's input
            from anjian.workflow.errors import BadInput

            raise BadInput(f"--ics {ics}: cannot write the file ({exc.strerror})") from None

    def text() -> str:
        out = [f"{res.unit_name or '全部节点'}  今天 {res.today}  日历来源：" + "，".join(f"{y} {s}" for y, s in res.calendar.items())]
        out += [f"⚠ {w}" for w in res.warnings]
        rows = []
        for m in res.milestones:
            days = "、".join(_short(r.day, m.deadline) + ("*" if r.shifted else "") for r in m.reminders)
            late = "、".join(_short(r.day, m.deadline) for r in m.overdue)
            rows.append([m.id, m.deadline, m.status or "—", days, late])
        out.append(render.table(["节点", "期限", "状态", "提醒日（*为顺延至前一工作日）", "逾期通知日"], rows))
        if ics:
            out.append(f"已写入 {ics}")
        return "\n".join(out)

    emit(fmt, text, res)


def _short(day: str, deadline: str) -> str:
    """MM-DD when in the deadline's year, the full date when not (2016-01-04 after 2015-12-31)."""
    return day[5:] if day[:4] == deadline[:4] else day


@click.group()
def calendar() -> None:
    """The official working-day calendar (holidays and make-up working days).

    Example:

        anjian calendar load 2027-schedule.csv
    """


@calendar.command("load")
@click.argument("file", metavar="FILE.csv")
@command
def calendar_load(env, file) -> None:
    """Load a year's official schedule (columns date,workday[,name]; workday 1/0 or 班/休).

    Example:

        anjian calendar load 2027-schedule.csv
    """
    from anjian.workflow.reminders.workdays import load_schedule

    now = env.write_now
    years = load_schedule(env.database(), file, env.actor, now, env.settings.limits)
    click.echo("已载入官方节假日安排：" + "，".join(f"{y} 年 {n} 天" for y, n in years.items()))


@click.command()
@click.option("--log-file", metavar="FILE", help="Also append the log to this file.")
@command
def daemon(env, log_file) -> None:
    """Run the scheduler: each day at 08:30 Asia/Shanghai (settings: [daemon] at) it moves the city on
    the stage dates and sends the day's reminders on working days; once at start-up to catch up;
    retries due every few minutes. Stops cleanly on SIGTERM/SIGINT. On an SQLite database it refuses a
    second copy; on PostgreSQL several daemons (on one machine or several) run as peers, and each notice
    is still sent once.

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
