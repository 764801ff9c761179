"""The `notices` listing: what was sent (or is waiting or failed), to whom, when, by which channel; and
settling the notices another pass left ambiguous, once an official has checked where they were written."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from anjian.i18n import _
from anjian.workflow.clock import utc_text
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Notice, NoticeItem, Unit

SETTLE_AS = ("sent", "resend")


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
    owner: str | None = None  # host:pid of the pass that claimed it last
    target: str | None = None  # where that pass wrote it


def unit_names(db: Database, codes: set[str] | list[str]) -> dict[str, str]:
    """The names of the units `codes` (a code not in the registry is left out)."""
    codes = sorted(set(codes))
    out: dict[str, str] = {}
    with db.read() as session:
        for part in pieces(session, codes):
            out.update((code, name) for code, name in session.execute(
                select(Unit.code, Unit.name).where(among(session, Unit.code, part))))
    return out


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
                           sorted({m for _, m in items[n.id]}), n.subject, n.owner, n.target) for n in rows]


@dataclass(frozen=True)
class Settled:
    """What `settle` decided: the notices marked sent (found where they were written) and those the next
    pass sends again."""

    sent: list[str]
    resend: list[str]


def settle(db: Database, ids: Sequence[str], how: str | Path, actor: Acting | str, now: dt.datetime) -> Settled:
    """Settle notices held as ambiguous (`ids`; empty: every one), after an official checked where they
    were written: `how` is "sent" (they went out: marked sent, not sent again), "resend" (they did not:
    the next pass sends them, flagged 可能重复发送) or an outbox folder, which decides each file notice by
    whether its finished file is there. All or none, in one audit row (`notice_settle`)."""
    actor = authz.acting(actor)
    with authz.refusals_audited(db, actor, now, "notices settle"), db.write() as session:
        authz.may(session, actor, "notices")
        held = dict(session.execute(select(Notice.id, Notice.channel).where(Notice.status == "ambiguous")).all())
        chosen = list(dict.fromkeys(ids)) or sorted(held)
        if not chosen:
            raise BadInput(_("there are no notices to check (ambiguous)"))
        problems = [_("{id}: not a notice to check (ambiguous) (anjian notices --status ambiguous lists them)").format(id=nid)
                    for nid in chosen if nid not in held]
        if isinstance(how, Path):
            problems += [_("{id}: sent by {channel}, not through the outbox: it cannot be checked with --outbox").format(
                id=nid, channel=held[nid]) for nid in chosen
                         if nid in held and held[nid] != "file"]
        if problems:
            raise BadInput(_("nothing done: {count} notice(s) cannot be settled this way; nothing was changed").format(
                count=len(problems)), problems)
        if isinstance(how, Path):
            sent = [nid for nid in chosen if (how / f"{nid}.eml").is_file()]
        else:
            sent = chosen if how == "sent" else []
        resend = [nid for nid in chosen if nid not in set(sent)]
        stamp = utc_text(now)
        _set(session, sent, status="sent", sent_at=stamp, ambiguous=0, last_error=None, next_attempt_at=None)
        _set(session, resend, status="retry", next_attempt_at=stamp, ambiguous=1, last_error=None)
        detail = {"sent": sent, "resend": resend, **({"outbox": str(how)} if isinstance(how, Path) else {})}
        audit.append(session, [audit.Entry(now, actor, "notice_settle", None, detail=detail)])
        return Settled(sent, resend)


def _set(session, ids: list[str], **values) -> None:
    for part in pieces(session, ids):
        session.execute(update(Notice).where(among(session, Notice.id, part), Notice.status == "ambiguous")
                        .values(**values).execution_options(synchronize_session=False))
