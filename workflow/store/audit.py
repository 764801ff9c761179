"""The audit log: one hash-chained row per change, written in the same transaction as the change.

Each row's hash covers its own fields and the previous row's hash, from the first row on, so any
edit, deletion, insertion or reordering breaks the chain at the first row it touches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from anjian.workflow.clock import utc_text
from anjian.workflow.store import scope
from anjian.workflow.store.evidence import attached
from anjian.workflow.store.models import AuditRow, EvidenceRow

GENESIS = "0" * 64
IN_CAMPAIGN = "in_campaign"  # the detail key naming the campaign a row changed, when not the first


@dataclass(frozen=True)
class Entry:
    """One change about to be audited."""

    at: dt.datetime
    actor: object  # a name, or an authz.Actor (whose admin, when acting as them, lands in detail["by"])
    action: str
    unit_code: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    note: str | None = None
    evidence: tuple[dict, ...] = ()
    detail: dict = field(default_factory=dict)


def canonical(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def row_hash(prev_hash: str, seq: int, at: str, actor: str, unit_code: str | None, action: str,
             from_state: str | None, to_state: str | None, note: str | None, evidence: str, detail: str) -> str:
    """The hash of one row: SHA-256 of the JSON array of its fields as stored (evidence and detail
    are stored as canonical JSON text, hashed as that text) and its predecessor's hash."""
    body = json.dumps([prev_hash, seq, at, actor, unit_code, action, from_state, to_state, note, evidence, detail],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def head(session: Session) -> tuple[int, str]:
    """The last sequence number and hash (0 and the genesis hash for an empty log)."""
    row = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
                          .execution_options(**{scope.EVERY_CAMPAIGN: True})).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def last_at(session: Session) -> str | None:
    """The stored time of the last row (None for an empty log)."""
    return session.scalar(select(AuditRow.at).order_by(AuditRow.seq.desc()).limit(1)
                          .execution_options(**{scope.EVERY_CAMPAIGN: True}))


def stamp(session: Session, now: dt.datetime) -> dt.datetime:
    """The time a change made now is stamped with: `now`, or the last row's time if the clock stepped
    back — as `append` stamps its audit row. A service that also stores the time in a table the log
    determines (a checklist value's `recorded_at`, a contact's `created_at`) takes it from here inside
    its write transaction, so that the table and the log agree."""
    from anjian.workflow.clock import from_utc_text

    last = last_at(session)
    return max(now, from_utc_text(last)) if last else now


def append(session: Session, entries: Iterable[Entry]) -> list[int]:
    """Chain and insert entries after the current head, and the evidence files they attach (one
    `evidence` row each); return their sequence numbers.

    Callers hold the write transaction (BEGIN IMMEDIATE or the advisory lock), so the head cannot move.
    """
    seq, prev = head(session)
    # A row is stamped no earlier than the row before it: a system clock stepped back (NTP, a VM
    # restored) must not make the log's times decrease, since deadlines and deductions are read from them.
    floor = last_at(session) or ""
    rows, files = [], []
    # A row written while working on a campaign other than the first names it (`rebuild.IN_CAMPAIGN`):
    # one chain for every campaign, each row saying whose state it changed.
    no = scope.resolved(session)
    named = {IN_CAMPAIGN: scope.campaign_id(session)} if no is not None and no != scope.FIRST else {}
    for e in entries:
        seq += 1
        at = floor = max(utc_text(e.at), floor)  # the stored form is fixed-width UTC: text order is time order
        actor = str(e.actor)
        by = getattr(e.actor, "by", None)
        evidence = canonical(list(e.evidence))
        detail = canonical({**e.detail, **named, "by": by} if by else {**e.detail, **named})
        h = row_hash(prev, seq, at, actor, e.unit_code, e.action, e.from_state, e.to_state, e.note, evidence, detail)
        rows.append({"seq": seq, "at": at, "actor": actor, "unit_code": e.unit_code, "action": e.action,
                     "from_state": e.from_state, "to_state": e.to_state, "note": e.note, "evidence": evidence,
                     "detail": detail, "prev_hash": prev, "hash": h,
                     "campaign_no": no if e.unit_code is not None else None})
        if e.evidence:
            files += attached(seq, e.unit_code, e.action, list(e.evidence), e.detail)
        prev = h
    if rows:
        session.execute(insert(AuditRow), rows)
    if files:  # in the same transaction as the rows that attach them
        session.execute(insert(EvidenceRow), files)
    return [r["seq"] for r in rows]


@dataclass(frozen=True)
class HistoryRow:
    seq: int
    at: str
    actor: str
    unit: str | None
    unit_name: str | None
    trigger: str
    from_state: str | None
    to_state: str | None
    note: str | None
    evidence: list[dict]
    detail: dict
    hash: str = ""  # the row's own hash, and its predecessor's it is chained to
    prev_hash: str = ""

    @property
    def effective_at(self) -> str:
        """The time the row counts from, stored form: for a late entry (补录) 00:00 Asia/Shanghai of the
        date its paper record says, else `at` (when it was written)."""
        return effective_at(self.at, self.detail)


def effective_at(at: str, detail: dict | str | None) -> str:
    """`at`, or for a row whose detail has "effective" (a late entry, 补录) 00:00 Shanghai of that date."""
    if isinstance(detail, str):
        detail = json.loads(detail or "{}") if '"effective"' in detail else {}
    day = (detail or {}).get("effective")
    if not day:
        return at
    from anjian.workflow.clock import SHANGHAI

    return utc_text(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), SHANGHAI))


def history(session: Session, unit_codes: list[str] | None = None, since: dt.datetime | None = None,
            actor: str | None = None, limit: int | None = None, *, until: dt.datetime | None = None,
            actions: list[str] | None = None, newest_first: bool = False, offset: int = 0) -> list[HistoryRow]:
    """Audit rows, oldest first (or newest first), filtered by unit(s), time (`since` ≤ at < `until`),
    actor and action; `offset` rows skipped, then at most `limit`."""
    from anjian.workflow.store.models import units_table

    q = select(AuditRow, units_table.c.name).outerjoin(units_table, units_table.c.code == AuditRow.unit_code)
    q = q.order_by(AuditRow.seq.desc() if newest_first else AuditRow.seq)
    if unit_codes is not None:
        q = q.where(AuditRow.unit_code.in_(unit_codes))
    if since is not None:
        q = q.where(AuditRow.at >= utc_text(since))
    if until is not None:
        q = q.where(AuditRow.at < utc_text(until))
    if actor is not None:
        q = q.where(AuditRow.actor == actor)
    if actions is not None:
        q = q.where(AuditRow.action.in_(actions))
    if scope.choice() is not None:  # a campaign named: its rows and the database's; else the whole chain
        q = q.execution_options(**scope.its_rows)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [
        HistoryRow(r.seq, r.at, r.actor, r.unit_code, name, r.action, r.from_state, r.to_state, r.note,
                   json.loads(r.evidence), json.loads(r.detail), r.hash, r.prev_hash)
        for r, name in session.execute(q)
    ]

