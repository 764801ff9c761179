"""`anjian serve`: the service in one process — uvicorn over the application, the reminder scheduler of
`anjian daemon` beside it (unless --no-scheduler), private files, JSON logs, a graceful SIGTERM; and
`--check`, the checklist an operator runs before starting it."""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

import click

from anjian.i18n import _
from anjian.workflow.cli.common import command, fail


@click.command()
@click.option("--host", metavar="HOST", help="Listen on this address (default 127.0.0.1; [service] host).")
@click.option("--port", type=int, metavar="PORT", help="Listen on this port (default 8130; [service] port).")
@click.option("--no-scheduler", is_flag=True, help="Do not run the reminder scheduler in this process.")
@click.option("--check", is_flag=True, help="Check the setup (configuration, database, keys, permissions) and exit.")
@click.option("--ssl-certfile", metavar="FILE", help="Serve HTTPS with this certificate (PEM).")
@click.option("--ssl-keyfile", metavar="FILE", help="The private key of --ssl-certfile (PEM).")
@click.option("--log-file", metavar="FILE", help="Also append the JSON log to this file.")
@command
def serve(env, host, port, no_scheduler, check, ssl_certfile, ssl_keyfile, log_file) -> None:
    """Run the service: the API (/api/v1), sign-in and health on HTTP(S), and the reminder scheduler
    in the same process. Officials sign in with a password or a token; the service stamps every write
    with the system clock. SIGTERM finishes the requests in flight and exits 0. Several processes on one
    PostgreSQL database run as peers.

    \b
    Example:
        anjian serve --check
        anjian serve --host 0.0.0.0 --port 8130
    """
    from anjian.workflow.server.config import service_config

    settings = env.settings
    if settings.now_given:
        fail(_("{source} is not used with anjian serve: the service stamps every write with the system clock").format(
            source=settings.now_source))
    if settings.as_user:
        fail(_("--as (ANJIAN_USER) is not used with anjian serve: officials sign in to the service"))
    given = {"host": host, "port": port, "ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile,
             "scheduler": False if no_scheduler else None}
    if check:
        from anjian.workflow.errors import BadInput
        from anjian.workflow.server.config import ServiceConfig

        try:
            config, problem = service_config(settings, **given), None
        except BadInput as exc:
            config, problem = ServiceConfig(), exc.message
        sys.exit(0 if run_checks(env, settings, config, problem) else 2)
    config = service_config(settings, **given)
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        fail(_("--ssl-certfile and --ssl-keyfile go together ([service] ssl_certfile, ssl_keyfile)"))
    group = settings.file_group
    os.umask(0o007 if group else 0o077)
    db = env.database()  # never creates: an empty or old database is refused (run anjian init)
    make_private(settings, db)
    _run(settings, db, config, log_file)


def _run(settings, db, config, log_file: str | None) -> None:
    import uvicorn

    from anjian.workflow.reminders.daemon import Daemon, clock_from
    from anjian.workflow.server import capture, ops
    from anjian.workflow.server.app import ServiceState, create_app
    from anjian.workflow.server.observe import log_config
    from anjian.workflow.settings import notify_settings

    capture.install()
    state = ServiceState(settings, db, config)
    app = create_app(state)
    metrics = ops.metrics_of(app)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            import anyio.to_thread

            # commands run in worker threads: at most [service] workers_threads at once
            anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, config.workers_threads)
            await super().startup(sockets=sockets)
            state.ready = not self.should_exit

        def handle_exit(self, sig, frame) -> None:
            state.ready = False
            state.stopping = True
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(
        app, host=config.host, port=config.port, lifespan="off", log_config=log_config(log_file=log_file),
        timeout_graceful_shutdown=30, ssl_certfile=config.ssl_certfile, ssl_keyfile=config.ssl_keyfile,
        proxy_headers=False, server_header=False, limit_concurrency=None))
    scheduler = None
    if config.scheduler:
        scheduler = Daemon(db, notify_settings(settings.data_dir, settings.env), settings.outbox, clock_from(None),
                           on_pass=metrics.reminder_pass)
    # Before uvicorn takes the signals (while the scheduler starts) a SIGTERM asks the server to stop at
    # once; uvicorn raises the signal again once it has stopped, and this handler then lets the process
    # end as asked, with 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: setattr(server, "should_exit", True))
    try:
        if scheduler is not None:
            scheduler.start_background()
        server.run()
    finally:
        if scheduler is not None:
            scheduler.stop()
        db.dispose()
    if not server.started:
        sys.exit(1)  # uvicorn said why (the port taken, a bad certificate)


def _private_mode(group: str | None) -> tuple[int, int]:
    from anjian.workflow.store.files import file_mode, folder_mode

    return file_mode(group), folder_mode(group) & 0o777


def make_private(settings, db) -> None:
    """The SQLite file (and its -wal, -shm) read and written by the service's account alone (or its group),
    its folder likewise."""
    from anjian.workflow.store.db import sqlite_file

    file = sqlite_file(db.url)
    if file is None:
        return
    mode, folder = _private_mode(settings.file_group)
    for f in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        if f.exists():
            os.chmod(f, mode)
    if file.parent.exists():
        os.chmod(file.parent, folder | (stat.S_ISGID if settings.file_group else 0))


def run_checks(env, settings, config, problem: str | None = None) -> bool:
    """Print the checklist (✓/✗ per line); True when every line passes. `problem`: what is wrong with
    the [service] settings (the rest is then checked with the defaults)."""
    results: list[tuple[bool, str]] = []
    mode, folder_mode = _private_mode(settings.file_group)
    if problem is not None:
        results.append((False, problem))
    else:
        results.append((True, _("configuration: listening on {host}:{port}{tls}, scheduler {scheduler}").format(
            host=config.host, port=config.port, tls=" (HTTPS)" if config.ssl_certfile else "",
            scheduler=_("on") if config.scheduler else _("off"))))
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        results.append((False, _("--ssl-certfile and --ssl-keyfile go together ([service] ssl_certfile, ssl_keyfile)")))
    for given in (config.ssl_certfile, config.ssl_keyfile):
        if given and not Path(given).is_file():
            results.append((False, _("TLS file {path} does not exist").format(path=given)))
    if config.ssl_keyfile and Path(config.ssl_keyfile).is_file():
        results.append(_private(Path(config.ssl_keyfile), mode, _("TLS private key {path}")))
    from anjian.workflow.cli.common import require_current
    from anjian.workflow.store.db import Database, sqlite_file

    file = sqlite_file(settings.db_url)
    if file is not None and not file.exists():
        results.append((False, _("database {path} does not exist: run `anjian init` first").format(path=file)))
    else:
        db = Database(settings.db_url, create=False, group=settings.file_group, busy_timeout=settings.busy_timeout)
        try:
            require_current(db)
            results.append((True, _("database reachable and its schema current")))
        except Exception as exc:  # noqa: BLE001 - the checklist names every failure
            results.append((False, str(getattr(exc, "message", exc))))
        finally:
            db.dispose()
        if file is not None:
            results.append(_private(file, mode, _("database file {path}")))
            results.append(_private(file.parent, folder_mode, _("data folder {path}")))
    key = settings.audit_key
    if key is None or not key.exists():
        results.append((False, _("audit signing key {path} is missing (anjian audit checkpoint makes it)").format(
            path=key)))
    else:
        results.append(_private(key, mode, _("audit signing key {path}")))
    outbox = settings.outbox
    probe = outbox if outbox.exists() else next((p for p in outbox.parents if p.exists()), outbox)
    if os.access(probe, os.W_OK | os.X_OK):
        results.append((True, _("outbox {path} writable").format(path=outbox)))
    else:
        results.append((False, _("outbox {path} is not writable by this account").format(path=outbox)))
    for ok, line in results:
        click.echo(("✓ " if ok else "✗ ") + line)
    passed = all(ok for ok, _line in results)
    click.echo(_("All checks passed.") if passed else _("Some checks failed: fix the lines marked ✗."))
    return passed


def _private(path: Path, mode: int, what: str) -> tuple[bool, str]:
    """Whether `path` allows nobody beyond its owner (and the group, where one is configured)."""
    name = what.format(path=path)
    try:
        actual = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return False, _("{what}: cannot read its mode: {error}").format(what=name, error=exc.strerror)
    if actual & ~mode & 0o777:
        return False, _("{what} has mode {actual:o}, readable beyond this account: chmod {mode:o} it").format(
            what=name, actual=actual, mode=mode)
    return True, _("{what} mode {actual:o}").format(what=name, actual=actual)
