"""One reminder pass at `now`: work out what is due for whom, claim it, send it, mark it.

Exactly once: every (recipient, unit, milestone, rung) a notice carries is stored under a unique
constraint when the notice is claimed, before anything is sent; a second pass (or a second daemon)
cannot claim it again. A pass that died between claiming and marking leaves the notice `claimed`;
the next pass finishes it — the file outbox sees the finished file and does not write it twice. A
network channel cannot tell, so the one notice the dead pass had begun sending is sent again and
flagged `ambiguous` (可能重复发送); notices it never began are sent once, unflagged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anjian.notifications import faults
from anjian.notifications.channels import (
    FileOutbox,
    Outgoing,
    Permanent,
    SmtpChannel,
    SmtpConfig,
    Transient,
    WebhookChannel,
)
from anjian.notifications.render import NoticeLine, context, render

from .clock import from_utc_text, local_date, utc_text
from .db import Database
from .facts import FactsLoader
from .ladder import Ladder, latest_due, rung_order
from .models import Contact, Notice, NoticeItem, Unit
from .names import Resolver
from .progress import milestones
from .registry import campaign_in_force
from .settings import NotifySettings
from .workdays import WorkCalendar, load_office_calendar

WEBHOOK_LIMIT = 4000  # group robots refuse longer markdown (WeCom: 4096 bytes)
BACKOFF_MINUTES = (5, 30, 120, 720)  # then the notice is marked failed
MAX_ATTEMPTS = len(BACKOFF_MINUTES) + 1


@dataclass(frozen=True)
class Due:
    line: NoticeLine
    level: str
    parent_code: str | None


@dataclass(frozen=True)
class SentView:
    notice_id: str
    recipient: str
    channel: str
    units: list[str]
    milestones: list[str]
    kind: str
    status: str = "sent"
    error: str | None = None


@dataclass
class PassResult:
    now: str
    today: str
    workday: bool
    calendar: str
    dry_run: bool
    sent: list[SentView] = field(default_factory=list)
    failed: list[SentView] = field(default_factory=list)
    deferred: list[SentView] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def ladder_of(campaign) -> Ladder:
    """The campaign's reminder ladder (its `[reminders]` table)."""
    return Ladder(tuple(campaign.reminders.before), campaign.reminders.overdue_every)


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_dead(owner: str | None) -> bool:
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


def due_items(session: Session, now: dt.datetime, cal: WorkCalendar) -> list[Due]:
    """Every (unit, milestone) not met with the rung to send today, for townships and counties."""
    campaign = campaign_in_force(session)
    ladder = ladder_of(campaign)
    today = local_date(now)
    loader = FactsLoader(session, campaign, now)
    counties = list(session.scalars(select(Unit.code).where(Unit.level == "county")))
    loader.prefetch(counties)
    orphans = list(session.scalars(select(Unit.code).where(Unit.level == "township")))
    loader.prefetch(c for c in orphans if c not in loader.units)
    resolver = Resolver(session)
    resolver._units.update(loader.units)
    out: list[Due] = []
    names = {m.id: m.name for m in campaign.milestones}
    deadlines = {m.id: m.deadline for m in campaign.milestones}
    # The rung depends on the deadline and today only; each one walks the calendar week by week since
    # the deadline, so it is worked out once per milestone, not once per unit.
    rungs = {mid: latest_due(day, today, ladder, cal) for mid, day in deadlines.items()}
    for code, u in sorted(loader.units.items()):
        if u.level not in ("county", "township"):
            continue
        for m in milestones(loader.facts(code), campaign, today):
            if m.status == "met":
                continue
            rung = rungs[m.id]
            if rung is None:
                continue
            path = resolver.path(u)
            line = NoticeLine(code, path, m.id, names[m.id], deadlines[m.id], rung.name, rung.kind, m.days)
            out.append(Due(line, u.level, u.parent_code))
    return out


def _addresses(c: Contact, email_channel: str) -> list[tuple[str, str]]:
    out = []
    if c.email:
        out.append((email_channel, c.email))
    if c.webhook:
        out.append(("webhook", c.webhook))
    return out


@dataclass
class _Plan:
    channel: str
    address: str
    name: str
    unit_code: str
    lines: list[NoticeLine]

    @property
    def kind(self) -> str:
        return "overdue" if any(x.kind == "overdue" for x in self.lines) else "reminder"

    def key(self) -> str:
        items = sorted(f"{x.unit_code}|{x.milestone}|{x.rung}" for x in self.lines)
        return hashlib.sha256("\n".join([self.channel, self.address, *items]).encode("utf-8")).hexdigest()


def plan(session: Session, now: dt.datetime, cal: WorkCalendar, settings: NotifySettings) -> tuple[list[_Plan], list[dict]]:
    """Group what is due by recipient (one message each), leaving out what each already got."""
    campaign = campaign_in_force(session)
    ladder = ladder_of(campaign)
    dues = due_items(session, now, cal)
    supervisors: dict[str, str | None] = {}
    for d in dues:
        supervisors[d.line.unit_code] = d.parent_code if d.level == "township" else (campaign.city or d.parent_code)
    from .contacts import by_unit

    contacts = by_unit(session, sorted({d.line.unit_code for d in dues} | {s for s in supervisors.values() if s}))
    sent: dict[tuple[str, str, str], int] = {}
    milestone_ids = sorted({d.line.milestone for d in dues})
    if milestone_ids:
        for rec, unit, ms, rung in session.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone,
                                                          NoticeItem.rung).where(NoticeItem.milestone.in_(milestone_ids))):
            k = (rec, unit, ms)
            sent[k] = max(sent.get(k, -10**6), rung_order(rung, ladder))
    plans: dict[tuple[str, str], _Plan] = {}
    skipped: list[dict] = []
    for d in dues:
        targets = [(c, False) for c in contacts.get(d.line.unit_code, [])]
        sup = supervisors.get(d.line.unit_code)
        if d.line.kind == "overdue" and sup:
            sup_contacts = contacts.get(sup, [])
            targets += [(c, True) for c in sup_contacts]
            if not sup_contacts:
                skipped.append({"unit": sup, "for_unit": d.line.unit_code, "milestone": d.line.milestone,
                                "rung": d.line.rung, "reason": "no contact at the supervising unit for the overdue escalation"})
        if not contacts.get(d.line.unit_code):
            skipped.append({"unit": d.line.unit_code, "name": d.line.unit_path, "milestone": d.line.milestone,
                            "rung": d.line.rung, "reason": "no contact"})
        for c, _escalation in targets:
            for channel, address in _addresses(c, settings.channel):
                if sent.get((address, d.line.unit_code, d.line.milestone), -10**6) >= rung_order(d.line.rung, ladder):
                    continue
                p = plans.setdefault((channel, address), _Plan(channel, address, c.name, c.unit_code, []))
                if d.line not in p.lines:
                    p.lines.append(d.line)
    return list(plans.values()), skipped


def fit_markdown(text: str, limit: int, language: str = "zh") -> str:
    """Cut a robot message to `limit` bytes at a line boundary, saying how many lines were left out;
    the full list goes out by e-mail and stays in `anjian notices`."""
    if len(text.encode("utf-8")) <= limit:
        return text
    lines = text.rstrip("\n").split("\n")
    footer = lines[-1]
    kept: list[str] = []
    budget = limit - len(footer.encode("utf-8")) - 200
    for line in lines[:-1]:
        size = len(line.encode("utf-8")) + 1
        if size > budget:
            break
        kept.append(line)
        budget -= size
    left = sum(1 for line in lines[len(kept):-1] if line.startswith(">"))
    note = (f"> ……另有 {left} 项未列出，详见邮件通知或 anjian notices" if language == "zh"
            else f"> … {left} more item(s) not listed; see the e-mail or anjian notices")
    return "\n".join([*kept, note, footer]) + "\n"


def _notice_id(today: dt.date, key: str) -> str:
    return f"{today:%Y%m%d}-{key[:16]}"


def run_pass(db: Database, now: dt.datetime, settings: NotifySettings, outbox: FileOutbox | os.PathLike | str,
             dry_run: bool = False, retry_only: bool = False) -> PassResult:
    """One reminder pass: finish what an earlier pass left, then claim, send and mark what is due.

    With `retry_only` it only finishes leftovers and due retries (the daemon's frequent job), so new
    reminders still go out at the daily time.
    """
    outbox = outbox if isinstance(outbox, FileOutbox) else FileOutbox(outbox)
    today = local_date(now)
    with db.read() as session:
        cal = load_office_calendar(session)
        campaign = campaign_in_force(session)
        workday = cal.is_workday(today)
        result = PassResult(now.isoformat(), today.isoformat(), workday, cal.source(today.year), dry_run)
        if retry_only:
            plans: list[_Plan] = []
        elif not workday:
            result.skipped.append({"reason": f"{today} 不是工作日（{cal.source(today.year)}）：不发送新的提醒"})
            plans = []
        else:
            plans, skipped = plan(session, now, cal, settings)
            result.skipped.extend(skipped)
        unit_names = {p.unit_code: Resolver(session).path(session.get(Unit, p.unit_code)) for p in plans}
    channels = _channels(settings, outbox)
    if dry_run:
        for p in plans:
            result.sent.append(SentView(_notice_id(today, p.key()), p.address, p.channel,
                                        sorted({x.unit_code for x in p.lines}), sorted({x.milestone for x in p.lines}), p.kind,
                                        status="planned"))
        return result
    _finish_leftovers(db, now, settings, channels, result)
    claimed = _claim(db, now, today, plans, unit_names, campaign, settings)
    faults.point("after_claim")
    for notice_id in claimed:
        _deliver(db, now, notice_id, channels, result, settings)
    return result


def _channels(settings: NotifySettings, outbox: FileOutbox) -> dict:
    smtp = SmtpChannel(SmtpConfig(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_user,
                                  settings.smtp_password))
    return {"file": outbox, "smtp": smtp, "webhook": WebhookChannel(settings.webhook_timeout, settings.webhook_style)}


def _claim(db: Database, now: dt.datetime, today: dt.date, plans: list[_Plan], unit_names: dict[str, str],
           campaign, settings: NotifySettings) -> list[str]:
    """Insert the notices and their items; a plan someone else claimed meanwhile is dropped."""
    rows, items = [], []
    for p in plans:
        key = p.key()
        nid = _notice_id(today, key)
        ctx = context(nid, p.kind, p.name, unit_names[p.unit_code], sorted(p.lines, key=lambda x: (x.kind != "overdue", x.deadline, x.unit_code)),
                      campaign.title, campaign.issuer, today, settings.language)
        r = render(ctx, settings.language)
        markdown = fit_markdown(r.markdown, WEBHOOK_LIMIT, settings.language)
        rows.append({"id": nid, "key": key, "recipient": p.address, "recipient_name": p.name, "channel": p.channel,
                     "kind": p.kind, "language": settings.language, "subject": r.subject,
                     "body": markdown if p.channel == "webhook" else r.text, "html": None if p.channel == "webhook" else r.html,
                     "status": "claimed", "attempts": 0, "next_attempt_at": None, "created_at": utc_text(now),
                     "sent_at": None, "last_error": None, "ambiguous": 0, "owner": owner_tag()})
        items.append([{"notice_id": nid, "recipient": p.address, "unit_code": x.unit_code, "milestone": x.milestone,
                       "rung": x.rung, "rung_date": today.isoformat()} for x in p.lines])
    if not rows:
        return []
    try:
        with db.write() as session:
            session.execute(insert(Notice), rows)
            session.execute(insert(NoticeItem), [i for group in items for i in group])
        return [r["id"] for r in rows]
    except IntegrityError:
        pass  # another pass claimed some of these meanwhile: claim one by one, keeping what is still free
    claimed = []
    for row, group in zip(rows, items, strict=True):
        try:
            with db.write() as session:
                session.execute(insert(Notice), [row])
                session.execute(insert(NoticeItem), group)
            claimed.append(row["id"])
        except IntegrityError:
            continue
    return claimed


def _outgoing(n: Notice, now: dt.datetime, sender: str) -> Outgoing:
    return Outgoing(n.id, n.recipient, n.recipient_name, n.subject, n.body, n.html, n.body, sender,
                    from_utc_text(n.created_at).astimezone(now.tzinfo) if n.created_at else now)


def _deliver(db: Database, now: dt.datetime, notice_id: str, channels: dict, result: PassResult,
             settings: NotifySettings) -> None:
    """Send one claimed notice and mark the outcome.

    A network channel cannot tell whether a message a dead pass began sending went out, so the attempt
    is recorded before sending (`ambiguous` set; `_mark` puts back what it was before); a pass that
    finds the record left by a dead one resends and keeps the flag. The file outbox needs no record:
    it sees a finished file and does not write it twice."""
    with db.read() as session:
        n = session.get(Notice, notice_id)
        units = sorted(set(session.scalars(select(NoticeItem.unit_code).where(NoticeItem.notice_id == notice_id))))
        ms = sorted(set(session.scalars(select(NoticeItem.milestone).where(NoticeItem.notice_id == notice_id))))
    channel = channels[n.channel]
    view = dict(notice_id=n.id, recipient=n.recipient, channel=n.channel, units=units, milestones=ms, kind=n.kind)
    ambiguous = bool(n.ambiguous)  # an attempt a dead pass began (or an earlier one's flag): this send may double it
    if n.channel != "file" and not ambiguous:
        _begin_attempt(db, notice_id)
    try:
        channel.send(_outgoing(n, now, settings.sender))
    except Transient as exc:
        attempts = n.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            _mark(db, notice_id, "failed", now, attempts, str(exc), None, ambiguous)
            result.failed.append(SentView(**view, status="failed", error=str(exc)))
        else:
            retry_at = now + dt.timedelta(minutes=BACKOFF_MINUTES[attempts - 1])
            _mark(db, notice_id, "retry", now, attempts, str(exc), retry_at, ambiguous)
            result.deferred.append(SentView(**view, status="retry", error=str(exc)))
        return
    except Permanent as exc:
        _mark(db, notice_id, "failed", now, n.attempts + 1, str(exc), None, ambiguous)
        result.failed.append(SentView(**view, status="failed", error=str(exc)))
        return
    faults.point("after_send")
    _mark(db, notice_id, "sent", now, n.attempts + 1, None, None, ambiguous)
    result.sent.append(SentView(**view))


def _mark(db: Database, notice_id: str, status: str, now: dt.datetime, attempts: int, error: str | None,
          retry_at: dt.datetime | None, ambiguous: bool) -> None:
    with db.write() as session:
        values = {"status": status, "attempts": attempts, "last_error": error,
                  "next_attempt_at": utc_text(retry_at) if retry_at else None}
        if status == "sent":
            values["sent_at"] = utc_text(now)
        values["ambiguous"] = 1 if ambiguous else 0  # clears the mark of an attempt that ended here
        session.execute(update(Notice).where(Notice.id == notice_id).values(**values))


def _begin_attempt(db: Database, notice_id: str) -> None:
    """Record, before a network send, that it may go out: if this pass dies before `_mark`, the next
    one knows this notice (and only this one) may reach its recipient twice."""
    with db.write() as session:
        session.execute(update(Notice).where(Notice.id == notice_id).values(ambiguous=1))


def _finish_leftovers(db: Database, now: dt.datetime, settings: NotifySettings, channels: dict, result: PassResult) -> None:
    """Notices a dead pass claimed but never marked, and retries whose time has come."""
    lease = utc_text(now - dt.timedelta(minutes=settings.lease_minutes))
    with db.read() as session:
        rows = session.execute(select(Notice.id, Notice.status, Notice.owner, Notice.created_at, Notice.next_attempt_at)
                               .where(Notice.status.in_(("claimed", "retry"))).order_by(Notice.id)).all()
    for nid, status, owner, created, retry_at in rows:
        due_retry = status == "retry" and retry_at and retry_at <= utc_text(now)
        orphan = status == "claimed" and (_owner_dead(owner) or created <= lease)
        if (due_retry or orphan) and _take_over(db, nid, status, owner):
            _deliver(db, now, nid, channels, result, settings)


def _take_over(db: Database, notice_id: str, seen_status: str, seen_owner: str | None) -> bool:
    """Claim a leftover notice for this pass, atomically: of two passes that saw it, one wins."""
    with db.write() as session:
        changed = session.execute(
            update(Notice).where(Notice.id == notice_id, Notice.status == seen_status,
                                 Notice.owner.is_not_distinct_from(seen_owner))
            .values(status="claimed", owner=owner_tag()).execution_options(synchronize_session=False)).rowcount
    return changed == 1


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
        for i in range(0, len(ids), 900):
            for nid, u, m in session.execute(select(NoticeItem.notice_id, NoticeItem.unit_code, NoticeItem.milestone)
                                             .where(NoticeItem.notice_id.in_(ids[i:i + 900]))):
                items[nid].append((u, m))
        return [NoticeView(n.id, n.created_at, n.sent_at, n.recipient, n.recipient_name, n.channel, n.kind, n.status,
                           n.attempts, bool(n.ambiguous), n.last_error, sorted({u for u, _ in items[n.id]}),
                           sorted({m for _, m in items[n.id]}), n.subject) for n in rows]
