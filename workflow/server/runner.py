"""One CLI command run by the service for a signed-in official: the request's parameters become the
command's arguments (checked by click exactly as on a terminal), the command body runs with the
service's database and clock and the request's official (`Env.call`), and what it prints, its exit
code and the files it wrote come back as an Outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import click

from anjian.workflow.cli.remote_files import api_name  # noqa: F401 - the API's names, one rule both sides use
from anjian.workflow.engine.authz import Actor
from anjian.workflow.settings import Settings

# Global options a remote command may not give: the service owns the database, and the official is
# the one the request signed in as (there is no --as with a server).
FORBIDDEN_GLOBALS = {"db": "--db", "as_user": "--as", "as": "--as"}


# Commands that only read: the ones a GET may run (a write is a POST, which a browser's session must
# send with its CSRF token; a GET is never a change, whatever a link or an image tag makes a browser do).
READS = frozenset({"status", "units", "show", "history", "audit verify", "contact list", "notices", "deadlines",
                   "user list", "token list", "report progress", "report dossier", "assessment", "diagram"})


# The contract's exit codes as HTTP statuses: the API's answers and the pages' refusals alike.
HTTP_STATUS = {0: 200, 1: 500, 2: 400, 3: 409, 4: 403, 5: 409, 6: 409}


def reads_only(path: list[str]) -> bool:
    return " ".join(path) in READS


@dataclass(frozen=True)
class Call:
    """What `Env` takes from the service instead of the command line (see cli/common.Env)."""

    settings: Settings
    db: object  # store.db.Database, shared by every request
    actor: Actor
    drill: bool | None = None  # whether the database is a drill, known once for the service (None: ask it)

    def settings_for(self, now_text: str | None) -> Settings:
        """The service's settings at this request: the real clock, or a time given to read as of
        (a write refuses it, as on a live database in embedded mode)."""
        from anjian.workflow.clock import parse_time

        if now_text is None:
            return dataclasses.replace(self.settings, now=dt.datetime.now(dt.UTC), now_given=False, now_source=None,
                                       as_user=None)
        return dataclasses.replace(self.settings, now=parse_time(now_text, "--now"), now_given=True,
                                   now_source="--now", as_user=None)


@dataclass
class Outcome:
    exit: int
    stdout: str
    stderr: str
    failure: tuple[int, str, list[str]] | None = None  # (exit code, message, details) of a refusal
    files: list[Path] = field(default_factory=list)


def find(path: list[str]) -> tuple[click.Command, list[str]] | None:
    """The command at `path` (e.g. ["contact", "add"]) and its full name, or None."""
    from anjian.workflow.cli import cli

    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="anjian")
    for part in path:
        if not isinstance(cmd, click.Group):
            return None
        sub = cmd.get_command(ctx, part)
        if sub is None:
            return None
        cmd = sub
    if isinstance(cmd, click.Group) and not cmd.invoke_without_command:
        return None
    return cmd, path


def run(path: list[str], argv: list[str], call: Call, *, lang: str = "zh", columns: int | None = None,
        workspace=None) -> Outcome:
    """Run `anjian PATH ARGV…` as the service, in this thread; never raises for what a command says.
    With a `workspace` (server/files), the command reads evidence only from its uploads, recorded under
    the client's paths, and what it prints names the client's paths rather than the workspace's."""
    from anjian.i18n import language
    from anjian.workflow.cli import cli
    from anjian.workflow.cli.common import FAILURE
    from anjian.workflow.formats.output import CLIENT_COLUMNS
    from anjian.workflow.server.capture import captured
    from anjian.workflow.store.evidence import UPLOADED

    FAILURE.set(None)
    width = CLIENT_COLUMNS.set(columns)
    uploaded = UPLOADED.set(dict(workspace.recorded) if workspace is not None else {})
    show = workspace.show if workspace is not None else (lambda text: text)
    try:
        with language(lang), captured() as out:
            try:
                cli.main(args=[*path, *argv], prog_name="anjian", standalone_mode=True, obj={"call": call})
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            failure = FAILURE.get()
            if failure is not None:
                failure = (failure[0], show(failure[1]), [show(d) for d in failure[2]])
            return Outcome(code, show(out.text(out.stdout)), show(out.text(out.stderr)), failure)
    finally:
        UPLOADED.reset(uploaded)
        CLIENT_COLUMNS.reset(width)


def api_params(cmd: click.Command) -> list[click.Parameter]:
    """The parameters a remote caller may give (not --help, --db, --as; --now is `now`, --campaign `campaign`)."""
    return [p for p in cmd.params if p.name not in ("help", "db", "as_user") and p.expose_value is not False
            or p.name in ("now", "campaign")]


def argv_of(cmd: click.Command, params: dict) -> list[str]:
    """The command line that gives `params` (API names) to `cmd`; click then checks it as on a terminal.
    A name the command does not take, or a global option the service forbids, is bad input."""
    from anjian.i18n import _
    from anjian.workflow.errors import BadInput

    by_name = {api_name(p): p for p in api_params(cmd)}
    for key in params:
        if key in FORBIDDEN_GLOBALS:
            raise BadInput(_("{flag} is not used with a server: the service owns the database, and you act as the "
                             "official you signed in as").format(flag=FORBIDDEN_GLOBALS[key]))
        if key not in by_name:
            raise BadInput(_("unknown parameter {name!r}; this command takes: {names}").format(
                name=key, names=", ".join(sorted(by_name))))
    options: list[str] = []
    arguments: list[str] = []
    for name, p in by_name.items():
        if name not in params or params[name] is None:
            continue
        value = params[name]
        values = value if isinstance(value, list | tuple) else [value]
        if isinstance(p, click.Argument):
            arguments.extend(_text(v, name) for v in values)
            continue
        assert isinstance(p, click.Option)
        if p.is_flag:  # `--remove`, `--no-x`; or one of several flags with one destination (`--sent`)
            if not isinstance(value, bool):
                raise BadInput(_("{name}: give true or false").format(name=name))
            if value:
                options.append(p.opts[0])
            elif p.secondary_opts:
                options.append(p.secondary_opts[0])
            continue
        flag = [o for o in p.opts if o.startswith("--")][0]
        for v in values:
            options.extend([flag, _text(v, name)])
    return [*options, "--", *arguments] if arguments else options


def _text(value: object, name: str) -> str:
    from anjian.i18n import _
    from anjian.workflow.errors import BadInput

    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadInput(_("{name}: give text or a number").format(name=name))
    return str(value)
