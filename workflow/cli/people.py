"""`anjian user add|edit|list|disable|enable`: the officials who may act, and their OS accounts."""

from __future__ import annotations

import click

from anjian.i18n import _
from anjian.workflow.cli.common import command, emit, format_option

ROLE_HELP = ("The official's role: city_office, city_inspector, county_official, township_chief or admin "
             "(`-` for `_`, or its Chinese name).")


@click.group()
def user() -> None:
    """Officials: who may act, in which role, for which unit (admins only change them).

    \b
    Example:
        anjian user add 王站长 --role township_chief --unit 宽城峪耳崖镇 --os-user wangzz
    """


def _described(o) -> str:
    from anjian.states.labels import ROLE_NAMES

    words = _("{name}: {role}, {unit_name} ({unit})").format(name=o.name, role=ROLE_NAMES[o.role], unit_name=o.unit_name,
                                                            unit=o.unit)
    return words + (_(", OS account {login}").format(login=o.os_user) if o.os_user else "")


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, metavar="ROLE", help=ROLE_HELP)
@click.option("--unit", required=True, metavar="UNIT", help="The unit whose jurisdiction they act in.")
@click.option("--os-user", metavar="LOGIN", help="The operating-system account that acts as this official.")
@command
def user_add(env, name, role, unit, os_user) -> None:
    """Register an official.

    \b
    Example:
        anjian user add 李科长 --role county-official --unit 宽城县 --os-user lik
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.add(env.database(), name, role, unit, os_user, env.actor, now)
    click.echo(_("Registered {official}").format(official=_described(o)))


@user.command("edit")
@click.argument("name")
@click.option("--login", "os_user", metavar="LOGIN", help="Link to this operating-system account (\"\" unlinks).")
@click.option("--role", metavar="ROLE", help=ROLE_HELP)
@click.option("--unit", metavar="UNIT", help="Move to this unit.")
@click.option("--name", "new_name", metavar="NEW", help="Rename the official.")
@command
def user_edit(env, name, os_user, role, unit, new_name) -> None:
    """Change an official: OS account, role, unit or name (admins only; the rules of `user add` apply).

    \b
    Example:
        anjian user edit 王站长 --login wangzz
        anjian user edit 李科长 --role 县区工作人员 --unit 宽城县
    """
    from anjian.workflow.errors import BadInput
    from anjian.workflow.services import officials as users

    if os_user is None and role is None and unit is None and new_name is None:
        raise BadInput(_("nothing to change: give --login, --role, --unit or --name"))
    now = env.write_now
    o = users.edit(env.database(), name, env.actor, now, os_user=os_user, role=role, unit=unit, new_name=new_name)
    click.echo(_("Now {official}").format(official=_described(o)))


@user.command("list")
@format_option()
@command
def user_list(env, fmt) -> None:
    """List officials.

    \b
    Example:
        anjian user list --format json
    """
    from anjian.states.labels import ROLE_NAMES
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import officials as users

    rows = users.listing(env.database(), env.actor)
    headers = [_("Name"), _("Role"), _("Unit code"), _("Unit"), _("OS account"), _("Active")]
    table = [[o.name, ROLE_NAMES[o.role], o.unit, o.unit_name, o.os_user, _("yes") if o.active else _("no")] for o in rows]
    emit(fmt, lambda: render.table(headers, table), rows, lambda: render.as_csv(headers, table))


@user.command("disable")
@click.argument("name")
@command
def user_disable(env, name) -> None:
    """Disable an official: they can no longer act (their history stays).

    \b
    Example:
        anjian user disable 王站长
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.set_active(env.database(), name, False, env.actor, now)
    click.echo(_("Disabled {name}").format(name=o.name))


@user.command("enable")
@click.argument("name")
@command
def user_enable(env, name) -> None:
    """Enable a disabled official again.

    \b
    Example:
        anjian user enable 王站长
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.set_active(env.database(), name, True, env.actor, now)
    click.echo(_("Enabled {name}").format(name=o.name))


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@command
def user_passwd(env, name, password_stdin) -> None:
    """Set an official's password for the service (admins only, on the service's machine); the official
    must change it at the first sign-in.

    \b
    Example:
        anjian user passwd 王站长 --password-stdin < first-password.txt
    """
    import sys

    from anjian.workflow.errors import BadInput
    from anjian.workflow.services import credentials

    if env.call is not None:
        raise BadInput(_("`anjian user passwd` runs on the service's own machine (embedded mode), never through it"))
    now = env.write_now
    actor = env.actor
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise BadInput(_("--password-stdin: standard input ended before the password"))
        password = line.rstrip("\r\n")
    else:
        password = click.prompt(_("Password of {name}").format(name=name), hide_input=True,
                                confirmation_prompt=_("Again"), err=True)
    credentials.set_password(env.database(), actor, name, password, now)
    click.echo(_("Password of {name} set: they must change it at the first sign-in").format(name=name))
