"""Helpers shared by the tests (conftest.py holds only fixtures): the officials, the clock, a complete
checklist, what "nothing written" means, a database of its own, and the national registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

from anjian.workflow.clock import SHANGHAI, utc_text
from anjian.workflow.store.db import Database

T0 = dt.datetime(2014, 12, 15, 9, 0, tzinfo=SHANGHAI)
PG = os.environ.get("ANJIAN_TEST_PG")  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432

# Officials the tests act as (with `cli(..., user=NAME)`, i.e. `--as NAME` by this OS account, which
# the first init makes the admin). Permission tests add officials of narrower roles themselves.
TEST_OFFICIALS = {
    "tester": ("city_office", "130800"),
    "chief": ("city_office", "130800"),
    "office": ("city_office", "130800"),
    "city_office": ("city_office", "130800"),
    "inspector": ("city_inspector", "130800"),
    "city_inspector": ("city_inspector", "130800"),
    "chief_yuerya": ("township_chief", "130827102"),
    "zhao": ("city_office", "130800"),
    "zhang": ("city_office", "130800"),
    "wang": ("city_inspector", "130800"),
    "li": ("county_official", "130827"),
    "county_official": ("county_official", "130827"),
    "someone": ("city_office", "130800"),
}

COMPLETE = {
    "flag": "是",
    "text": "张三",
}


def at(text: str) -> dt.datetime:
    """A moment written as Shanghai wall-clock time (or with its own offset)."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def accept_township(db: Database, code: str, cohorts: frozenset[str], day: str) -> None:
    """A township's whole path within two weeks of `day` (Shanghai time): start, its checklist, apply
    seven days later, accepted by a city inspector seven days after that."""
    from anjian.workflow.services.advance import advance

    when = at(day)
    advance(db, code, "start", "chief", when)
    record_checklist(db, code, cohorts, actor="chief", now=when)
    advance(db, code, "apply", "chief", when + dt.timedelta(days=7))
    advance(db, code, "accept", "city_inspector", when + dt.timedelta(days=14), note="资料齐全，现场核查合格")


def add_officials(db: Database, officials: dict[str, tuple[str, str]]) -> None:
    """Register officials directly (a trusted caller), as an admin would with `anjian user add`: each with
    its `user_add` audit row, stamped no earlier than the log's last row (times never decrease)."""
    from sqlalchemy import func, select

    from anjian.workflow.clock import from_utc_text
    from anjian.workflow.store import audit
    from anjian.workflow.store.models import AuditRow, Official

    with db.write() as session:
        last = session.scalar(select(func.max(AuditRow.at)))
        now = max(from_utc_text(last), T0) if last else T0
        added = []
        for name, (role, unit) in officials.items():
            if session.get(Official, name) is None:
                session.add(Official(name=name, role=role, unit_code=unit, os_user=None, active=1,
                                     created_at=utc_text(now), created_by="admin"))
                added.append(audit.Entry(now, "admin", "user_add", None,  # no unit: out of the unit's history
                                         detail={"name": name, "role": role, "os_user": None, "unit": unit}))
        session.flush()
        audit.append(session, added)


def checklist_values(cohorts: frozenset[str] = frozenset(), villages: int = 12) -> dict[str, str]:
    """Values that make the township checklist complete for a township of these cohorts."""
    from anjian.states.campaign import builtin_text, load

    campaign = load(builtin_text("chengde-2014"))
    values: dict[str, str] = {}
    for item in campaign.items("township"):
        if not item.applies(cohorts):
            continue
        if item.kind == "count":
            need = item.requirement(cohorts)
            if item.id == "staff.villages":
                need = villages
            if item.minimum_of:
                need = max(need, int(values[item.minimum_of]))
            values[item.id] = str(need)
        else:
            values[item.id] = COMPLETE[item.kind]
    return values


def record_checklist(db: Database, unit: str, cohorts=frozenset(), skip: tuple[str, ...] = (), actor: str = "chief",
                     now: dt.datetime = T0) -> None:
    """Record a complete checklist for a township of these cohorts (leaving the items in `skip` out)."""
    from anjian.workflow.services.checklist import record

    for item, value in checklist_values(frozenset(cohorts)).items():
        if item not in skip:
            record(db, unit, item, value, actor, now)


def drop_audit_guards(db: Database) -> None:
    """Remove the triggers that make audit_log append-only, as the database's owner could: what is
    left to catch tampering then is the hash chain (and a checkpoint)."""
    from sqlalchemy import text

    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log"))


# -- what "nothing written" means -----------------------------------------------------------------
def snapshot(db: Database | str, *folders: Path) -> dict:
    """Every existing table's rows (as a count and a digest) and every file in the given folders: what a
    refused command must leave as it was. `db` is a Database or a URL (a store with no table gives {})."""
    from sqlalchemy import inspect, select, text

    from anjian.workflow.store.models import Base

    if isinstance(db, str):
        own = Database(db)
        try:
            return snapshot(own, *folders)
        finally:
            own.dispose()
    present = set(inspect(db.engine).get_table_names())
    state: dict = {}
    with db.read() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in present:
                rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
                state[table.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        for name in sorted(present - set(Base.metadata.tables)):  # alembic_version, and any stray table
            rows = sorted(map(tuple, s.execute(text(f'SELECT * FROM "{name}"')).all()))
            state[name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    for folder in folders:
        state[str(folder)] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []
    return state


def audit_count(db: Database) -> int:
    """The number of rows in the audit log."""
    from sqlalchemy import func, select

    from anjian.workflow.store.models import AuditRow

    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditRow))


# -- databases of their own -----------------------------------------------------------------------
@contextmanager
def new_database_url(folder: Path, template: str | None = None) -> Iterator[str]:
    """An empty database (an SQLite file in `folder`, or a new PostgreSQL database), dropped afterwards;
    for fixtures of a wider scope than one test. With `template` (the URL of a database no one is
    connected to) it starts as a copy of that one."""
    if not PG:
        url = f"sqlite:///{folder / 'anjian.db'}"
        if template:
            copy_sqlite(template, folder / "anjian.db")
        yield url
        return
    from benchmarks.pg import scratch_database

    with scratch_database(PG, template, prefix="anjian_test") as url:
        yield url


def copy_sqlite(url: str, target: Path) -> None:
    """Copy the SQLite database at `url` to the file `target` with SQLite's own backup (WAL included)."""
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()


@contextmanager
def clock_at(now: str | dt.datetime | None) -> Iterator[None]:
    """The system clock stopped at `now` (Shanghai wall-clock text, or an aware moment) while the block
    runs: how a test sets the time of a write, which a live database takes from the clock alone.
    None leaves the real clock."""
    if now is None:
        yield
        return
    import time_machine

    from anjian.workflow.clock import parse_time

    moment = now if isinstance(now, dt.datetime) else parse_time(now, "now")
    with time_machine.travel(moment, tick=False):
        yield


# `python -c CHILD_AT NOW ARGS…`: `anjian ARGS…` in a child process whose system clock is stopped at NOW
# (Shanghai wall-clock text): a write at a time of the test's choosing on a live database.
CHILD_AT = ("import sys, time_machine; from anjian.workflow.clock import parse_time; "
            "time_machine.travel(parse_time(sys.argv[1]), tick=False).start(); "
            "from anjian.workflow.cli import main; sys.argv = ['anjian', *sys.argv[2:]]; main()")


def run_on(url: str, home: Path, *args: str, now: str = "2014-12-15T09:00") -> Result:
    """`anjian --db URL ARGS…` as this OS account (the admin of that database), the clock at `now`."""
    from anjian.workflow.cli import cli as group

    env = {"ANJIAN_HOME": str(home), "ANJIAN_DB": None, "ANJIAN_NOW": None, "ANJIAN_USER": None}
    with clock_at(now):
        return CliRunner().invoke(group, ["--db", url, *args], env=env, catch_exceptions=False)


def campaign_runner(url: str, home: Path, user: str = "cd_office") -> Callable[..., Result]:
    """`run(campaign, *args, now=, user=, code=)`: `anjian --campaign CAMPAIGN --as USER ARGS…` on a
    database of several campaigns, asserting its exit code."""

    def run(campaign: str | None, *args: str, now: str, user: str | None = user, code: int = 0) -> Result:
        r = run_on(url, home, *(("--campaign", campaign) if campaign else ()), *(("--as", user) if user else ()),
                   *args, now=now)
        assert r.exit_code == code, (campaign, args, r.output)
        return r

    return run
