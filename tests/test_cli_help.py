"""Every command and subcommand of `anjian`, found by walking the click tree (not from a list), answers
`--help` with exit 0 and shows an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from anjian.workflow.cli import cli


def walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command below `group`, depth first: ('init',), ('audit', 'verify'), …"""
    ctx = click.Context(group, info_name=" ".join(("anjian", *path)))
    found: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"`anjian {' '.join((*path, name))}` is listed but cannot be loaded"
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += walk(command, (*path, name))
    return found


PATHS = walk(cli)


def test_the_walk_reaches_subcommands():
    """The tree is walked below the top level (`audit verify`, `contact add`, `user add`, …)."""
    assert ("audit", "verify") in PATHS
    assert ("contact", "add") in PATHS
    assert len(PATHS) > len(cli.list_commands(click.Context(cli)))


@pytest.mark.parametrize("path", [(), *PATHS], ids=lambda p: " ".join(("anjian", *p)))
def test_help_exits_0_and_shows_an_example(path):
    """`anjian … --help` exits 0 and shows an Example."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`anjian {' '.join(path)} --help` shows no example"
