"""Finishing what other passes left: notices a dead pass (or one whose lease expired) claimed but never
marked, and retries whose time has come — across outboxes and machines, each sent at most once.

A pass marks a batch of notices `sending` before it hands them to the outbox writer or a sender; until
then they are `claimed` and provably unsent. What another pass left is decided by `leftover_fate`:
a `claimed` notice is sent by whoever finds it; a `sending` one is finished only by a pass that can see
what became of it — the same file outbox (a finished file: marked sent; none: written, under its one
name); anywhere else (another outbox or machine, SMTP, a robot) it is marked `ambiguous` and reported,
not sent again, until an official settles it (`anjian notices settle`). Taking over is atomic: of two
passes that saw a notice, one wins.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import func, select, update

from anjian.notifications.outbox import FileOutbox, process_alive
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
    return pid.isdigit() and not process_alive(int(pid))


def finish_leftovers(db: Database, now: dt.datetime, settings: NotifySettings, deliver: Callable[[list[Ready]], None],
                     size: int = CHUNK, senders: Mapping[str, object] | None = None,
                     held: Callable[[list[Ready]], None] | None = None) -> None:
    """What other passes left unfinished (their process gone, or their lease expired), and retries whose
    time has come, decided by `leftover_fate`: taken over and handed to `deliver` a chunk at a time, or
    marked ambiguous and handed to `held`. A notice held ambiguous by an earlier pass is taken over when
    this pass can look where it was written (its own outbox). `senders` are this pass's, by transport."""
    lease = utc_text(now - dt.timedelta(minutes=settings.lease_minutes))
    now_text = utc_text(now)
    with db.read() as session:
        rows = session.execute(select(Notice.id, Notice.status, Notice.owner, Notice.created_at, Notice.next_attempt_at,
                                      Notice.channel, Notice.target, Notice.ambiguous)
                               .where(Notice.status.in_(("claimed", "sending", "retry", "ambiguous"))).order_by(Notice.id)).all()
    dead: dict[str | None, bool] = {}
    todo, unsure = [], []
    for r in rows:
        if r.status == "retry":
            if r.next_attempt_at and r.next_attempt_at <= now_text:
                todo.append((r.id, r.status, r.owner, "claimed"))
            continue
        if r.status == "ambiguous":  # held by a pass that could not look; this one may be able to
            if leftover_fate(r.id, "sending", r.channel, r.target, True, senders or {}) == "sending":
                todo.append((r.id, r.status, r.owner, "sending"))
            continue
        if r.owner not in dead:
            dead[r.owner] = owner_dead(r.owner)
        if not (dead[r.owner] or r.created_at <= lease):
            continue  # its pass is still at work
        fate = leftover_fate(r.id, r.status, r.channel, r.target, bool(r.ambiguous), senders or {})
        (unsure if fate == "ambiguous" else todo).append((r.id, r.status, r.owner, fate))
    for part in chunks(todo, size):
        won = take_over_many(db, part)
        if won:
            deliver(load_ready(db, won))
    for part in chunks(unsure, size):
        marked = mark_ambiguous(db, part)
        if marked and held is not None:
            held(load_ready(db, marked))


def leftover_fate(notice_id: str, status: str, transport: str, target: str | None, flagged: bool,
                  senders: Mapping[str, object]) -> str:
    """What to do with a notice another pass claimed and left: "claimed" — it never began (it was never
    handed to a writer or sender), so this pass sends it; "sending" — it began, and this pass can look:
    its file is in this pass's outbox (then it is marked sent), or it was to be written to this very
    outbox and is not there (a file outbox names a message only when it is complete, so nothing of it
    was delivered: it is written now, under its one name); "ambiguous" — it began where this pass cannot
    look (another outbox, another machine, SMTP, a robot): it may have gone out, and is not sent again.

    A notice claimed before schema 0006 (no target) or marked by an older pass as begun (`flagged`) is
    taken as begun: those passes handed notices over without saying so."""
    began = status == "sending" or flagged or target is None
    if not began:
        return "claimed"
    sender = senders.get(transport)
    if isinstance(sender, FileOutbox) and (target == sender.target or sender.delivered(notice_id)):
        return "sending"
    return "ambiguous"


def unsettled(db: Database) -> int:
    """How many notices wait for an official to settle them (`ambiguous`)."""
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Notice).where(Notice.status == "ambiguous")) or 0


def take_over(db: Database, notice_id: str, seen_status: str, seen_owner: str | None) -> bool:
    """Claim a leftover notice for this pass, atomically: of two passes that saw it, one wins."""
    fate = "sending" if seen_status == "sending" else "claimed"
    return take_over_many(db, [(notice_id, seen_status, seen_owner, fate)]) == [notice_id]


def take_over_many(db: Database, seen: Sequence[tuple[str, str, str | None, str]]) -> list[str]:
    """Claim leftover notices for this pass in one transaction, each only if it is still as it was seen
    (status and owner): of two passes that saw it, one wins. Each takes the status given with it (one
    that began stays `sending`: if this pass dies too, the next still knows). Returns the ids won, in
    id order."""
    return _update_seen(db, seen, lambda fate: {"status": fate, "owner": owner_tag()})


def mark_ambiguous(db: Database, seen: Sequence[tuple[str, str, str | None, str]]) -> list[str]:
    """Mark leftover notices `ambiguous` (each only if still as it was seen), keeping who claimed them and
    where they were written, for `anjian notices` to say. Returns the ids marked."""
    return _update_seen(db, seen, lambda fate: {"status": "ambiguous"})


def _update_seen(db: Database, seen: Sequence[tuple[str, str, str | None, str]],
                 values: Callable[[str], dict]) -> list[str]:
    groups: dict[tuple[str, str | None, str], list[str]] = defaultdict(list)
    for nid, status, owner, fate in seen:
        groups[(status, owner, fate)].append(nid)
    won: list[str] = []
    with db.write() as session:
        for (status, owner, fate), ids in groups.items():
            for part in pieces(session, ids):
                won += session.scalars(
                    update(Notice).where(among(session, Notice.id, part), Notice.status == status,
                                         Notice.owner.is_not_distinct_from(owner))
                    .values(**values(fate)).returning(Notice.id)
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
