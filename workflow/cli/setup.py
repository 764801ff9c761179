"""`anjian init`."""

from __future__ import annotations

import click

from anjian.i18n import _
from anjian.states.labels import LEVEL_NAMES
from anjian.workflow.cli.common import command


@click.command()
@click.option("--registry", metavar="chengde|china|NN|NNNN|FILE.csv",
              help="Units to load: chengde (the default: 承德市), china (the 44,700-unit national registry shipped "
              "with anjian), a province's two-digit code (13: Hebei) or a city's four (1307: Zhangjiakou), or a CSV file.")
@click.option("--campaign", metavar="chengde-2014|zhangjiakou-2015|chengde-2017-review|FILE.toml",
              help="Campaign to run: a built-in one (chengde-2014, the default; zhangjiakou-2015, an example of "
              "another city's; chengde-2017-review, of a follow-up with three stages and a county machine of its "
              "own) or a campaign file.")
@click.option("--drill", is_flag=True, help="Make a new database a drill (演练): a practice copy whose writes may "
              "set their time with --now, and whose every output says 演练. A live database never becomes one.")
@click.option("--cover", type=click.Choice(["registry", "city"]), default="registry", show_default=True,
              help="Which units the campaign covers: every unit of the registry, or only its city's (and the units "
              "above it), so that other cities' campaigns can run beside it (anjian campaign add).")
@command
def init(env, registry: str | None, campaign: str | None, drill: bool, cover: str) -> None:
    """Create or upgrade the database and load the registry and campaign.

    Running it again changes nothing and says so. A registry CSV has the columns
    code,name,level,parent_code (and optionally cohorts); a bad row anywhere loads nothing.

    \b
    Example:
        anjian init --registry chengde --campaign chengde-2014
        anjian --db hebei.db init --registry 13
        anjian --db 张家口.db init --registry 1307 --campaign zhangjiakou-2015
        anjian --db hebei.db init --registry 13 --cover city
        anjian --db 演练.db init --drill
    """
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services.registry import initialize
    from anjian.workflow.store.db import remove_new_file, sqlite_file

    now = env.write_time(drill)
    url = env.settings.db_url
    file = sqlite_file(url)
    fresh = file is not None and not file.exists()
    db = env.database(initialized=False)
    try:
        result = initialize(db, registry, campaign, now, Actor.system(env.login), login=env.login,
                            as_user=env.settings.as_user, drill=drill, cover=cover)
    except BaseException:
        if fresh:  # a first init that failed leaves no database for the next command to stumble on
            db.dispose()
            remove_new_file(url)
        raise
    for line in result.messages:
        click.echo(line)
    levels = _(", ").join(f"{LEVEL_NAMES.get(k, k)} {v}" for k, v in sorted(result.units.items()))
    click.echo(_("Database: {database} ({levels})").format(database=result.database, levels=levels))
