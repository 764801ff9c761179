"""Which command parameters name files, for the CLI as a client of `anjian serve`: one table both sides
read. An input file is uploaded by the client and the service reads only that upload; an output file is
written by the service in a private folder of the request and downloaded to the client's path; a
server-side path (a key, an outbox, a log) is refused with a server (exit 2)."""

from __future__ import annotations

import click

# (command path, API name of the parameter)
INPUTS = {
    ("designate", "file"), ("advance", "file"), ("advance", "evidence"), ("record", "file"), ("record", "evidence"),
    ("contact", "import", "file"), ("calendar", "load", "file"),
    ("audit", "verify", "checkpoint"), ("audit", "verify", "public_key"),
}
OUTPUTS = {
    ("status", "out"), ("units", "out"), ("report", "progress", "out"), ("report", "dossier", "out"),
    ("report", "circular", "out"), ("record", "errors"), ("advance", "errors"), ("record", "template"),
    ("deadlines", "ics"), ("audit", "checkpoint", "out"), ("diagram", "out"),
}
# (`daemon --log-file` too, but `daemon` runs on the server's machine only: cli/remote.LOCAL_ONLY)
SERVER_ONLY = {
    ("audit", "checkpoint", "key"), ("notices", "settle", "outbox"),
}
# `record --evidence ITEM=FILE`: the file is after the first "=" (or the whole value, the one-fact form)
PAIRED = {("record", "evidence")}


def kind(path: tuple[str, ...] | list[str], name: str) -> str | None:
    """"input", "output", "server" or None for the parameter `name` of the command at `path`."""
    key = (*path, name)
    if key in INPUTS:
        return "input"
    if key in OUTPUTS:
        return "output"
    if key in SERVER_ONLY:
        return "server"
    return None


def split_paired(value: str) -> tuple[str, str]:
    """`ITEM=FILE` → ("ITEM=", "FILE"); `FILE` → ("", "FILE")."""
    if "=" in value:
        item, _sep, file = value.partition("=")
        return item + "=", file
    return "", value


def api_name(param: click.Parameter) -> str:
    """A parameter's name in the API: an option's long flag without dashes (`--public-key` →
    `public_key`, `--format` → `format`), an argument's name."""
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        if longs:
            return longs[0][2:].replace("-", "_")
    return param.name or ""
