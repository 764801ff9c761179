"""`anjian campaign`: the campaigns a database runs side by side."""

from __future__ import annotations

import dataclasses

import click

from anjian.i18n import _
from anjian.workflow.cli.common import command, emit, format_option


@click.group()
def campaign() -> None:
    """The campaigns this database runs side by side.

    A database runs the campaign `init` loaded; `campaign add` runs another beside it (another city's,
    a follow-up round), on the units of its city. Every other command then works on the campaign named
    by --campaign ID (or ANJIAN_CAMPAIGN), and sees only its states, checklist, cohorts and notices.

    \b
    Example:
        anjian --db hebei.db init --registry 13
        anjian --db hebei.db campaign add zhangjiakou-2015
        anjian --db hebei.db --campaign zhangjiakou-2015 status
    """


@campaign.command("add")
@click.argument("file", metavar="ID|FILE.toml")
@command
def campaign_add(env, file) -> None:
    """Run another campaign beside those of the database: a built-in one or a campaign file.

    Its units are those of its city ([campaign] city) in the registry, each in its initial state. Running
    it again with the same file changes nothing; admins only.

    \b
    Example:
        anjian campaign add zhangjiakou-2015
        anjian campaign add 承德回头看-2017.toml
    """
    from anjian.workflow.services import campaigns

    now = env.write_now
    added = campaigns.add(env.database(), file, env.actor, now)
    click.echo(added.message)
    click.echo(_("Work on it with: anjian --campaign {id} status").format(id=added.campaign.id))


@campaign.command("list")
@format_option(("table", "json", "csv"))
@command
def campaign_list(env, fmt) -> None:
    """The campaigns of this database, the first (the one `init` loaded) first.

    \b
    Example:
        anjian campaign list --format json
    """
    show_campaigns(env, fmt)


def show_campaigns(env, fmt: str) -> None:
    """The campaigns of the database as a table, JSON or CSV (`campaign list`, `status --campaigns`)."""
    from anjian.workflow.clock import shown
    from anjian.workflow.formats import output as render
    from anjian.workflow.services import campaigns

    rows = campaigns.listing(env.database())
    headers = [_("No."), _("Campaign"), _("Title"), _("City"), _("Units"), _("Added")]
    table = [[c.no, c.id, c.title, c.city, c.units, shown(c.added_at)[:16] if c.added_at else "—"] for c in rows]
    emit(fmt, lambda: render.table(headers, table), {"campaigns": [dataclasses.asdict(c) for c in rows]},
         lambda: render.as_csv(headers, table))
