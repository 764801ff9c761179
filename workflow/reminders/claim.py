"""Claiming notices exactly once: each planned notice staged into its rows (what it says, its items),
and a chunk of them inserted in one transaction under the items' unique key.

Under the database's write lock (BEGIN IMMEDIATE on SQLite, an advisory transaction lock on PostgreSQL)
the chunk is inserted whole; if a peer daemon claimed one of its items since the pass looked, the
items' key refuses it and the notices still free are claimed, so several daemons on one PostgreSQL
database each claim different notices and every notice goes out once.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anjian.notifications.render import body_of, content, context, render_parts
from anjian.workflow.clock import utc_text
from anjian.workflow.reminders.recipients import Plan
from anjian.workflow.reminders.results import SentView
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store import scope
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Notice, NoticeContent, NoticeItem


def owner_tag() -> str:
    """Who claims: this host and process (a pass on another machine can only be taken over by its lease)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def chunks(seq: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def notice_id(today: dt.date, key: str) -> str:
    return f"{today:%Y%m%d}-{key[:16]}"


@dataclass
class Ready:
    """A claimed notice, with what sending and reporting it needs (no query per notice)."""

    id: str
    channel: str
    recipient: str
    recipient_name: str
    kind: str
    subject: str
    content: str | None  # what it says, rendered where it is sent (`render.content`)
    body: str | None  # its text and HTML as stored when claimed before schema 0004 (no content)
    html: str | None
    created_at: str
    attempts: int
    ambiguous: bool
    units: list[str]
    milestones: list[str]

    def view(self, status: str = "sent", error: str | None = None) -> SentView:
        return SentView(self.id, self.recipient, self.channel, self.units, self.milestones, self.kind, status, error)


@dataclass
class Staged:
    row: dict  # notices
    said: dict  # notice_contents
    items: list[dict]  # notice_items
    ready: Ready


@dataclass(frozen=True)
class Stamp:
    """What every notice of a pass shares: its day, its time, who claims it and where it writes."""

    today: dt.date
    day: str  # the notice id's prefix, 20161201
    day_iso: str  # 2016-12-01
    created: str
    owner: str
    targets: Mapping[str, str]  # transport -> where this pass writes it (`Sender.target`)

    @classmethod
    def of(cls, now: dt.datetime, today: dt.date, targets: Mapping[str, str] | None = None) -> Stamp:
        return cls(today, f"{today:%Y%m%d}", today.isoformat(), utc_text(now), owner_tag(), targets or {})


def stage(p: Plan, stamp: Stamp, campaign, settings: NotifySettings) -> Staged:
    """Stage one planned notice: its subject rendered, what it says as content (its text and HTML are
    rendered where it is sent, by the outbox writer for a file), and the rows that claim it."""
    key = p.key()
    nid = f"{stamp.day}-{key[:16]}"  # notice_id
    today = stamp.today
    kind = p.kind
    lines = sorted(p.lines, key=lambda x: (x.kind != "overdue", x.deadline, x.unit_code))
    args = (nid, kind, p.name, p.unit_path, lines, campaign.title, campaign.issuer, today, settings.language)
    cited = {"drill": settings.drill, "campaign_document": campaign.document}
    subject = render_parts(context(*args, **cited), settings.language, ("subject",))["subject"]
    stored = content(*args, **cited)
    created = stamp.created
    row = {"id": nid, "key": key, "recipient": p.address, "recipient_name": p.name, "channel": p.channel,
           "kind": kind, "language": settings.language, "subject": subject, "status": "claimed",
           "attempts": 0, "next_attempt_at": None, "created_at": created,
           "sent_at": None, "last_error": None, "ambiguous": 0, "owner": stamp.owner,
           "target": stamp.targets.get(p.channel)}
    said = {"notice_id": nid, "content": stored, "body": None, "html": None}
    day = stamp.day_iso
    items = [{"notice_id": nid, "recipient": p.address, "unit_code": x.unit_code, "milestone": x.milestone,
              "rung": x.rung, "rung_date": day} for x in p.lines]
    ready = Ready(nid, p.channel, p.address, p.name, kind, subject, stored, None, None, created, 0, False,
                  sorted({x.unit_code for x in p.lines}), sorted({x.milestone for x in p.lines}))
    return Staged(row, said, items, ready)


def stage_chunk(now: dt.datetime, today: dt.date, plans: Sequence[Plan], campaign, settings: NotifySettings,
                targets: Mapping[str, str] | None = None) -> list[Staged]:
    """Stage a chunk of planned notices into the rows that claim them. (Whether a peer daemon claimed one
    meanwhile is found when the chunk is claimed: looking first cost a national pass 0.7 s on PostgreSQL,
    and staging a notice, its text left to the writer, costs next to nothing.)"""
    stamp = Stamp.of(now, today, targets)
    staged = [stage(p, stamp, campaign, settings) for p in plans]
    # A template that cannot render these notices fails the pass here, before any is claimed, not when
    # they are sent: the first of each channel is rendered whole now.
    for channel in {s.ready.channel for s in staged}:
        first = next(s for s in staged if s.ready.channel == channel)
        body_of(channel, first.said["content"])
    return staged


Item = tuple[str, str, str]  # unit, milestone, rung


def taken(session: Session, wanted: list[tuple[str, list[Item]]]) -> set[int]:
    """Which of these (recipient, items) carry an item someone has claimed already — in a few queries.
    (Asked only when a chunk's claim was refused: a peer claimed some of it meanwhile.)"""
    rungs = sorted({rung for _, items in wanted for _, _, rung in items})
    recipients = sorted({address for address, _ in wanted})
    if not rungs:
        return set()
    claimed: set[tuple[str, str, str, str]] = set()
    for part in pieces(session, recipients):
        claimed.update(tuple(r) for r in session.execute(
            select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone, NoticeItem.rung)
            .where(among(session, NoticeItem.recipient, part), NoticeItem.rung.in_(rungs))))
    return {i for i, (address, items) in enumerate(wanted) if any((address, *item) in claimed for item in items)}


Before = Callable[[Session], None]  # work done first in a claim's transaction


def claim(db: Database, now: dt.datetime, today: dt.date, plans: Sequence[Plan], campaign,
          settings: NotifySettings, before: Before | None = None, targets: Mapping[str, str] | None = None) -> list[Ready]:
    """Render and claim a chunk of planned notices, recording where each is to be written (`targets`, by
    transport; see `claim_staged`)."""
    return claim_staged(db, stage_chunk(now, today, plans, campaign, settings, targets), before)


def claim_staged(db: Database, staged: list[Staged], before: Before | None = None) -> list[Ready]:
    """Claim a chunk of staged notices in one transaction, which first does `before` (the pass marks
    there the notices whose files are durable: one transaction a chunk, not two); a notice with an item someone else claimed meanwhile
    (another daemon) is dropped whole, as the unique key would drop it.

    Under the write lock (BEGIN IMMEDIATE; on PostgreSQL an advisory transaction lock) no other pass
    claims. The chunk is inserted whole, in a savepoint: the items' primary key refuses it if a peer
    claimed one of its items since this pass planned, and only then is each notice checked (checking
    every chunk cost a national pass 0.6 s on PostgreSQL, to find nothing)."""
    try:
        with db.write() as session:
            if before is not None:
                before(session)
            try:
                with session.begin_nested():
                    _insert_staged(session, staged)
                free = staged
            except IntegrityError:
                busy = taken(session, [(s.row["recipient"], [(i["unit_code"], i["milestone"], i["rung"]) for i in s.items])
                                       for s in staged])
                free = [s for i, s in enumerate(staged) if i not in busy]
                _insert_staged(session, free)
        return [s.ready for s in free]
    except IntegrityError:
        pass  # a writer that bypassed the lock: claim one by one, keeping what is still free
    if before is not None:
        with db.write() as session:
            before(session)
    claimed = []
    for s in staged:
        try:
            with db.write() as session:
                _insert_staged(session, [s])
            claimed.append(s.ready)
        except IntegrityError:
            continue
    return claimed


def _insert_staged(session: Session, staged: Sequence[Staged]) -> None:
    _insert(session, Notice.__table__, [s.row for s in staged])
    _insert(session, NoticeContent.__table__, [s.said for s in staged])
    no = scope.number(session)  # the items are told about in the campaign the pass runs for
    _insert(session, NoticeItem.__table__, [i | {"campaign_no": no} for s in staged for i in s.items])


def _insert(session: Session, table, rows: list[dict]) -> None:
    """Insert rows of plain values: with COPY on PostgreSQL, with the driver's executemany elsewhere (a
    chunk is thousands of rows, and SQLAlchemy's per-row parameter processing would cost as much again
    as the database's work; PostgreSQL's executemany is still a statement a row)."""
    if not rows:
        return
    columns = list(rows[0])
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        try:
            with cursor.copy(statement) as copy:
                for r in rows:
                    copy.write_row([r[c] for c in columns])
        except conn.dialect.loaded_dbapi.IntegrityError as exc:  # the driver's own: as SQLAlchemy would raise it
            raise IntegrityError(statement, None, exc) from exc
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})",
                         [tuple(r[c] for c in columns) for r in rows])
