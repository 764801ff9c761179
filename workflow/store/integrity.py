"""Verifying the audit log: the hash chain, a signed checkpoint, and the units' states replayed.

The chain alone catches a row edited, deleted, inserted or moved — unless the whole tail was re-hashed,
or the newest rows were cut off. A checkpoint, signed with an Ed25519 key kept outside the database,
records the hash of every row up to it (8-byte prefixes), so `verify --checkpoint` also names the
first row of a truncation or of a wholesale re-hash. Replaying the log checks that every unit's state
is the one its last transition left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.workflow.clock import shown
from anjian.workflow.store.audit import GENESIS, row_hash
from anjian.workflow.store.checkpoints import PREFIX, Checkpoint
from anjian.workflow.store.evidence import attached
from anjian.workflow.store.models import AuditRow, EvidenceRow
from anjian.workflow.store.rebuild import Rebuild, machines_of


@dataclass(frozen=True)
class Verdict:
    """The outcome: rows read, the head, and the first bad row with why (modified, deleted, inserted,
    reordered, truncated, rewritten; a time earlier than the row before, a transition that does not
    follow from the unit's previous state; a unit whose state or version, or a table the log
    determines, differs from what the log implies; or evidence the evidence table does not hold as the
    log says)."""

    rows: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None
    kind: str | None = None
    checkpoint_seq: int | None = None
    notes: tuple[str, ...] = ()  # what the log could not determine (rows written before it was logged)

    @property
    def ok(self) -> bool:
        return self.bad_seq is None and self.kind is None


COLS = (AuditRow.seq, AuditRow.at, AuditRow.actor, AuditRow.unit_code, AuditRow.action, AuditRow.from_state,
        AuditRow.to_state, AuditRow.note, AuditRow.evidence, AuditRow.detail, AuditRow.prev_hash, AuditRow.hash,
        AuditRow.campaign_no)


def stream(session: Session, batch: int = 20000) -> Iterator[tuple]:
    """Audit rows in sequence order, in batches (keyset pagination: constant memory)."""
    session.flush()  # Core reads below skip the ORM's autoflush; pending rows must still be seen
    last = None
    while True:
        q = select(*COLS).order_by(AuditRow.seq).limit(batch)
        if last is not None:
            q = q.where(AuditRow.seq > last)
        chunk = session.connection().execute(q).all()  # Core rows: half the cost of the ORM's for plain columns
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0]


def _content_hash(row: tuple, seq: int, prev: str) -> str:
    _, at, actor, unit, action, frm, to, note, evidence, detail = row[:10]
    return row_hash(prev, seq, at, actor, unit, action, frm, to, note, evidence, detail)


def _explain(session: Session, row: tuple, before_prev: str | None) -> tuple[int, str, str]:
    """Why a row does not fit where it stands: (first bad seq, kind, words). A row that hashes as
    written at another seq was moved; which move it was is told by where it was written."""
    seq, h, prev_hash = row[0], row[11], row[10]
    if _content_hash(row, seq, prev_hash) == h:
        if before_prev is not None and prev_hash == before_prev:
            return seq - 1, "inserted", _("a row was inserted before it (it links past the row in front of it)")
        return seq, "reordered", _("its link to the previous row is broken (rows were moved or one was removed before it)")
    if _content_hash(row, seq - 1, prev_hash) == h:
        return seq - 1, "inserted", _("a row was inserted at {seq}: this row was {seq} and was pushed down").format(seq=seq - 1)
    if _content_hash(row, seq + 1, prev_hash) == h:
        # Written one further on: either the row here was deleted and the rest renumbered, or this row
        # and the next traded places; the next row tells which (a swapped one was written here).
        nxt = session.connection().execute(select(*COLS).where(AuditRow.seq == seq + 1)).first()
        if nxt is not None and _content_hash(nxt, seq, nxt[10]) == nxt[11]:
            return seq, "reordered", _("its link to row {before} is broken: rows {seq} and {after} traded places (reordered)").format(
            before=seq - 1, seq=seq, after=seq + 1)
        return seq, "deleted", _("the row at {seq} was deleted and the rows after it renumbered").format(seq=seq)
    origin = _find_origin(session, row)
    if origin is not None:
        # Earlier rows all verified, so this is the first row out of place even when it came from before.
        return seq, "reordered", _("this row was written as row {origin} (rows were reordered)").format(origin=origin)
    return seq, "modified", _("its content does not match its hash (modified)")


def _find_origin(session: Session, row: tuple, span: int = 64) -> int | None:
    """The sequence number a moved row was written at: just after the row its prev_hash names, just
    before the row that names its hash, or (if those moved too) searched near where it stands now."""
    seq, prev_hash, h = row[0], row[10], row[11]
    conn = session.connection()
    after = 0 if prev_hash == GENESIS else conn.execute(select(AuditRow.seq).where(AuditRow.hash == prev_hash)).scalar()
    before = conn.execute(select(AuditRow.seq).where(AuditRow.prev_hash == h).limit(1)).scalar()
    guesses = [after + 1] if after is not None else []
    guesses += [before - 1] if before is not None else []
    for s in [*guesses, *range(max(1, seq - span), seq + span + 1)]:
        if s != seq and _content_hash(row, s, prev_hash) == h:
            return s
    return None


def verify(session: Session, checkpoint: Checkpoint | None = None, replay: bool = True) -> Verdict:
    """Walk the chain from the first row and name the first row that does not fit; then compare with a
    checkpoint (if given), the units' states with what the log implies (if `replay`), and the evidence
    table with the files the log attaches."""
    expected, prev, before_prev, count = 1, GENESIS, None, 0
    known = checkpoint.prefixes if checkpoint else b""
    log = Rebuild(machines_of(session))  # what the log implies for the tables written beside it, by each campaign's machines
    files: list[dict] = []  # the evidence rows the log implies
    pending = None  # a row that makes no sense, reported unless the next row shows it was inserted
    for row in stream(session):
        seq, h = row[0], row[11]
        count += 1
        broken = None
        if seq != expected:
            broken = Verdict(count, seq, h, expected, _("rows {first}–{last} are missing (deleted)").format(
                first=expected, last=seq - 1), "deleted") \
                if seq > expected else Verdict(count, seq, h, seq, _("sequence out of order (reordered)"), "reordered")
        elif row[10] != prev or _content_hash(row, seq, prev) != h:
            bad, kind, words = _explain(session, row, before_prev)
            broken = Verdict(count, seq, h, bad, words, kind)
        elif known and seq <= checkpoint.seq and bytes.fromhex(h[: PREFIX * 2]) != known[(seq - 1) * PREFIX: seq * PREFIX]:
            broken = Verdict(count, seq, h, seq, _("differs from the signed checkpoint of {at} "
                                                 "(the log was modified and re-hashed from here on)").format(at=shown(checkpoint.at)), "rewritten", checkpoint.seq)
        if broken or pending:
            return pending if pending and (broken is None or pending.bad_seq < broken.bad_seq) else broken
        problem = log.feed(row)
        if problem:
            pending = Verdict(count, seq, h, problem.seq, problem.words, problem.kind, checkpoint.seq if checkpoint else None)
        if row[8] != "[]":
            files += attached(seq, row[3], row[4], json.loads(row[8]), json.loads(row[9]))
        before_prev, prev, expected = prev, h, seq + 1
    if pending:
        return pending
    head_seq = expected - 1
    if checkpoint is not None and head_seq < checkpoint.seq:
        return Verdict(count, head_seq, prev, head_seq + 1,
                       _("the log ends at row {head} but the checkpoint of {at} covers {seq} "
                         "(rows {first}–{seq} were cut off: truncated)").format(
                           head=head_seq, at=shown(checkpoint.at), seq=checkpoint.seq, first=head_seq + 1),
                       "truncated", checkpoint.seq)
    if replay:
        problem = log.compare(session)
        if problem:
            return Verdict(count, head_seq, prev, problem.seq, problem.words, problem.kind, checkpoint.seq if checkpoint else None)
    differs = _evidence_differs(session, files)
    if differs:
        return Verdict(count, head_seq, prev, differs[0], differs[1], "evidence", checkpoint.seq if checkpoint else None)
    return Verdict(count, head_seq, prev, checkpoint_seq=checkpoint.seq if checkpoint else None,
                   notes=tuple(log.notes) if replay else ())


EVIDENCE_COLS = (EvidenceRow.seq, EvidenceRow.position, EvidenceRow.unit_code, EvidenceRow.subject, EvidenceRow.path,
                 EvidenceRow.sha256)


def _evidence_differs(session: Session, implied: list[dict]) -> tuple[int, str] | None:
    """The first audit row whose evidence the `evidence` table does not hold as the log says, and why."""
    keys = ("seq", "position", "unit_code", "subject", "path", "sha256")
    want = iter(tuple(f[k] for k in keys) for f in implied)
    behind = _("(the evidence table was changed behind the log)")
    rows = session.connection().execute(select(*EVIDENCE_COLS).order_by(EvidenceRow.seq, EvidenceRow.position))
    for got in (tuple(r) for r in rows):
        expected = next(want, None)
        if expected == got:
            continue
        if expected is None or got[:2] < expected[:2]:
            return got[0], _("the evidence table lists {path} (SHA-256 {digest}…) as file {n} of this row, but the log "
                             "attaches no such file {behind}").format(path=got[4], digest=got[5][:12], n=got[1] + 1, behind=behind)
        if got[:2] > expected[:2]:
            return _lacking(expected, behind)
        what = _(", ").join(_("{column} {stored!r} where the log says {logged!r}").format(column=k, stored=g, logged=e)
                            for k, e, g in zip(keys, expected, got, strict=True) if e != g)
        return got[0], _("file {n} of this row in the evidence table has {what} {behind}").format(n=got[1] + 1, what=what,
                                                                                                  behind=behind)
    missing = next(want, None)
    return _lacking(missing, behind) if missing is not None else None


def _lacking(f: tuple, behind: str) -> tuple[int, str]:
    return f[0], _("the log attaches {path} (SHA-256 {digest}…) as file {n}, but the evidence table lacks it {behind}").format(
        path=f[4], digest=f[5][:12], n=f[1] + 1, behind=behind)


