"""Sending claimed notices and marking them: network channels one by one, each attempt recorded before
it is sent; the file outbox a chunk at a time, by the outbox writer process where there is one; a
failure retried with backoff, then marked failed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from anjian.notifications.faults import NO_FAULTS, FaultPlan
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Outgoing, Permanent, Sender, Transient
from anjian.notifications.render import body_of
from anjian.notifications.writer import OutboxWriter
from anjian.workflow.clock import from_utc_text, utc_text
from anjian.workflow.reminders.claim import Ready, chunks, owner_tag
from anjian.workflow.reminders.results import PassResult
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Notice

BACKOFF_MINUTES = (5, 30, 120, 720)  # then the notice is marked failed
MAX_ATTEMPTS = len(BACKOFF_MINUTES) + 1
WRITE_CHUNK = 1000  # notices handed to the outbox writer at a time


def _dated(n: Ready, now: dt.datetime, times: dict[str, dt.datetime]) -> dt.datetime:
    """When a claimed notice was claimed, which its message is dated (`times` keeps the parsed times of a
    chunk, which share one)."""
    if n.created_at not in times:
        times[n.created_at] = from_utc_text(n.created_at).astimezone(now.tzinfo) if n.created_at else now
    return times[n.created_at]


def outgoing(n: Ready, now: dt.datetime, sender: str, times: dict[str, dt.datetime] | None = None) -> Outgoing:
    """The message of a claimed notice, rendered, dated when it was claimed."""
    text, html = body_of(n.channel, n.content, n.body, n.html)
    return Outgoing(n.id, n.recipient, n.recipient_name, n.subject, text, html, text, sender, _dated(n, now, {} if times is None else times))


def _letters(ready: list[Ready], now: dt.datetime, sender: str) -> list[tuple]:
    """A chunk of e-mails for the outbox writer, which renders them (the arguments of `writer.letter`)."""
    times: dict[str, dt.datetime] = {}
    return [(n.id, n.recipient, n.recipient_name, n.subject, n.content, n.body, n.html, sender, _dated(n, now, times))
            for n in ready]


@dataclass(frozen=True)
class Mark:
    """The outcome of writing one notice: sent, or the row values of a failed attempt."""

    notice: Ready
    status: str  # sent | retry | failed
    at: str  # when it was sent (or failed), as stored
    error: str | None = None
    values: dict | None = None


class Delivery:
    """Sends claimed chunks: network notices one by one, marked as each goes; file-outbox chunks written
    here and marked at once — or, in a pass of many chunks, by the writer process, which writes chunk k
    while this process renders and claims the chunks after it (up to `OutboxWriter.DEPTH` handed over
    and not yet collected), and whose finished chunks are then marked in the transaction that claims
    the next (`written`)."""

    def __init__(self, db: Database, now: dt.datetime, clock: Callable[[], dt.datetime], senders: dict[str, Sender],
                 result: PassResult, settings: NotifySettings, writer: OutboxWriter | None, faults: FaultPlan = NO_FAULTS):
        self.db, self.now, self.clock, self.senders, self.result = db, now, clock, senders, result
        self.settings = settings
        self.writer = writer
        self.faults = faults
        self.owner = owner_tag()
        self.inflight: deque[list[Ready]] = deque()  # chunks handed to the writer, oldest first
        self.pending: list[Mark] = []  # written and durable, not marked yet

    def _messages(self, ready: list[Ready]) -> list[Outgoing]:
        times: dict[str, dt.datetime] = {}
        return [outgoing(n, self.now, self.settings.sender, times) for n in ready]

    def send(self, ready: list[Ready]) -> None:
        """Send claimed notices. Each batch is first marked `sending` (`begin`): only what that mark
        returns is handed to the writer or sender, so a notice still `claimed` provably never began."""
        files = [n for n in ready if isinstance(self.senders[n.channel], FileOutbox)]
        if files and self.writer is not None and not self.writer.usable():
            self.writer = None
        if files and self.writer is None:
            outbox = self.senders[files[0].channel]
            files = begin(self.db, files, self.owner, outbox.target)
            self.faults.point("after_begin")
            done = marks(files, outbox.send_many(self._messages(files)), self.now, self.clock())
            with self.db.write() as session:
                apply(session, done)
            report(self.result, done)
        elif files:
            target = self.senders[files[0].channel].target
            for part in chunks(files, WRITE_CHUNK):
                part = begin(self.db, part, self.owner, target)
                self.faults.point("after_begin")
                if not part:
                    continue
                self.writer.submit(_letters(part, self.now, self.settings.sender))
                self.inflight.append(part)
                self._collect(self.writer.DEPTH)
        for n in ready:
            if not isinstance(self.senders[n.channel], FileOutbox):
                deliver_one(self.db, self.now, n, self.senders[n.channel], self.result, self.settings, self.clock,
                            self.faults, self.owner)

    def _collect(self, keep: int = 0) -> None:
        """Wait for the writer's oldest chunks until at most `keep` are under way."""
        while len(self.inflight) > keep:
            files = self.inflight.popleft()
            self.pending += marks(files, self.writer.collect(), self.now, self.clock())

    def written(self) -> list[Mark]:
        """The marks of what the writer has finished, for the caller's next transaction to apply."""
        done, self.pending = self.pending, []
        return done

    def finish(self) -> None:
        """Wait for the writer's last chunk and mark what is left."""
        self._collect()
        done = self.written()
        if done:
            with self.db.write() as session:
                apply(session, done)
            report(self.result, done)


def marks(ready: list[Ready], problems: list[Transient | None], now: dt.datetime, at: dt.datetime) -> list[Mark]:
    """The outcomes of writing `ready` at `at` in the pass at `now` (a retry is due a backoff after `now`)."""
    out = []
    for n, problem in zip(ready, problems, strict=True):
        if problem is None:
            out.append(Mark(n, "sent", utc_text(at)))
        else:
            values = failure(n, problem, now)
            out.append(Mark(n, values["status"], utc_text(at), str(problem), values))
    return out


def apply(session: Session, done: Sequence[Mark]) -> None:
    """Mark written notices: the sent ones in a statement or two, each failed one on its own.

    Only ever for files that are in place and durable (`FileOutbox.send_many` has returned): a pass
    killed before this leaves the notices `claimed`; the next one finds their files and does not write
    them again."""
    sent: dict[str, list[str]] = defaultdict(list)
    for m in done:
        if m.values is None:
            sent[m.at].append(m.notice.id)
    for at, ids in sent.items():
        for part in pieces(session, ids):
            session.execute(update(Notice).where(among(session, Notice.id, part))
                            .values(status="sent", attempts=Notice.attempts + 1, last_error=None, next_attempt_at=None,
                                    sent_at=at)
                            .execution_options(synchronize_session=False))
    for m in done:
        if m.values is not None:
            session.execute(update(Notice).where(Notice.id == m.notice.id).values(**m.values))


def report(result: PassResult, done: Sequence[Mark]) -> None:
    for m in done:
        {"sent": result.sent, "retry": result.deferred}.get(m.status, result.failed).append(m.notice.view(m.status, m.error))


def failure(n: Ready, exc: Exception, now: dt.datetime) -> dict:
    """The row values of a failed attempt: retry with backoff, or failed for good."""
    attempts = n.attempts + 1
    values = {"attempts": attempts, "last_error": str(exc), "next_attempt_at": None,
              "ambiguous": 1 if n.ambiguous else 0}  # clears the mark of an attempt that ended here
    if isinstance(exc, Transient) and attempts < MAX_ATTEMPTS:
        retry_at = now + dt.timedelta(minutes=BACKOFF_MINUTES[attempts - 1])
        values.update(status="retry", next_attempt_at=utc_text(retry_at))
    else:
        values["status"] = "failed"
    return values


def deliver_one(db: Database, now: dt.datetime, n: Ready, sender: Sender, result: PassResult, settings: NotifySettings,
                clock: Callable[[], dt.datetime] | None = None, faults: FaultPlan = NO_FAULTS, owner: str | None = None) -> None:
    """Send one claimed notice over a network channel and mark the outcome (sent at `clock()`).

    A network channel cannot tell whether a message a dead pass began sending went out, so the notice is
    marked `sending` before it is sent: a pass that finds it so reports it ambiguous and does not send it
    again (`leftovers`). A notice an official chose to resend after that keeps its flag (可能重复发送)."""
    if not begin(db, [n], owner or owner_tag(), sender.target):
        return  # another pass took it over meanwhile (this one outlived its lease): it is that pass's now
    faults.point("after_begin")
    try:
        sender.send(outgoing(n, now, settings.sender))
    except (Transient, Permanent) as exc:
        values = failure(n, exc, now)
        with db.write() as session:
            session.execute(update(Notice).where(Notice.id == n.id).values(**values))
        report(result, [Mark(n, values["status"], utc_text(now), str(exc), values)])
        return
    faults.point("after_send")
    _mark_sent(db, n.id, clock() if clock else now, n.attempts + 1, n.ambiguous)
    result.sent.append(n.view())


def _mark_sent(db: Database, notice_id: str, now: dt.datetime, attempts: int, ambiguous: bool) -> None:
    with db.write() as session:
        values = {"status": "sent", "attempts": attempts, "last_error": None, "next_attempt_at": None,
                  "sent_at": utc_text(now), "ambiguous": 1 if ambiguous else 0}
        session.execute(update(Notice).where(Notice.id == notice_id).values(**values))


def begin(db: Database, ready: list[Ready], owner: str, target: str) -> list[Ready]:
    """Mark these notices `sending` to `target`, before any of them is handed to its writer or sender, and
    return those marked: the ones this pass still owns (a pass that outlived its lease may have lost some
    to another). From here on a notice may have gone out; until here it provably has not."""
    if not ready:
        return []
    ids: set[str] = set()
    with db.write() as session:
        for part in pieces(session, [n.id for n in ready]):
            ids.update(session.scalars(
                update(Notice).where(among(session, Notice.id, part), Notice.owner == owner,
                                     Notice.status.in_(("claimed", "sending")))
                .values(status="sending", target=target).returning(Notice.id)
                .execution_options(synchronize_session=False)).all())
    return [n for n in ready if n.id in ids]
