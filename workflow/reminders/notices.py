"""The `notices` listing: what was sent (or is waiting or failed), to whom, when, by which channel."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from anjian.workflow.engine.names import Resolver
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Notice, NoticeItem


@dataclass(frozen=True)
class NoticeView:
    id: str
    created_at: str
    sent_at: str | None
    recipient: str
    recipient_name: str
    channel: str
    kind: str
    status: str
    attempts: int
    ambiguous: bool
    last_error: str | None
    units: list[str]
    milestones: list[str]
    subject: str


def notices(db: Database, unit: str | None = None, status: str | None = None) -> list[NoticeView]:
    """What was sent (or is waiting or failed), to whom, when, by which channel."""
    with db.read() as session:
        q = select(Notice).order_by(Notice.created_at, Notice.id)
        if status:
            q = q.where(Notice.status == status)
        if unit:
            code = Resolver(session).resolve(unit).code
            q = q.where(Notice.id.in_(select(NoticeItem.notice_id).where(NoticeItem.unit_code == code)))
        rows = list(session.scalars(q))
        items: dict[str, list[tuple[str, str]]] = defaultdict(list)
        ids = [n.id for n in rows]
        for part in pieces(session, ids):
            for nid, u, m in session.execute(select(NoticeItem.notice_id, NoticeItem.unit_code, NoticeItem.milestone)
                                             .where(among(session, NoticeItem.notice_id, part))):
                items[nid].append((u, m))
        return [NoticeView(n.id, n.created_at, n.sent_at, n.recipient, n.recipient_name, n.channel, n.kind, n.status,
                           n.attempts, bool(n.ambiguous), n.last_error, sorted({u for u, _ in items[n.id]}),
                           sorted({m for _, m in items[n.id]}), n.subject) for n in rows]
