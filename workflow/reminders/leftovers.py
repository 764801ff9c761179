"""Finishing what other passes left: notices a dead pass claimed but never marked, and retries whose
time has come, taken over atomically (of two passes that saw one, one wins) and handed on to be sent.

A pass that died between claiming and marking leaves its notices `claimed`; the next pass finishes them
— the file outbox sees a finished file and does not write it twice. A network channel cannot tell, so
the one notice the dead pass had begun sending is sent again and flagged `ambiguous` (可能重复发送);
notices it never began are sent once, unflagged.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy import select, update

from anjian.workflow.clock import utc_text
from anjian.workflow.reminders.claim import Ready, chunks, owner_tag
from anjian.workflow.settings import CHUNK, NotifySettings
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Notice, NoticeContent, NoticeItem


def owner_dead(owner: str | None) -> bool:
    """Whether the pass that claimed a notice (`host:pid`) is gone: known only on this machine."""
    if not owner or ":" not in owner:
        return True
    host, pid = owner.rsplit(":", 1)
    if host != socket.gethostname():
        return False  # another machine's pass: only its lease can free it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def finish_leftovers(db: Database, now: dt.datetime, settings: NotifySettings, deliver: Callable[[list[Ready]], None],
                     size: int = CHUNK) -> None:
    """Notices a dead pass claimed but never marked, and retries whose time has come, taken over and
    handed to `deliver` a chunk at a time."""
    lease = utc_text(now - dt.timedelta(minutes=settings.lease_minutes))
    now_text = utc_text(now)
    with db.read() as session:
        rows = session.execute(select(Notice.id, Notice.status, Notice.owner, Notice.created_at, Notice.next_attempt_at)
                               .where(Notice.status.in_(("claimed", "retry"))).order_by(Notice.id)).all()
    dead: dict[str | None, bool] = {}
    todo = []
    for nid, status, owner, created, retry_at in rows:
        due_retry = status == "retry" and retry_at and retry_at <= now_text
        if status == "claimed" and owner not in dead:
            dead[owner] = owner_dead(owner)
        orphan = status == "claimed" and (dead[owner] or created <= lease)
        if due_retry or orphan:
            todo.append((nid, status, owner))
    for part in chunks(todo, size):
        won = take_over_many(db, part)
        if won:
            deliver(load_ready(db, won))


def take_over(db: Database, notice_id: str, seen_status: str, seen_owner: str | None) -> bool:
    """Claim a leftover notice for this pass, atomically: of two passes that saw it, one wins."""
    return take_over_many(db, [(notice_id, seen_status, seen_owner)]) == [notice_id]


def take_over_many(db: Database, seen: Sequence[tuple[str, str, str | None]]) -> list[str]:
    """Claim leftover notices for this pass in one transaction, each only if it is still as it was seen
    (status and owner): of two passes that saw it, one wins. Returns the ids won, in id order."""
    groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for nid, status, owner in seen:
        groups[(status, owner)].append(nid)
    won: list[str] = []
    me = owner_tag()
    with db.write() as session:
        for (status, owner), ids in groups.items():
            for part in pieces(session, ids):
                won += session.scalars(
                    update(Notice).where(among(session, Notice.id, part), Notice.status == status,
                                         Notice.owner.is_not_distinct_from(owner))
                    .values(status="claimed", owner=me).returning(Notice.id)
                    .execution_options(synchronize_session=False)).all()
    return sorted(won)


def load_ready(db: Database, ids: Sequence[str]) -> list[Ready]:
    """The claimed notices by id, with their units and milestones, in a query or two per chunk."""
    out: list[Ready] = []
    with db.read() as session:
        for part in pieces(session, list(ids)):
            units: dict[str, set[str]] = defaultdict(set)
            ms: dict[str, set[str]] = defaultdict(set)
            for nid, unit, milestone in session.execute(select(NoticeItem.notice_id, NoticeItem.unit_code,
                                                               NoticeItem.milestone)
                                                        .where(among(session, NoticeItem.notice_id, part))):
                units[nid].add(unit)
                ms[nid].add(milestone)
            for n in session.execute(select(Notice.id, Notice.channel, Notice.recipient, Notice.recipient_name, Notice.kind,
                                            Notice.subject, NoticeContent.content, NoticeContent.body, NoticeContent.html,
                                            Notice.created_at, Notice.attempts, Notice.ambiguous)
                                     .join(NoticeContent, NoticeContent.notice_id == Notice.id)
                                     .where(among(session, Notice.id, part)).order_by(Notice.id)):
                out.append(Ready(n.id, n.channel, n.recipient, n.recipient_name, n.kind, n.subject, n.content, n.body, n.html,
                                 n.created_at, n.attempts, bool(n.ambiguous), sorted(units[n.id]), sorted(ms[n.id])))
    return out
