"""Several daemons on one PostgreSQL database run as peers: three real `anjian daemon` processes make
their start-up pass at the same moment against a real SMTP server on 127.0.0.1, and every due notice
reaches its recipient exactly once, stored once and sent once. On SQLite a second daemon is refused."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select, text
from support import PG
from test_channels import free_port
from test_daemon import ANJIAN, HANG_GUARD, PASS_DONE, Daemonized, daemon_env, initialized_sqlite

from anjian.workflow.clock import SHANGHAI
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.services.registry import initialize
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import AUDIT_LOCK_KEY, Database
from anjian.workflow.store.models import AuditRow, Contact, Notice, NoticeItem, Unit

pytestmark = pytest.mark.slow  # daemons as real processes

DAEMONS = 3
NOW = "2016-12-01T08:30"  # d-30 of full_coverage: every township has a rung due, every county overdue items
DUE_NOW = dt.datetime(2016, 12, 1, 8, 30, tzinfo=SHANGHAI)
SETUP_TIME = dt.datetime(2014, 12, 15, 9, 0, tzinfo=SHANGHAI)
STARTED = "anjian daemon 启动"
SENT_LINE = re.compile(r" 已发送 (\S+) → ")


class Inbox:
    """An aiosmtpd handler counting what it accepted per (recipient, X-Anjian-Notice)."""

    def __init__(self) -> None:
        self.received: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        notice = str(message_from_bytes(envelope.original_content or envelope.content)["X-Anjian-Notice"])
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received[(rcpt, notice)] += 1
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def everyone_a_contact(db: Database) -> None:
    """The Chengde registry, an e-mail contact at every township, county and the city office (bulk)."""
    initialize(db, None, None, SETUP_TIME, "admin", drill=True)  # a drill: the daemons start at ANJIAN_NOW
    with db.write() as session:
        codes = session.scalars(select(Unit.code).where(Unit.level.in_(("township", "county", "city")))).all()
        session.add_all(Contact(unit_code=c, name="安监", email=f"u{c}@example.gov.cn", webhook=None,
                                created_at="2014-12-15T01:00:00.000000Z") for c in codes)


def waiting_for_the_lock(url: str) -> int:
    """How many sessions wait for the advisory lock that serializes writers (AUDIT_LOCK_KEY)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                     "AND classid = :hi AND objid = :lo"),
                                {"hi": AUDIT_LOCK_KEY >> 32, "lo": AUDIT_LOCK_KEY & 0xFFFFFFFF}).scalar()
    finally:
        engine.dispose()


@pytest.mark.skipif(not PG, reason="peers need a PostgreSQL server: set ANJIAN_TEST_PG")
def test_three_daemons_on_postgresql_send_every_notice_exactly_once(fresh_db, db_url, tmp_path, smtp):
    """Three daemons held at the database's write lock are let go together: each makes its start-up pass
    at once, claiming chunks of 10; every due notice reaches its recipient once, is stored once and sent
    once, the notices were shared among the daemons, and the city moved through its stages once."""
    port, inbox = smtp
    everyone_a_contact(fresh_db)
    settings = NotifySettings(channel="smtp", smtp_host="127.0.0.1", smtp_port=port)
    due = {s.notice_id: s.recipient for s in run_pass(fresh_db, DUE_NOW, settings, tmp_path / "unused", dry_run=True).sent}
    assert len(due) > 200
    env = {**daemon_env(db_url, tmp_path, NOW), "ANJIAN_CHANNEL": "smtp", "ANJIAN_SMTP_HOST": "127.0.0.1",
           "ANJIAN_SMTP_PORT": str(port), "ANJIAN_SMTP_SECURITY": "none", "ANJIAN_REMIND_CHUNK": "10"}

    # Hold the writers' lock so that every daemon stops at its first write (moving the city), then let
    # all three go at the same instant.
    holder = fresh_db.engine.connect()
    holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    daemons = [Daemonized(env, tmp_path / f"daemon{i}.log") for i in range(DAEMONS)]
    try:
        for d in daemons:
            assert "可与其他 daemon 同时运行" in d.read_until(STARTED)
        give_up = time.monotonic() + HANG_GUARD
        while waiting_for_the_lock(db_url) < DAEMONS:
            assert time.monotonic() < give_up, "the daemons never all waited for the write lock"
            time.sleep(0.01)
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": AUDIT_LOCK_KEY})
        holder.commit()
        for d in daemons:
            d.read_until(PASS_DONE)
        for d in daemons:
            assert d.stop() == 0, d.text
    finally:
        holder.close()
        for d in daemons:
            d.kill()

    assert inbox.received == Counter({(rcpt, nid): 1 for nid, rcpt in due.items()})
    with fresh_db.read() as s:
        notices = s.execute(select(Notice.id, Notice.status, Notice.attempts, Notice.ambiguous, Notice.owner)).all()
        # one rung of the ladder per (recipient, unit, milestone), and one early warning (w-…)
        items = [(*item, rung.startswith("w-")) for *item, rung in s.execute(
            select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone, NoticeItem.rung))]
        moves = s.scalars(select(AuditRow.action).where(AuditRow.actor == "scheduler")).all()
    assert sorted(n.id for n in notices) == sorted(due)
    assert {(n.status, n.attempts, n.ambiguous) for n in notices} == {("sent", 1, 0)}
    assert len(items) == len(set(items))
    owners = Counter(n.owner for n in notices)
    assert len(owners) >= 2, f"one daemon sent everything: {owners}"
    logged = Counter(m.group(1) for d in daemons for m in SENT_LINE.finditer(d.text))
    assert logged == Counter(dict.fromkeys(due, 1))
    assert Counter(moves) == Counter({"begin_demonstration": 1, "begin_key_compliance": 1, "begin_full_coverage": 1})


def test_on_sqlite_a_second_daemon_is_still_refused(tmp_path):
    """Against one SQLite file the second `anjian daemon` exits non-zero at once saying one is running;
    the first runs on untouched."""
    url = initialized_sqlite(tmp_path)
    env = daemon_env(url, tmp_path, NOW)
    first = Daemonized(env, tmp_path / "daemon.log")
    try:
        said = first.read_until(PASS_DONE)
        assert "可与其他 daemon 同时运行" not in said
        later = {**env, "ANJIAN_NOW": "2016-12-01T09:30"}  # a drill's clock may not go back behind the first's rows
        second = subprocess.run([ANJIAN, "daemon"], env=later, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=HANG_GUARD)
        assert second.returncode == 5, second.stderr.decode()
        assert "已有 daemon 在使用" in second.stderr.decode()
        assert first.proc.poll() is None
        assert first.stop() == 0, first.text
    finally:
        first.kill()
    assert Path(url.removeprefix("sqlite:///") + ".daemon.lock").exists()
    assert os.path.getsize(url.removeprefix("sqlite:///") + ".daemon.lock") > 0
