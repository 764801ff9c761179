"""The database: engines tuned per dialect, read and write transactions, and migrations.

SQLite runs in WAL mode with foreign keys and a busy timeout; a write transaction starts with
BEGIN IMMEDIATE, so two writers queue for the lock instead of deadlocking into "database is locked".
On PostgreSQL a write transaction takes one advisory lock, which serializes appends to the audit chain.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.workflow.errors import BadInput, DatabaseUnavailable
from anjian.workflow.store import scope as _scope  # noqa: F401  (confines every session to its campaign)
from anjian.workflow.store.files import create_file, make_folders

MIGRATIONS = Path(__file__).parent / "migrations"
AUDIT_LOCK_KEY = 0x616E6A69  # "anji": the advisory lock that serializes writers on PostgreSQL
BUSY_TIMEOUT_MS = 60_000


class Database:
    """One database, by URL. `read()` and `write()` hand out sessions inside a transaction. A missing
    SQLite file is created only with `create`; `busy_timeout` is how long (seconds) a writer waits."""

    def __init__(self, url: str, *, create: bool = True, group: str | None = None,
                 busy_timeout: float = BUSY_TIMEOUT_MS / 1000):
        self.url = url
        self.engine = make_engine(url, create=create, group=group, busy_timeout=busy_timeout)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(anjian_write=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and leaves nothing behind on any error."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            if self.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            yield session

    def upgrade(self) -> list[str]:
        """Bring the schema to the newest migration; return the revisions applied."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(cfg)
        with self._writer.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            conn.rollback()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        head = script.get_current_head()
        if before == head:
            return []
        return [r.revision for r in script.iterate_revisions(head, before)][::-1]

    def current_revision(self) -> str | None:
        """The schema's migration, read straight from Alembic's table: importing Alembic to ask
        would cost every command a tenth of a second. None for a database never initialized."""
        from sqlalchemy.exc import DBAPIError

        with self.engine.connect() as conn:
            try:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            except DBAPIError as exc:
                if _no_such_table(exc):
                    return None
                raise
        return rows[0] if len(rows) == 1 else None

    def dispose(self) -> None:
        self.engine.dispose()


_REVISION = re.compile(r"^(down_revision|revision) = (?:None|[\"']([^\"']+)[\"'])", re.MULTILINE)


def schema_head() -> str:
    """The newest migration, read from the scripts' own `revision` and `down_revision` lines: the one
    revision no other script revises. Importing Alembic to ask would cost every command a tenth of a second."""
    revisions, revised = set(), set()
    for script in (MIGRATIONS / "versions").glob("[!_]*.py"):
        for key, value in _REVISION.findall(script.read_text("utf-8")):
            if value:
                (revisions if key == "revision" else revised).add(value)
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"the migrations in {MIGRATIONS} have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


SCHEMA_HEAD = schema_head()  # the newest migration; a test holds it equal to Alembic's head

IN_LIMIT = 900  # values in one IN (...): below SQLite's default limit of bound parameters


def pieces(session: Session, values: Sequence) -> list[Sequence]:
    """`values` in pieces for `among`: all at once on PostgreSQL, below SQLite's parameter limit elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return [values] if values else []
    return [values[i : i + IN_LIMIT] for i in range(0, len(values), IN_LIMIT)]


def among(session: Session, column, values: Sequence):
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter however many values (an
    IN list of 900 parameters costs more to bind than the statement costs to run)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import ARRAY, any_, bindparam

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _no_such_table(exc: Exception) -> bool:
    words = str(getattr(exc, "orig", exc)).lower()
    return "no such table" in words or "does not exist" in words


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (a path, or a `file:` URI's path), None for memory or another dialect."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1]
    if not path or ":memory:" in path or "mode=memory" in path:
        return None
    if path.startswith("file:"):
        path = path[len("file:"):].split("?", 1)[0]
        return Path(path) if path else None
    return Path(path)


def remove_new_file(url: str) -> None:
    """Remove the SQLite file of `url` and its -wal, -shm and -journal companions: what a failed first
    `init` leaves behind (an empty database is not left for the next command to find)."""
    path = sqlite_file(url)
    if path is None:
        return
    for end in ("", "-wal", "-shm", "-journal"):
        try:
            Path(f"{path}{end}").unlink()
        except FileNotFoundError:
            pass
        except OSError:  # noqa: PERF203 - nothing more to do: the error of the command is what matters
            pass


def make_engine(url: str, *, create: bool = True, group: str | None = None,
                busy_timeout: float = BUSY_TIMEOUT_MS / 1000) -> Engine:
    """An engine for `url`. An SQLite file that does not exist is created (private, see store/files)
    only when `create` is true; a file this account may read but not write is opened read-only."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        creator = None
        if path and ":memory:" not in path and not path.startswith("file:"):
            creator = _open_sqlite_file(Path(path), create, group, busy_timeout)
        elif not create and (file := sqlite_file(url)) is not None and not file.exists():
            # a `file:` URI is opened by SQLite itself, which would create the file: refuse it here
            raise DatabaseUnavailable(_("the database file {path} does not exist: run `anjian init` first").format(path=file))
        args = {"creator": creator} if creator else {}
        engine = create_engine(url, connect_args={"timeout": busy_timeout}, **args)
        event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_ms=int(busy_timeout * 1000),
                                                          read_only=creator is not None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # noqa: BLE001 - unknown driver or malformed URL: the user's input
        raise BadInput(f"cannot use database URL {url!r}: {exc}") from None


def _open_sqlite_file(path: Path, create: bool, group: str | None, busy_timeout: float):
    """Make sure the database file is there (creating it only if asked) and return None, or, for an
    account that may read the file but not write it, a function opening it read-only.

    Such an account would otherwise leave a -wal and a -shm file of its own beside the database (SQLite
    creates them for every reader of a WAL database, `mode=ro` or not), which the database's owner
    then cannot write. Opened with `mode=ro` while the owner's files are there, SQLite (>= 3.22) reads
    through them without writing or creating anything; when they are not there it would create them,
    so this account is refused instead."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not create:
            raise DatabaseUnavailable(_("the database file {path} does not exist: run `anjian init` first").format(
                path=path)) from None
        try:
            make_folders(path.parent, group)
            create_file(path, group)
        except OSError as exc:
            raise DatabaseUnavailable(_("cannot create the database file {path}: {why}").format(
                path=path, why=exc.strerror)) from None
        return None
    except OSError as exc:
        raise DatabaseUnavailable(_("cannot reach the database file {path}: {why}").format(path=path, why=exc.strerror)) from None
    if stat.S_ISDIR(mode):
        raise DatabaseUnavailable(_("the database file {path} is a folder, not a file").format(path=path))
    if not os.access(path, os.R_OK):
        raise DatabaseUnavailable(_("this account may not read the database file {path}: permission denied").format(path=path))
    if os.access(path, os.W_OK):
        return None
    if sqlite3.sqlite_version_info < (3, 22):
        raise DatabaseUnavailable(_("this account may only read the database file {path}; reading it needs SQLite 3.22 "
                                    "or later, this is {version}").format(path=path, version=sqlite3.sqlite_version))
    if _in_wal_mode(path) and not all(Path(f"{path}{end}").exists() for end in ("-wal", "-shm")):
        raise DatabaseUnavailable(_(
            "this account may only read the database file {path}, and no account that may write it has it open now "
            "({name}-wal, {name}-shm are not there): reading it now would leave -wal and -shm files owned by this "
            "account, after which the admin could no longer write it, so it is not read. Run this as an account that "
            "may write it, or try again while its anjian runs (such as anjian daemon)").format(path=path, name=path.name))
    uri = f"file:{quote(str(path))}?mode=ro"
    return lambda: sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)


def _in_wal_mode(path: Path) -> bool:
    """Whether the file's header says WAL (its bytes 18 and 19 are 2), read without SQLite."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    return len(header) == 20 and header[18:20] == b"\x02\x02"


def _sqlite_connect(dbapi_conn, _record, busy_ms: int = BUSY_TIMEOUT_MS, read_only: bool = False) -> None:
    # Let SQLAlchemy's "begin" event start transactions, so that writers can say IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
    cur.execute("PRAGMA foreign_keys = ON")
    mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal" and not read_only:
        cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    # Checkpoint the write-ahead log every 50,000 pages, not 1,000: a reminder pass over the whole country
    # writes ~200 MB of notices, and checkpointing every 4 MB cost it 0.7 s. Readers are not affected.
    cur.execute("PRAGMA wal_autocheckpoint = 50000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("anjian_write") else "BEGIN")
