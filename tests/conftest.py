"""Shared fixtures: a real database per test (an SQLite file, or a fresh PostgreSQL database when
ANJIAN_TEST_PG names a server), the Chengde registry loaded, a CLI runner, checklist factories, and the
national registry loaded once a session. The helpers live in support.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result
from support import (
    PG,
    T0,
    TEST_OFFICIALS,
    accept_township,
    add_officials,
    clock_at,
    new_database_url,
    record_checklist,
    run_on,
)

from anjian.workflow.store.db import Database

# The default language, whatever the machine's locale: tests that read English ask for it themselves.
os.environ["ANJIAN_LANG"] = "zh"
os.environ.pop("COLUMNS", None)  # tables fit the terminal; tests read them uncut, as in a pipe
# No test is sent to a server the developer signed in to (`anjian login`): the tests that use a client
# configuration name their own.
for _name in ("ANJIAN_SERVER", "ANJIAN_TOKEN"):
    os.environ.pop(_name, None)
os.environ["ANJIAN_CLIENT_CONFIG"] = str(Path(os.devnull).parent / "nonexistent-anjian-client" / "client.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the national registry is slow: loading it takes most of a minute."""
    for item in items:
        if "national_template" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _campaign_words_restored() -> Iterator[None]:
    """A test that calls a service directly loads its campaign's words for the rest of the thread (as a
    command does until it ends, `Env.release`): give the words in use before back after each test."""
    from anjian.states.labels import use_campaign, words_in_use

    before = words_in_use()
    yield
    use_campaign(before)


@pytest.fixture
def db_url(tmp_path) -> Iterator[str]:
    """The URL of an empty database that exists only for this test."""
    with new_database_url(tmp_path) as url:
        yield url


@pytest.fixture
def fresh_db(db_url) -> Iterator[Database]:
    """A Database on an empty, uninitialized store."""
    db = Database(db_url)
    yield db
    db.dispose()


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
    """Run `anjian ARGS…` against this test's database; returns click's Result (exit_code, output).
    `now` is the system clock while it runs (time-machine, not --now: a write with --now is refused
    on a live database); now=None leaves the real clock."""
    from anjian.workflow.cli import cli as group

    monkeypatch.setenv("ANJIAN_DB", db_url)
    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANJIAN_NOW", raising=False)
    monkeypatch.delenv("ANJIAN_USER", raising=False)

    def run(*args: str, now: str | None = "2014-12-15T09:00", user: str | None = "tester", input: str | None = None) -> Result:
        extra = ["--as", user] if user else []
        with clock_at(now):
            return CliRunner().invoke(group, [*extra, *args], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def busy_kuancheng(chengde, cli) -> Database:
    """The early warning's campaign (预警): 宽城 accepts its provincial township 峪耳崖镇 and seven others, one
    a week from January to March 2015 (the last on 2015-03-09); no other county starts anything. In
    mid-March 宽城 is on pace and 承德县, whose provincial township never started, is warned."""
    import datetime as dt
    import json

    units = json.loads(cli("units", "--county", "130827", "--level", "township", "--format", "json").stdout)
    others = [u["code"] for u in units if u["code"] != "130827102"][:7]
    accept_township(chengde, "130827102", frozenset({"provincial_demo"}), "2015-01-05T09:00")
    for i, code in enumerate(others):
        accept_township(chengde, code, frozenset(), f"{dt.date(2015, 1, 12) + dt.timedelta(weeks=i)}T09:00")
    return chengde


@pytest.fixture
def fill_checklist() -> Callable[..., None]:
    """A factory: record a complete checklist for a township (optionally leaving some items out)."""
    return record_checklist


# -- the national registry (44,700 units): loaded once a session, then copied -------------------------
@pytest.fixture(scope="session")
def national_template(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The national registry shipped with anjian, loaded once with `anjian init --registry china` into a
    database no one stays connected to, so that it can be copied (a file copy, or CREATE DATABASE … TEMPLATE)."""
    home = tmp_path_factory.mktemp("national")
    with new_database_url(home) as url:
        r = run_on(url, home, "init", "--registry", "china")
        assert r.exit_code == 0, r.output
        if PG:
            _disconnect_everyone(url)
        yield SimpleNamespace(url=url, home=home)


def _disconnect_everyone(url: str) -> None:
    """End every session on the PostgreSQL database at `url` (a template must have none)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                     {"name": url.rsplit("/", 1)[1]})
    admin.dispose()


def _copy_of(template: SimpleNamespace, folder: Path) -> Iterator[SimpleNamespace]:
    with new_database_url(folder, template=template.url) as url:
        db = Database(url)
        try:
            yield SimpleNamespace(url=url, home=template.home, db=db,
                                  run=lambda *args, now="2014-12-15T09:00": run_on(url, template.home, *args, now=now))
        finally:
            db.dispose()


@pytest.fixture(scope="session")
def national_registry(national_template, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The national registry shared by every test that only reads it: url, home, db and run(*args, now=)."""
    yield from _copy_of(national_template, tmp_path_factory.mktemp("national-shared"))


@pytest.fixture
def national_registry_copy(national_template, tmp_path) -> Iterator[SimpleNamespace]:
    """A copy of the national registry of this test's own, for a test that changes it."""
    folder = tmp_path / "national"
    folder.mkdir()
    yield from _copy_of(national_template, folder)


@pytest.fixture
def served(chengde, db_url, tmp_path):
    """`anjian serve` on loopback over the Chengde database (the officials of TEST_OFFICIALS, tokens on
    demand with `served.token(name)`)."""
    from support_server import serving

    from anjian.workflow.settings import resolve

    settings = resolve(db_url, env={"ANJIAN_HOME": str(tmp_path / "home")})
    with serving(chengde, settings) as s:
        yield s


@pytest.fixture
def remote(served, tmp_path, monkeypatch) -> Callable[..., Result]:
    """Run `anjian ARGS…` as a client of `served` (ANJIAN_SERVER and the official's token; no ANJIAN_DB),
    in a folder of the test's own (the client's working directory); returns click's Result."""
    from anjian.workflow.cli import cli as group

    folder = tmp_path / "client"
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("ANJIAN_CLIENT_CONFIG", str(tmp_path / "client-home" / "client.json"))
    for name in ("ANJIAN_DB", "ANJIAN_NOW", "ANJIAN_USER"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, official: str = "tester", now: str | None = "2014-12-15T09:00",
            input: str | None = None) -> Result:
        env = {"ANJIAN_SERVER": served.url, "ANJIAN_TOKEN": served.token(official)}
        with clock_at(now):
            return CliRunner().invoke(group, list(args), input=input, env=env, catch_exceptions=False)

    run.served = served  # type: ignore[attr-defined]
    run.folder = folder  # type: ignore[attr-defined]
    return run
