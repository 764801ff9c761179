"""Shared fixtures: a real database per test (an SQLite file, or a fresh PostgreSQL database when
ANJIAN_TEST_PG names a server), the Chengde registry loaded, a CLI runner, checklist factories."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from anjian.workflow.clock import SHANGHAI
from anjian.workflow.store.db import Database

T0 = dt.datetime(2014, 12, 15, 9, 0, tzinfo=SHANGHAI)
PG = os.environ.get("ANJIAN_TEST_PG")  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432


@pytest.fixture
def db_url(tmp_path) -> Iterator[str]:
    """The URL of an empty database that exists only for this test."""
    with new_database_url(tmp_path) as url:
        yield url


@contextmanager
def new_database_url(folder: Path) -> Iterator[str]:
    """An empty database (an SQLite file in `folder`, or a new PostgreSQL database), dropped afterwards;
    for fixtures of a wider scope than one test."""
    if not PG:
        yield f"sqlite:///{folder / 'anjian.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"anjian_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_db(db_url) -> Iterator[Database]:
    """A Database on an empty, uninitialized store."""
    db = Database(db_url)
    yield db
    db.dispose()


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


def add_officials(db: Database, officials: dict[str, tuple[str, str]]) -> None:
    """Register officials directly (a trusted caller), as an admin would with `anjian user add`."""
    from anjian.workflow.store.models import Official

    with db.write() as session:
        for name, (role, unit) in officials.items():
            if session.get(Official, name) is None:
                session.add(Official(name=name, role=role, unit_code=unit, os_user=None, active=1,
                                     created_at="2014-12-15T01:00:00.000000Z", created_by="admin"))


@pytest.fixture
def chengde(fresh_db) -> Database:
    """The built-in 承德市 registry and chengde-2014 campaign, loaded at T0; this OS account is the admin,
    and the officials in TEST_OFFICIALS exist."""
    from anjian.workflow.services.registry import initialize

    initialize(fresh_db, None, None, T0, "admin")
    add_officials(fresh_db, TEST_OFFICIALS)
    return fresh_db


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch) -> Callable[..., Result]:
    """Run `anjian ARGS…` against this test's database; returns click's Result (exit_code, output)."""
    from anjian.workflow.cli import cli as group

    monkeypatch.setenv("ANJIAN_DB", db_url)
    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANJIAN_NOW", raising=False)
    monkeypatch.delenv("ANJIAN_USER", raising=False)

    def run(*args: str, now: str | None = "2014-12-15T09:00", user: str | None = "tester", input: str | None = None) -> Result:
        extra = []
        if now:
            extra += ["--now", now]
        if user:
            extra += ["--as", user]
        return CliRunner().invoke(group, [*extra, *args], input=input, catch_exceptions=False)

    return run


COMPLETE = {
    "flag": "是",
    "text": "张三",
}


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


@pytest.fixture
def fill_checklist() -> Callable[..., None]:
    """A factory: record a complete checklist for a township (optionally leaving some items out)."""
    from anjian.workflow.services.checklist import record

    def fill(db: Database, unit: str, cohorts=frozenset(), skip: tuple[str, ...] = (), actor: str = "chief",
             now: dt.datetime = T0) -> None:
        for item, value in checklist_values(frozenset(cohorts)).items():
            if item not in skip:
                record(db, unit, item, value, actor, now)

    return fill


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
