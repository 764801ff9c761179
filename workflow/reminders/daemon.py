"""`anjian daemon`: APScheduler 3.11 runs our reminder pass on a schedule; it owns no state of ours.

APScheduler's job stores are not safe across processes and drop jobs they cannot load, so the
daemon keeps none: a cron tick calls the pass, whose exactly-once bookkeeping lives in our tables.

On SQLite (a laptop's file) one daemon per database: a file lock beside the file refuses a second
copy. On PostgreSQL (a province's server) several daemons run as peers, on one machine or several:
each pass claims its notices a chunk at a time under the database's advisory write lock, after
checking that no item of the chunk is claimed already, and takes leftovers over with a conditional
update, so whatever the number of daemons every notice is sent once.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from anjian.i18n import _
from anjian.workflow.clock import SHANGHAI, local_date
from anjian.workflow.errors import BadInput, Conflict
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database

log = logging.getLogger("anjian.daemon")


def clock_from(start: dt.datetime | None) -> Callable[[], dt.datetime]:
    """The real clock, or one that starts at `start` (ANJIAN_NOW) and runs at real speed."""
    if start is None:
        return lambda: dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - t0)


def daily_time(notify: NotifySettings) -> tuple[int, int]:
    """The hour and minute of the daily pass; a malformed setting is the official's input, not a bug."""
    text = str(notify.daemon_at).strip()
    hour, _colon, minute = text.partition(":")
    if not (hour.isascii() and hour.isdigit() and minute.isascii() and minute.isdigit()
            and int(hour) < 24 and int(minute) < 60):
        raise BadInput(_("setting daemon at (ANJIAN_DAEMON_AT or [daemon] at) must be HH:MM such as 08:30, not {text!r}").format(
            text=text))
    if notify.retry_minutes < 1:
        raise BadInput(_("setting daemon retry_minutes must be at least 1, not {value}").format(value=notify.retry_minutes))
    return int(hour), int(minute)


class SingleInstance:
    """Holds the one-daemon-per-file lock of an SQLite database for as long as the daemon lives.

    On PostgreSQL there is nothing to hold: daemons there are peers (`peers` is then True)."""

    def __init__(self, db: Database):
        self.db = db
        self._fh = None
        self.peers = db.dialect != "sqlite"

    def acquire(self) -> None:
        if self.db.dialect == "sqlite":
            import fcntl

            path = Path(self.db.url.split(":///", 1)[1] + ".daemon.lock")
            self._fh = open(path, "a+")  # noqa: SIM115 - held open for the daemon's life
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._fh.seek(0)
                holder = self._fh.read().strip() or "another process"
                self._fh.close()
                raise Conflict(_("a daemon is already running against {url} ({holder}); not starting a second copy").format(
                    url=self.db.url, holder=holder)) from None
            import os

            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"pid {os.getpid()}")
            self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _shown_url(url: str) -> str:
    """The database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is logged as it is
        return url


class Daemon:
    """The reminder daemon. `tick()` is one scheduled run; `run()` blocks until SIGTERM or SIGINT."""

    def __init__(self, db: Database, notify: NotifySettings, outbox: Path, clock: Callable[[], dt.datetime],
                 on_pass: Callable[[object, bool], None] | None = None):
        self.db = db
        self.notify = notify
        self.outbox = outbox
        self.clock = clock
        self.on_pass = on_pass  # called with each pass's result and retry_only (the service counts them)
        self.scheduler = None
        self._lock: SingleInstance | None = None

    def tick(self, retry_only: bool = False) -> None:
        """Move the city on the stage dates, then run a reminder pass (on working days): for the chosen
        campaign, or for each campaign of the database in turn."""
        from anjian.workflow.store import scope

        ids: list[str | None] = [scope.choice()]
        if ids[0] is None:
            try:
                with self.db.read() as session:
                    known = [cid for _no, cid in scope.campaigns(session)]
            except Exception:  # noqa: BLE001 - a database out of reach: the pass below logs it
                known = []
            ids = known if len(known) > 1 else [None]
        for cid in ids:
            with scope.chosen(cid):
                self._tick(retry_only)

    def _tick(self, retry_only: bool) -> None:
        from anjian.workflow.reminders.notices import unit_names
        from anjian.workflow.reminders.run import run_pass
        from anjian.workflow.reminders.warnings import is_weekly
        from anjian.workflow.services.stages import tick_city

        now = self.clock()
        try:
            if not retry_only:
                for t in tick_city(self.db, now):
                    log.info(_("City stage: {old} → {new} (audit row {seq})").format(old=t.from_state, new=t.to_state, seq=t.seq))
            result = run_pass(self.db, now, self.notify, self.outbox, retry_only=retry_only)
        except Exception:  # noqa: BLE001 - a failed tick is logged; the next one tries again
            log.exception(_("The reminder pass failed; it is tried again on the next run"))
            return
        if self.on_pass is not None:
            try:
                self.on_pass(result, retry_only)
            except Exception:  # noqa: BLE001 - counting a pass never stops the scheduler
                log.exception("on_pass")
        if result.calendar == "fallback":
            log.warning(_("No official schedule for {year}: working days are worked out from weekends and public holidays").format(
                year=result.today[:4]))
        if not result.workday and not retry_only:
            log.info(_("{day} is not a working day: no new reminders sent").format(day=result.today))
        for s in result.sent:
            log.info(_("Sent {id} → {recipient} ({channel}, {kind}) {milestones}").format(
                id=s.notice_id, recipient=s.recipient, channel=s.channel, kind=s.kind, milestones=_(", ").join(s.milestones)))
        for s in result.deferred:
            log.warning(_("Sending deferred {id} → {recipient}: {error}").format(id=s.notice_id, recipient=s.recipient, error=s.error))
        for s in result.failed:
            log.error(_("Sending failed {id} → {recipient}: {error}").format(id=s.notice_id, recipient=s.recipient, error=s.error))
        lonely = sorted({str(s["unit"]) for s in result.skipped if s.get("reason") == "no contact"})
        if lonely:  # one line, not one per unit: the real registry has hundreds
            names = unit_names(self.db, lonely[:30])
            shown = _(", ").join(_("{name} ({code})").format(name=names.get(c, c), code=c) for c in lonely[:30])
            log.warning(_("Units without a contact, not reminded: {count}: ").format(count=len(lonely)) + shown + (
                _(" and others (anjian remind --dry-run --format json lists them all)") if len(lonely) > 30 else ""))
        bosses = sorted({str(s["unit"]) for s in result.skipped if "for_unit" in s and not is_weekly(s["rung"])})
        if bosses:
            names = unit_names(self.db, bosses)
            log.warning(_("Higher units without a contact for overdue notices: {count}: ").format(count=len(bosses)) + _(", ").join(
                _("{name} ({code})").format(name=names.get(c, c), code=c) for c in bosses))
        watchers = sorted({str(s["unit"]) for s in result.skipped if "for_unit" in s and is_weekly(s["rung"])})
        if watchers:
            names = unit_names(self.db, watchers)
            log.warning(_("Higher units without a contact for early warnings: {count}: ").format(count=len(watchers)) + _(", ").join(
                _("{name} ({code})").format(name=names.get(c, c), code=c) for c in watchers))
        if not retry_only:  # says the pass ran even when nothing was due (the operator's and the tests' cue)
            log.info(_("Reminder pass done: {day}, {sent} sent, {deferred} deferred, {failed} failed").format(
                day=result.today, sent=len(result.sent), deferred=len(result.deferred), failed=len(result.failed)))

    def _schedule(self, scheduler_class) -> None:
        """The daily pass and the retries on a scheduler of `scheduler_class` (APScheduler's blocking one
        for `anjian daemon`, its background one inside `anjian serve`)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        hour, minute = daily_time(self.notify)
        self.scheduler = scheduler_class(timezone=SHANGHAI, executors={"default": ThreadPoolExecutor(1)},
                                         job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self.scheduler.add_job(self.tick, CronTrigger(hour=hour, minute=minute, timezone=SHANGHAI), id="daily")
        self.scheduler.add_job(self.tick, IntervalTrigger(minutes=self.notify.retry_minutes), id="retry",
                               kwargs={"retry_only": True})

    def start_background(self) -> None:
        """Run inside another process's life (`anjian serve`): the same schedule in a background thread,
        the catch-up pass as its first job; `stop()` ends it. The SQLite lock is held as by the daemon."""
        from apscheduler.schedulers.background import BackgroundScheduler

        daily_time(self.notify)  # a malformed setting is refused before anything is held
        self._lock = SingleInstance(self.db)
        self._lock.acquire()
        try:
            self._schedule(BackgroundScheduler)
            self.scheduler.add_job(self.tick, id="catch-up")  # runs now, in the scheduler's thread
            self.scheduler.start()
        except BaseException:
            self._lock.release()
            raise
        log.info(_("Reminder scheduler started inside the service: runs daily at {at} (Beijing time)").format(
            at=self.notify.daemon_at) + (
            _(" (PostgreSQL: may run beside other daemons, each notice is sent once)") if self._lock.peers else ""))

    def stop(self) -> None:
        """Stop the background scheduler, letting a pass in progress finish."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def run(self) -> None:
        from apscheduler.events import EVENT_SCHEDULER_STARTED
        from apscheduler.schedulers.blocking import BlockingScheduler

        lock = SingleInstance(self.db)
        daily_time(self.notify)
        lock.acquire()
        self._schedule(BlockingScheduler)

        stopping = False

        def stop(signum, _frame):
            # Never raise here: before the scheduler runs, shutdown() would raise inside the start-up pass,
            # whose error handling would swallow it and the daemon would then run on, deaf to SIGTERM.
            nonlocal stopping
            log.info(_("Signal {signal} received, stopping").format(signal=signal.Signals(signum).name))
            stopping = True
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)

        def stop_if_asked(_event) -> None:
            # A signal that came between the start-up pass and the scheduler's start is honoured here.
            if stopping and self.scheduler.running:
                self.scheduler.shutdown(wait=False)

        self.scheduler.add_listener(stop_if_asked, EVENT_SCHEDULER_STARTED)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info(_("anjian daemon started: database {db}, runs daily at {at} (Beijing time), today {today}").format(
            db=_shown_url(self.db.url), at=self.notify.daemon_at, today=local_date(self.clock())) + (
            _(" (PostgreSQL: may run beside other daemons, each notice is sent once)") if lock.peers else ""))
        try:
            self.tick()  # catch up at start-up
            if not stopping:
                self.scheduler.start()
        finally:
            lock.release()
            log.info(_("anjian daemon stopped"))
