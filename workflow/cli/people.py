"""`anjian user add|list|disable|enable`: the officials who may act, and their OS accounts."""

from __future__ import annotations

import click

from anjian.workflow.cli.common import command, emit, format_option


@click.group()
def user() -> None:
    """Officials: who may act, in which role, for which unit (admins only change them).

    Example:

        anjian user add 王站长 --role township_chief --unit 宽城峪耳崖镇 --os-user wangzz
    """


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["city_office", "city_inspector", "county_official",
                                                          "township_chief", "admin"]), help="The official's role.")
@click.option("--unit", required=True, metavar="UNIT", help="The unit whose jurisdiction they act in.")
@click.option("--os-user", metavar="LOGIN", help="The operating-system account that acts as this official.")
@command
def user_add(env, name, role, unit, os_user) -> None:
    """Register an official.

    Example:

        anjian user add 李科长 --role county_official --unit 宽城县 --os-user lik
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.add(env.database(), name, role, unit, os_user, env.actor, now)
    click.echo(f"已登记 {o.name}：{o.role}，{o.unit_name}（{o.unit}）" + (f"，操作系统账户 {o.os_user}" if o.os_user else ""))


@user.command("list")
@format_option()
@command
def user_list(env, fmt) -> None:
    """List officials.

    Example:

        anjian user list --format json
    """
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import officials as users

    rows = users.listing(env.database())
    headers = ["姓名", "角色", "单位代码", "单位", "操作系统账户", "在用"]
    table = [[o.name, o.role, o.unit, o.unit_name, o.os_user, o.active] for o in rows]
    emit(fmt, lambda: render.table(headers, table), rows, lambda: render.as_csv(headers, table))


@user.command("disable")
@click.argument("name")
@command
def user_disable(env, name) -> None:
    """Disable an official: they can no longer act (their history stays).

    Example:

        anjian user disable 王站长
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.set_active(env.database(), name, False, env.actor, now)
    click.echo(f"已停用 {o.name}")


@user.command("enable")
@click.argument("name")
@command
def user_enable(env, name) -> None:
    """Enable a disabled official again.

    Example:

        anjian user enable 王站长
    """
    from anjian.workflow.services import officials as users

    now = env.write_now
    o = users.set_active(env.database(), name, True, env.actor, now)
    click.echo(f"已启用 {o.name}")
