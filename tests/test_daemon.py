"""`anjian daemon`: one tick with an injected clock in-process, and the real process — its start-up pass,
the one-daemon-per-database lock, and a clean stop on SIGTERM."""

from __future__ import annotations

import datetime as dt
import logging
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select
from support import T0

from anjian.workflow.clock import SHANGHAI
from anjian.workflow.errors import Conflict
from anjian.workflow.reminders.daemon import Daemon, SingleInstance, clock_from
from anjian.workflow.services import contacts
from anjian.workflow.services.registry import initialize
from anjian.workflow.services.stages import city_state
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Notice, NoticeItem

ANJIAN = str(Path(sys.executable).with_name("anjian"))
GAOSITAI = "130821106"  # 高寺台镇, a provincial demonstration township: d-30 of 2015-03-31 is 2015-02-28
CHENGDE_XIAN = "130821"
PASS_DONE = "提醒任务完成"  # the daemon's log line after each scheduled pass
HANG_GUARD = 60.0  # seconds before a silent daemon fails the test instead of hanging it


def shanghai(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def initialized_sqlite(tmp_path: Path) -> str:
    """The URL of an SQLite file holding the built-in registry (no daemon may ever have run on it): a
    drill, since the daemons started on it set their clock with ANJIAN_NOW."""
    url = f"sqlite:///{tmp_path / 'anjian.db'}"
    db = Database(url)
    initialize(db, None, None, T0, "admin", drill=True)
    db.dispose()
    return url


def with_contacts(db: Database) -> Database:
    """The built-in registry with a contact at 高寺台镇 and at 承德县: a drill, since the daemons started
    on it set their clock with ANJIAN_NOW."""
    initialize(db, None, None, T0, "admin", drill=True)
    contacts.add(db, GAOSITAI, "高寺台镇安监站", "gaositai@example.gov.cn", None, "admin", T0)
    contacts.add(db, CHENGDE_XIAN, "承德县安监局", "county@example.gov.cn", None, "admin", T0)
    return db


# -- Daemon.tick in-process ------------------------------------------------------------------------
def test_tick_moves_the_city_and_sends_the_day_s_notices(chengde, tmp_path, caplog):
    """A tick on make-up Saturday 2015-02-28 moves the city into its second stage and sends the d-30 reminders."""
    contacts.add(chengde, GAOSITAI, "高寺台镇安监站", "gaositai@example.gov.cn", None, "admin", T0)
    outbox = tmp_path / "outbox"
    daemon = Daemon(chengde, NotifySettings(), outbox, lambda: shanghai("2015-02-28T08:30"))
    with caplog.at_level(logging.INFO, logger="anjian.daemon"):
        daemon.tick()
    assert city_state(chengde) == "demonstration"
    with chengde.read() as s:
        items = list(s.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone, NoticeItem.rung)))
    assert [tuple(i) for i in items] == [("gaositai@example.gov.cn", GAOSITAI, "provincial_demo", "d-30")]
    assert len(list(outbox.glob("*.eml"))) == 1
    text = caplog.text
    assert "城市阶段：mobilization → demonstration" in text
    assert "已发送" in text and "gaositai@example.gov.cn" in text
    assert PASS_DONE in text


def test_tick_on_a_holiday_moves_the_city_but_sends_nothing(chengde, tmp_path, caplog):
    """On New Year's Day 2015 the stage changes (audited as `scheduler`) but no reminder goes out."""
    contacts.add(chengde, CHENGDE_XIAN, "承德县安监局", "county@example.gov.cn", None, "admin", T0)
    daemon = Daemon(chengde, NotifySettings(), tmp_path / "outbox", lambda: shanghai("2015-01-01T08:30"))
    with caplog.at_level(logging.INFO, logger="anjian.daemon"):
        daemon.tick()
    assert "2015-01-01 不是工作日" in caplog.text
    with chengde.read() as s:
        assert s.scalars(select(Notice)).all() == []
        rows = s.scalars(select(AuditRow).where(AuditRow.actor == "scheduler")).all()
    assert [(r.action, r.to_state) for r in rows] == [("begin_demonstration", "demonstration")]


def test_each_tick_reads_the_injected_clock(chengde, tmp_path):
    """Two ticks read the clock afresh: the second, a week later, sends the d-14 rung and not d-30 again."""
    contacts.add(chengde, GAOSITAI, "高寺台镇安监站", "gaositai@example.gov.cn", None, "admin", T0)
    times = iter([shanghai("2015-02-28T08:30"), shanghai("2015-03-17T08:30")])
    daemon = Daemon(chengde, NotifySettings(), tmp_path / "outbox", lambda: next(times))
    daemon.tick()
    daemon.tick()
    with chengde.read() as s:
        got = sorted(tuple(r) for r in s.execute(select(NoticeItem.rung_date, NoticeItem.rung)))
    assert got == [("2015-02-28", "d-30"), ("2015-03-17", "d-14")]


def test_a_retry_tick_sends_no_new_reminders(chengde, tmp_path):
    """The frequent retry job only finishes leftovers: it neither moves the city nor starts the day's reminders."""
    contacts.add(chengde, GAOSITAI, "高寺台镇安监站", "gaositai@example.gov.cn", None, "admin", T0)
    daemon = Daemon(chengde, NotifySettings(), tmp_path / "outbox", lambda: shanghai("2015-02-28T08:35"))
    daemon.tick(retry_only=True)
    assert city_state(chengde) == "mobilization"
    with chengde.read() as s:
        assert s.scalars(select(Notice)).all() == []


def test_a_failing_tick_is_logged_and_does_not_raise(tmp_path, caplog):
    """A tick against a database without a campaign logs the failure; the daemon lives on to the next tick."""
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    db.upgrade()
    daemon = Daemon(db, NotifySettings(), tmp_path / "outbox", lambda: shanghai("2015-02-28T08:30"))
    with caplog.at_level(logging.INFO, logger="anjian.daemon"):
        daemon.tick()
    assert "提醒任务失败" in caplog.text
    db.dispose()


def test_a_fallback_year_is_warned_about(chengde, tmp_path, caplog):
    """A tick in 2027, a year without an official schedule, logs that working days are estimated."""
    daemon = Daemon(chengde, NotifySettings(), tmp_path / "outbox", lambda: shanghai("2027-03-03T08:30"))
    with caplog.at_level(logging.INFO, logger="anjian.daemon"):
        daemon.tick()
    assert "2027 年没有官方节假日安排" in caplog.text


def test_the_clock_starts_at_anjian_now_and_runs_on():
    """With a start time the daemon's clock begins there (not at the real date) and only moves forward."""
    start = shanghai("2015-02-28T08:30")
    clock = clock_from(start)
    first, second = clock(), clock()
    assert start <= first <= second
    assert first.astimezone(SHANGHAI).date() == start.date()


def test_without_a_start_the_clock_is_the_real_one_in_utc():
    """Without ANJIAN_NOW the daemon reads the real clock, as an aware UTC time."""
    with time_machine.travel(dt.datetime(2015, 3, 27, 0, 30, tzinfo=dt.UTC), tick=False):
        assert clock_from(None)() == dt.datetime(2015, 3, 27, 0, 30, tzinfo=dt.UTC)


def test_the_lock_admits_one_daemon_per_sqlite_file_and_peers_on_postgresql(chengde):
    """On SQLite, while one SingleInstance holds the database a second is refused as a conflict, and after
    release it is free; on PostgreSQL both are admitted as peers."""
    first = SingleInstance(chengde)
    first.acquire()
    try:
        if chengde.dialect == "sqlite":
            assert not first.peers
            with pytest.raises(Conflict, match="已有 daemon 在使用"):
                SingleInstance(chengde).acquire()
        else:
            second = SingleInstance(chengde)
            second.acquire()
            assert first.peers and second.peers
            second.release()
    finally:
        first.release()
    again = SingleInstance(chengde)
    again.acquire()
    again.release()


# -- the real process ------------------------------------------------------------------------------
class Daemonized:
    """An `anjian daemon` subprocess whose stderr is read as it comes."""

    def __init__(self, env: dict[str, str], log_file: Path):
        self.proc = subprocess.Popen([ANJIAN, "daemon", "--log-file", str(log_file)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.err = b""

    @property
    def text(self) -> str:
        return self.err.decode("utf-8", "replace")

    def read_until(self, marker: str) -> str:
        """Read stderr until `marker` appears (or the process ends, or the hang guard trips)."""
        give_up = time.monotonic() + HANG_GUARD
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stderr, selectors.EVENT_READ)
            while marker not in self.text:
                left = give_up - time.monotonic()
                assert left > 0, f"no {marker!r} from the daemon; it said:\n{self.text}"
                if sel.select(left):
                    chunk = os.read(self.proc.stderr.fileno(), 65536)
                    if not chunk:
                        break
                    self.err += chunk
        assert marker in self.text, f"the daemon ended (exit {self.proc.wait()}) without {marker!r}:\n{self.text}"
        return self.text

    def stop(self) -> int:
        """SIGTERM, then the exit code and the rest of stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, rest = self.proc.communicate(timeout=HANG_GUARD)
        self.err += rest
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def daemon_env(db_url: str, tmp_path: Path, now: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
    env.update(ANJIAN_DB=db_url, ANJIAN_NOW=now, ANJIAN_HOME=str(tmp_path / "home"),
               ANJIAN_OUTBOX=str(tmp_path / "outbox"), PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow  # a real `anjian daemon` process
def test_the_daemon_sends_at_start_up_refuses_a_second_copy_and_stops_on_sigterm(fresh_db, db_url, tmp_path):
    """Started on 2015-02-28, the daemon's start-up pass fills the outbox; a second daemon is refused on
    SQLite (on PostgreSQL it runs as a peer and finds nothing left to send); SIGTERM stops it, exit 0."""
    with_contacts(fresh_db)
    fresh_db.dispose()
    env = daemon_env(db_url, tmp_path, "2015-02-28T08:30")
    log_file = tmp_path / "daemon.log"
    first = Daemonized(env, log_file)
    try:
        said = first.read_until(PASS_DONE)
        assert "anjian daemon 启动" in said and "今天 2015-02-28" in said
        assert "gaositai@example.gov.cn" in said and "county@example.gov.cn" in said
        files = sorted((tmp_path / "outbox").glob("*.eml"))
        assert len(files) == 2
        assert all(f.name.startswith("20150228-") for f in files)

        # the second starts an hour later: a drill's clock may not go back behind the first one's rows
        later = {**env, "ANJIAN_NOW": "2015-02-28T09:30"}
        if fresh_db.dialect == "sqlite":
            second = subprocess.run([ANJIAN, "daemon"], env=later, stdin=subprocess.DEVNULL, capture_output=True,
                                    timeout=HANG_GUARD)
            assert second.returncode != 0
            assert "已有 daemon 在使用" in second.stderr.decode()
        else:
            peer = Daemonized(later, tmp_path / "peer.log")
            try:
                said = peer.read_until(PASS_DONE)
                assert "可与其他 daemon 同时运行" in said
                assert "已发送" not in said and "发送 0 条" in said
                assert peer.stop() == 0, peer.text
            finally:
                peer.kill()
        assert first.proc.poll() is None  # the first one is untouched

        assert first.stop() == 0, first.text
    finally:
        first.kill()
    assert "收到信号 SIGTERM" in first.text
    assert "anjian daemon 已停止" in first.text
    logged = log_file.read_text("utf-8")
    assert PASS_DONE in logged and "anjian daemon 已停止" in logged
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2  # stopping sends nothing more


@pytest.mark.slow  # a real `anjian daemon` process
def test_a_restarted_daemon_does_not_send_again(fresh_db, db_url, tmp_path):
    """Stopped and started again on the same day, the daemon's start-up pass finds nothing new to send."""
    with_contacts(fresh_db)
    fresh_db.dispose()
    for n in range(2):  # the restart an hour later: a drill's clock may not go back behind the first run's rows
        run = Daemonized(daemon_env(db_url, tmp_path, f"2015-02-28T0{8 + n}:30"), tmp_path / f"daemon{n}.log")
        try:
            run.read_until(PASS_DONE)
            assert run.stop() == 0, run.text
        finally:
            run.kill()
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert "已发送" not in run.text


@pytest.mark.slow  # a real `anjian daemon` process
def test_sigterm_during_the_start_up_pass_stops_the_daemon(tmp_path):
    """A SIGTERM that arrives while the start-up pass waits for the database ends the daemon after that pass, exit 0."""
    url = f"sqlite:///{tmp_path / 'anjian.db'}"  # SQLite: the test holds its write lock to catch the pass mid-way
    with_contacts(Database(url)).dispose()
    holder = sqlite3.connect(tmp_path / "anjian.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    run = Daemonized(daemon_env(url, tmp_path, "2015-02-28T08:30"), tmp_path / "daemon.log")
    try:
        run.read_until("anjian daemon 启动")
        run.proc.send_signal(signal.SIGTERM)
        holder.execute("ROLLBACK")
        _, rest = run.proc.communicate(timeout=HANG_GUARD)
        run.err += rest
    finally:
        holder.close()
        run.kill()
    assert run.proc.returncode == 0, run.text
    assert PASS_DONE in run.text  # the pass under way is finished, then the daemon stops instead of scheduling
    assert "anjian daemon 已停止" in run.text


@pytest.mark.parametrize("at", ["25:99", "0830", "8.30", "０８:30"])
def test_a_malformed_daily_time_is_bad_input(tmp_path, at):
    """`[daemon] at` / ANJIAN_DAEMON_AT that is not HH:MM is refused with exit 2 and the value named, before any lock."""
    url = initialized_sqlite(tmp_path)
    env = {**daemon_env(url, tmp_path, "2015-02-28T08:30"), "ANJIAN_DAEMON_AT": at}
    r = subprocess.run([ANJIAN, "daemon"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG_GUARD)
    assert r.returncode == 2, r.stderr.decode()
    assert "HH:MM" in r.stderr.decode() and repr(at) in r.stderr.decode()
    assert not (tmp_path / "anjian.db.daemon.lock").exists()


def test_a_retry_interval_below_one_minute_is_bad_input(tmp_path):
    """`[daemon] retry_minutes = 0` would retry every second: it is refused with exit 2."""
    url = initialized_sqlite(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nretry_minutes = 0\n", encoding="utf-8")
    env = {**daemon_env(url, tmp_path, "2015-02-28T08:30"), "ANJIAN_CONFIG": str(config)}
    r = subprocess.run([ANJIAN, "daemon"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG_GUARD)
    assert r.returncode == 2, r.stderr.decode()
    assert "retry_minutes" in r.stderr.decode()


def test_the_log_names_the_database_without_its_password():
    """The start-up line names the database, but a PostgreSQL password in its URL is not written to the log."""
    from anjian.workflow.reminders.daemon import _shown_url

    shown = _shown_url("postgresql+psycopg://anjian:s3cret@db.example:5432/anjian")
    assert "s3cret" not in shown and "db.example:5432/anjian" in shown
    assert _shown_url("sqlite:////var/lib/anjian/anjian.db") == "sqlite:////var/lib/anjian/anjian.db"
