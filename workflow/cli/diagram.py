"""`anjian diagram`: a machine as mermaid, dot or SVG, drawn from the definitions the engine runs."""

from __future__ import annotations

import click

from anjian.states.machines import SPECS
from anjian.workflow.cli.common import command, out_option, write_file


@click.command()
@click.argument("machine", type=click.Choice(tuple(SPECS)))
@click.option("--format", "fmt", type=click.Choice(("mermaid", "dot", "svg")), default="mermaid", show_default=True,
              help="mermaid stateDiagram-v2 text, Graphviz dot source, or SVG (needs Graphviz's `dot`).")
@out_option("Write to FILE (UTF-8) instead of the terminal.")
@command
def diagram(env, machine: str, fmt: str, out) -> None:
    """Draw the township, county or city machine: each state in Chinese with its id, each
    edge with its trigger and the guards that must hold (e.g. "apply for acceptance apply [checklist_complete]").

    Example:

    \b
        anjian diagram township --format svg --out 乡镇.svg
        anjian diagram county --format mermaid
    """
    from anjian.states.labels import campaign_words
    from anjian.workflow.reports import diagram as diagrams

    with campaign_words(_in_force(env)):
        text = diagrams.render(machine, fmt)
    if out is None:
        click.echo(text.rstrip("\n"))
    else:
        write_file(out, text.encode("utf-8"))


def _in_force(env):
    """The machines of the campaign the database runs (the one `--campaign` chooses), where a database has
    been set up; else the built-in campaign's."""
    from anjian.states.labels import current_campaign
    from anjian.workflow.errors import DatabaseUnavailable, NotInitialized
    from anjian.workflow.services.registry import campaign_in_force

    try:
        db = env.database()  # an existing database only: drawing a machine creates none
        with db.read() as session:
            return campaign_in_force(session)
    except (NotInitialized, DatabaseUnavailable):  # none yet (no file, or an empty one): the built-in campaign's
        return current_campaign()
