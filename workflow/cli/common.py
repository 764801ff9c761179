"""What every command shares: global options, the settings, the database, the acting official,
output formats, and the one table that turns domain errors into the contract's exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path, PurePath
from typing import Any

import click

from anjian.i18n import N_, _
from anjian.states.labels import use_campaign, words_in_use

FORMATS = ("table", "json", "csv")
EXPORTS = (*FORMATS, "xlsx")  # the views officials take into a spreadsheet
# The contract's exit codes, by error class name (resolved lazily so that --help imports nothing).
EXIT_CODES = {"BadInput": 2, "NotInitialized": 2, "Refused": 3, "NotPermitted": 4, "Conflict": 5, "AuditBroken": 6}


def _remember(name: str) -> Callable:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(dict)[name] = value
            ctx.find_root().ensure_object(dict)[name] = value
        return value

    return callback


def global_options(f: Callable, campaign: bool = True) -> Callable:
    """--db, --now, --as and --campaign, accepted before or after the subcommand (`init` has a
    --campaign of its own, the file to load: there the campaign to work on goes before it)."""
    if campaign:
        f = click.option("--campaign", metavar="ID", expose_value=False, callback=_remember("campaign"),
                         help="Work on this campaign of the database (env ANJIAN_CAMPAIGN); without it, on the "
                              "one init loaded.")(f)
    f = click.option("--as", "as_user", metavar="NAME", expose_value=False, callback=_remember("as_user"),
                     help="Act as this official (env ANJIAN_USER).")(f)
    f = click.option("--now", metavar="TIME", expose_value=False, callback=_remember("now"),
                     help="Read as of this time, ISO 8601; no offset means Asia/Shanghai (env ANJIAN_NOW). "
                          "A write refuses it unless the database is a drill (init --drill).")(f)
    f = click.option("--db", metavar="URL", expose_value=False, callback=_remember("db"),
                     help="SQLAlchemy URL or SQLite file (env ANJIAN_DB).")(f)
    return f


def format_option(choices: tuple[str, ...] = FORMATS) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True,
                        help="Output format.")


OUT_HELP = ("Write to FILE instead of the terminal (needed for xlsx; a CSV file starts with "
            "the BOM that makes Excel read its Chinese).")


def out_option(help: str = OUT_HELP) -> Callable:
    """The one `--out FILE` option; `write_file` is the one writer behind it."""
    return click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help=help)


class Env:
    """Settings, database and actor for one command, resolved once on first use.

    Run by the service (`anjian serve`), a command gets them from the request instead (`call` in the
    root context's object, see server/commands): the service's database and clock, and the official the
    request signed in as. The command body is the same in both modes."""

    def __init__(self, ctx: click.Context):
        self._opts = ctx.find_root().ensure_object(dict)
        self.call = self._opts.get("call")  # the service's request, or None in embedded mode
        self._settings = None
        self._db = None
        self._actor = None
        self._drill: bool | None = None
        self._current = False  # the schema was checked to be this anjian's
        self.marked = False  # the output already says 演练 (a table from `emit`, or a report's banner)
        self._scope = None  # the campaign chosen for this command (store.scope), given back when it ends
        self._words = words_in_use()  # the campaign whose words were in use before, in use again when it ends
        ctx.find_root().ensure_object(dict)["env"] = self

    @property
    def settings(self):
        if self._settings is None and self.call is not None:
            self._settings = self.call.settings_for(self._opts.get("now"))
        if self._settings is None:
            from anjian.workflow.settings import resolve

            o = self._opts
            self._settings = resolve(o.get("db"), o.get("now"), o.get("as_user"))
        return self._settings

    @property
    def now(self):
        return self.settings.now

    @property
    def now_given(self) -> bool:
        """Whether --now or ANJIAN_NOW set the time (rather than the real clock)."""
        return self.settings.now_given

    @property
    def on_drill(self) -> bool:
        """Whether this command opened a database and it is a drill (never opens one itself)."""
        return self._db is not None and self._current and self.drill

    @property
    def drill(self) -> bool:
        """Whether the database is a drill (`init --drill`): its writes may set their time, and all
        it prints says 演练. False for a database not initialized yet."""
        if self._drill is None and self.call is not None and self.call.drill is not None:
            self._drill = self.call.drill
        if self._drill is None:
            from anjian.workflow.services.registry import drill_of

            self._drill = bool(drill_of(self.database(initialized=False)))
        return self._drill

    @property
    def write_now(self):
        """The time a write is stamped with: the real clock. --now / ANJIAN_NOW are refused (exit 2,
        before any work) unless the database is a drill, and there only at or after the log's last row.
        Every command that writes takes its time from here, never from `now`."""
        return self.write_time()

    def write_time(self, drill: bool | None = None):
        """`write_now`; `init` gives `drill` (whether it was asked to make a drill), since its
        database may not exist yet."""
        from anjian.workflow.errors import BadInput

        s = self.settings
        if drill is None:
            self.database()  # an uninitialized database is refused as such first
        if not s.now_given:
            return s.now
        if not (drill or self.drill):
            raise BadInput(_("{source} is for reading only (as of a time); a live database stamps every write with the "
                             "system clock and takes no time from you. For a drill make a drill database: "
                             "anjian --db drill.db init --drill").format(source=s.now_source))
        last = self._last_audit_at()
        # to the second, as the times are shown (a row stamped within it is stamped at the last row's time)
        if last is not None and s.now < last.replace(microsecond=0):
            from anjian.workflow.clock import SHANGHAI

            raise BadInput(_("drill database: {source} {now} is before the time of the audit log's last row {last}; "
                             "a drill's time does not go back either (to drill from an earlier time, give it when making "
                             "the drill database: anjian --db drill.db --now 2014-12-15T09:00 init --drill)").format(
                source=s.now_source, now=f"{s.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}",
                last=f"{last.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}"))
        return s.now

    def _last_audit_at(self):
        from anjian.workflow.clock import from_utc_text
        from anjian.workflow.store.audit import last_at

        db = self.database(initialized=False)
        if db.current_revision() is None:
            return None
        with db.read() as session:
            text = last_at(session)
        return from_utc_text(text) if text else None

    @property
    def stamp(self):
        """The time of a row a command writes on its own account, read or write (a refused identity):
        the real clock, unless a drill's --now. Never raises."""
        import datetime as dt

        s = self.settings
        return s.now if not s.now_given or self.drill else dt.datetime.now(dt.UTC)

    @property
    def login(self) -> str:
        if self.call is not None:
            return self.call.actor.name
        from anjian.workflow.services.officials import os_login

        return os_login()

    @property
    def actor_name(self) -> str:
        """Who the command says is acting, unchecked: for views that only explain (e.g. `show`)."""
        return self.settings.as_user or self.login

    @property
    def actor(self):
        """The acting official, from the OS account (and --as for an admin); a refusal is audited."""
        if self._actor is None and self.call is not None:
            self._actor = self.call.actor
        if self._actor is None:
            from anjian.workflow.engine.authz import refusals_audited
            from anjian.workflow.services.officials import identify

            db = self.database()
            with refusals_audited(db, self.login, self.stamp, "identify"), db.read() as session:
                self._actor = identify(session, self.login, self.settings.as_user)
        return self._actor

    def release(self) -> None:
        """Forget the campaign chosen and the words loaded (a process running several commands: tests, service)."""
        use_campaign(self._words)
        if self._scope is not None:
            from anjian.workflow.store.scope import unchoose
            unchoose(self._scope)
            self._scope = None

    def database(self, initialized: bool = True):
        if self._db is None:
            from anjian.workflow.settings import environ
            from anjian.workflow.store import scope

            self._scope = scope.choose(self._opts.get("campaign") or (None if self.call else environ().get("ANJIAN_CAMPAIGN")))
        if self._db is None and self.call is not None:
            self._db, self._current = self.call.db, True  # the service checked its schema when it started
        if self._db is None:
            from anjian.workflow.store.db import Database

            s = self.settings
            self._db = Database(s.db_url, create=not initialized, group=s.file_group, busy_timeout=s.busy_timeout)
        if initialized and not self._current:
            require_current(self._db)
            self._current = True
        return self._db


def require_current(db) -> None:
    from anjian.workflow.errors import NotInitialized

    try:
        revision = db.current_revision()
    except Exception as exc:  # noqa: BLE001 - an unreachable server or unreadable file
        known = translate(exc, db.url)
        if known is not None:
            raise known from None
        raise NotInitialized(_("cannot open the database {url}: {error}").format(
            url=_place(db.url), error=f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}")) from None
    if revision is None:
        raise NotInitialized(_("the database {url} is empty: run `anjian init` first").format(url=_place(db.url)))
    from anjian.workflow.store.db import SCHEMA_HEAD

    if revision > SCHEMA_HEAD:
        raise NotInitialized(_("the database {url} has schema {revision}, newer than this anjian knows ({head}): "
                               "upgrade anjian").format(url=_place(db.url), revision=revision, head=SCHEMA_HEAD))
    if revision != SCHEMA_HEAD:
        raise NotInitialized(_("the database {url} has schema {revision}, this anjian needs {head}: "
                               "run `anjian init` to upgrade it").format(url=_place(db.url), revision=revision,
                                                                         head=SCHEMA_HEAD))


def command(f: Callable) -> Callable:
    """Wrap a command body: give it an Env, and turn domain errors into exit codes and messages."""

    @functools.wraps(f)
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        # not already run by the service, nor a group's own body before its subcommand (`notices settle`)
        if ctx.find_root().ensure_object(dict).get("call") is None and not ctx.invoked_subcommand:
            from anjian.workflow.cli import remote

            server = remote.configured()
            if server is not None and not remote.is_local(remote.command_path(ctx)):
                try:
                    remote.forward(ctx, server)  # runs it on the server, and exits as it did
                except remote.Refusal as exc:
                    fail(exc.message, exc.details, exc.code)
        env = Env(ctx)
        _refuse_undecodable({**ctx.find_root().ensure_object(dict), **kwargs})
        try:
            with _private_files(env):
                result = f(env, *args, **kwargs)
            if not env.marked and env.on_drill:  # a drill's every output says so (tables: `emit`)
                from anjian.workflow.services.registry import DRILL_BANNER

                click.echo(DRILL_BANNER, err=True)
            return result
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise  # click's own: shown by the root group in the official's language
        except Exception as exc:  # noqa: BLE001 - the one place errors meet the user
            if _exit_code(exc) is None:
                exc = translate(exc, _where(env)) or exc
            code = _exit_code(exc)
            if code is None:
                _unexpected(exc, env)
            fail(exc.message, exc.details, code)
        finally:
            env.release()

    return global_options(wrapper, campaign=f.__name__ != "init")


def _refuse_undecodable(values: dict[str, Any]) -> None:
    """Text typed in a terminal that is not UTF-8 (GBK, say) arrives as undecodable bytes, and a NUL byte
    is text no database stores the same (PostgreSQL refuses it, a path cannot hold it): refuse both
    here, naming the option, rather than let them reach the audit hash."""
    for name, value in values.items():
        for v in value if isinstance(value, tuple | list) else (value,):
            if isinstance(v, str | PurePath):
                flag = "--" + name.replace("_", "-") if name not in ("unit", "item", "value", "trigger", "cohort") \
                    else name.upper()
                if "\x00" in str(v):
                    fail(_("{flag}: the text holds a NUL byte (\\0), which cannot be used").format(flag=flag))
                try:
                    str(v).encode("utf-8")
                except UnicodeEncodeError:
                    fail(_("{flag}: the text is not UTF-8 (set the terminal to UTF-8, e.g. LANG=zh_CN.UTF-8)")
                         .format(flag=flag))


def _private_files(env: Env):
    """The umask that makes what this command creates private (see store/files). Settings that cannot
    be resolved are reported by the command itself, so they get the private umask here."""
    import contextlib

    from anjian.workflow.store.files import group_id, private_umask

    if env.call is not None:  # the service set its umask once when it started: no process-wide change per request
        return contextlib.nullcontext()
    try:
        group = env.settings.file_group
    except Exception:  # noqa: BLE001 - the command reports it
        group = None
    group_id(group)  # a group the system does not have is refused before anything is made
    return private_umask(group)


def _where(env: Env) -> str:
    try:
        return env.settings.db_url
    except Exception:  # noqa: BLE001 - the settings themselves failed
        return "?"


# What the database driver and the operating system say, by the words of their messages (SQLite's and
# PostgreSQL's are stable), and what an official is told: a domain error of exit 2, nothing written.
_LOCKED = ("database is locked", "lock timeout", "lock_timeout")
_READ_ONLY = ("readonly database", "read-only transaction", "read-only file system")
_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk quota exceeded")
_UNOPENABLE = ("unable to open database file",)
_NUL = ("nul (0x00)", "embedded null", "null character", "contain nul")


def translate(exc: BaseException, where: str):
    """The domain error (exit 2) for a database or file error this account can act on, else None."""
    import errno

    from anjian.workflow.errors import BadInput, DatabaseUnavailable, StorageFull

    place = _place(where)
    for cause in _chain(exc):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(_("the disk is full, cannot write {place}: nothing was written")
                               .format(place=cause.filename or place))
        if isinstance(cause, OSError) and cause.errno == errno.EROFS:
            return DatabaseUnavailable(_("the file system of {place} is read-only: nothing was written")
                                       .format(place=cause.filename or place))
        if type(cause).__module__.split(".")[0] not in ("sqlite3", "psycopg", "sqlalchemy", "builtins"):
            continue
        words = str(cause).lower()
        if any(w in words for w in _LOCKED):
            return DatabaseUnavailable(_("the database {place} is held by another writer and was not released before "
                                         "the timeout (ANJIAN_BUSY_TIMEOUT): try again later; nothing was written")
                                       .format(place=place))
        if any(w in words for w in _READ_ONLY):
            return DatabaseUnavailable(_("the database {place} is read-only for this account: nothing was written")
                                       .format(place=place))
        if any(w in words for w in _FULL):
            return StorageFull(_("the disk of the database {place} is full: nothing was written").format(place=place))
        if any(w in words for w in _UNOPENABLE):
            return DatabaseUnavailable(_("the database file {place} cannot be opened (this account has no permission, "
                                         "or its folder is not writable)").format(place=place))
        if any(w in words for w in _NUL):
            return BadInput(_("the text holds a NUL byte (\\0), which cannot be used: nothing was written"))
    return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if getattr(exc, "orig", None) is not None:
            yield exc.orig
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__


def _place(url: str) -> str:
    """The database as an official names it: the SQLite file, or the server and database without password."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that did not parse
        return url


def _exit_code(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls.__name__ in EXIT_CODES and cls.__module__.endswith("errors"):
            return EXIT_CODES[cls.__name__]
    return None


# How an error's first line starts, by exit code.
LABELS = {2: N_("Error"), 3: N_("Cannot do it"), 4: N_("Not permitted"), 5: N_("Conflict"), 6: N_("Audit check failed")}
SHOWN = 50  # the problems a terminal shows; a batch's whole list goes to a file or JSON


# The last refusal of this command, for the service to answer with as JSON (set by `fail`).
FAILURE: ContextVar[tuple[int, str, list[str]] | None] = ContextVar("anjian_failure", default=None)


def fail(message: str, details: list[str] | tuple[str, ...] = (), code: int = 2) -> None:
    FAILURE.set((code, message, list(details)))
    label = _(LABELS.get(code, LABELS[2]))
    click.echo(_("{label}: {message}").format(label=label, message=message), err=True)
    # One line past SHOWN is shown whole: the line saying it was left out would be no shorter.
    for d in details if len(details) <= SHOWN + 1 else details[:SHOWN]:
        click.echo(f"  - {d}", err=True)
    if len(details) > SHOWN + 1:
        click.echo("  - " + _("{count} more not listed").format(count=len(details) - SHOWN), err=True)
    sys.exit(code)


def _unexpected(exc: Exception, env: Env) -> None:
    import tempfile
    import traceback

    try:
        folder = env.settings.data_dir
        folder.mkdir(parents=True, exist_ok=True)
    except Exception:  # noqa: BLE001 - even the settings may be what failed
        from pathlib import Path

        folder = Path(tempfile.gettempdir())
    log = folder / "anjian-error.log"
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)) + "\n")
    click.echo(_("internal error (a bug): {error}\n  details were written to {log}").format(
        error=f"{exc.__class__.__name__}: {exc}", log=log), err=True)
    sys.exit(1)


Sheet = tuple[str, list[str], list[list[Any]]]  # title, headers, rows of typed cells (numbers stay numbers)


def emit(fmt: str, table_fn: Callable[[], str], data: Any, csv_fn: Callable[[], str] | None = None, *,
         sheet: Callable[[], Sheet] | None = None, out: Path | None = None) -> None:
    """Print a result in the chosen format, or write it to `out`. `sheet` gives what CSV and XLSX export.
    From a drill database a table starts with registry.DRILL_BANNER, and a workbook's title with 演练."""
    from anjian.workflow.formats import output as render

    env = click.get_current_context().find_root().ensure_object(dict).get("env")
    drill = env is not None and env.on_drill
    if drill:  # JSON and CSV stay data for programs (`status --format json` has "drill")
        env.marked = True

    if fmt == "xlsx":
        if out is None:
            fail(_("--format xlsx makes a binary file, not text for the terminal: name it with --out FILE "
                   "(e.g. --out progress.xlsx)"))
        from anjian.workflow.formats.xlsx import workbook

        title, headers, rows = sheet()
        write_file(out, workbook(_("drill {title}").format(title=title) if drill else title, headers, rows))
        return
    if fmt == "json":
        text = render.as_json(data)
    elif fmt == "csv" and sheet is not None:
        text = render.as_csv(*sheet()[1:])
    elif fmt == "csv" and csv_fn is not None:
        text = csv_fn()
    else:
        text = table_fn()
        if drill:
            from anjian.workflow.services.registry import DRILL_BANNER

            text = f"{DRILL_BANNER}\n{text}"
    if out is None:
        click.echo(text)
    else:
        # Excel reads a CSV without a BOM in the ANSI code page (GBK on a Chinese Windows): mojibake.
        write_file(out, (text + "\n").encode("utf-8-sig" if fmt == "csv" else "utf-8"))


def write_file(out: Path, content: bytes) -> None:
    """Write an export whole (a temporary file renamed over it), or exit 2 naming the file and why it
    cannot be written, leaving no part of it: a full disk would otherwise leave half a spreadsheet."""
    from anjian.workflow.store.files import replace_whole

    try:
        replace_whole(out, content)
    except OSError as exc:
        fail(_("--out {file}: cannot write this file: {reason}").format(file=out, reason=exc.strerror or exc))
    click.echo(_("written: {file}").format(file=out), err=True)

