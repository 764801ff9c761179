"""One reminder pass at `now`: work out what is due for whom, claim it, send it, mark it.

Exactly once: every (recipient, unit, milestone, rung) a notice carries is stored under a unique
constraint when the notice is claimed, before anything is sent; a second pass (or a second daemon)
cannot claim it again. A pass that died between claiming and marking leaves the notice `claimed`;
the next pass finishes it — the file outbox sees the finished file and does not write it twice. A
network channel cannot tell, so the one notice the dead pass had begun sending is sent again and
flagged `ambiguous` (可能重复发送); notices it never began are sent once, unflagged.

In chunks: a national pass has tens of thousands of notices, so the pass claims a chunk of them at a
time (ANJIAN_REMIND_CHUNK, default 5000) in one transaction, which stores what each says (its content:
the data its templates render, a few hundred bytes) and its items. Under the database's write lock
(BEGIN IMMEDIATE on SQLite, an advisory transaction lock on PostgreSQL) the chunk is inserted whole;
if a peer daemon claimed one of its items since the pass looked, the items' key refuses it and the
notices still free are claimed, so several daemons on one PostgreSQL database each claim different
notices and every notice goes out once. The file outbox's writer process renders and writes each
chunk (one sync of the disk for all it has waiting) while the pass claims the next; a chunk is marked
sent in the transaction of a later claim. A network channel still records each attempt before it
sends and marks each notice after, which is what its `ambiguous` flag needs.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import os
import socket
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anjian.notifications import faults
from anjian.notifications.channels import (
    FileOutbox,
    OutboxWriter,
    Outgoing,
    Permanent,
    SmtpChannel,
    SmtpConfig,
    Transient,
    WebhookChannel,
    email_parts,
)
from anjian.notifications.render import NoticeLine, content, context, parts_of, render_parts
from anjian.states.milestones import milestones
from anjian.workflow.clock import from_utc_text, local_date, utc_text
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput
from anjian.workflow.reminders.ladder import Ladder, latest_due, rung_order
from anjian.workflow.reminders.workdays import WorkCalendar, load_office_calendar
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.models import Contact, Notice, NoticeContent, NoticeItem, Unit

WEBHOOK_LIMIT = 4000  # group robots refuse longer markdown (WeCom: 4096 bytes)
BACKOFF_MINUTES = (5, 30, 120, 720)  # then the notice is marked failed
MAX_ATTEMPTS = len(BACKOFF_MINUTES) + 1
CHUNK = 5000  # notices claimed in one transaction (ANJIAN_REMIND_CHUNK): each claim rewrites index pages
# of the notices before it: a national pass in chunks of 1000 wrote 680 MB to SQLite's files, of 5000, 320 MB
WRITE_CHUNK = 1000  # notices handed to the outbox writer at a time
EMAIL_PARTS = ("subject", "text", "html")
ROBOT_PARTS = ("subject", "markdown")


def chunk_size() -> int:
    """Notices per chunk: ANJIAN_REMIND_CHUNK, or 5000."""
    text = os.environ.get("ANJIAN_REMIND_CHUNK", "").strip()
    if not text:
        return CHUNK
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise BadInput(f"ANJIAN_REMIND_CHUNK must be a whole number of notices, at least 1, not {text!r}")
    return int(text)


def _chunks(seq: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


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

    def as_json(self) -> dict:
        return {"notice_id": self.notice_id, "recipient": self.recipient, "channel": self.channel,
                "units": list(self.units), "milestones": list(self.milestones), "kind": self.kind,
                "status": self.status, "error": self.error}


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
        # by hand: dataclasses.asdict deep-copies every one of a national pass's ~100,000 entries
        return {"now": self.now, "today": self.today, "workday": self.workday, "calendar": self.calendar,
                "dry_run": self.dry_run, "sent": [s.as_json() for s in self.sent],
                "failed": [s.as_json() for s in self.failed], "deferred": [s.as_json() for s in self.deferred],
                "skipped": [dict(s) for s in self.skipped]}


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


class _Paths:
    """Units' names with their ancestors in front (as `Resolver.path` gives them), from one query for
    every unit above the townships and the units already loaded: no query per unit."""

    def __init__(self, session: Session, units: dict[str, Unit]):
        self.session = session
        self.rows: dict[str, tuple[str, str | None]] = {c: (u.name, u.parent_code) for c, u in units.items()}
        for code, name, parent in session.execute(select(Unit.code, Unit.name, Unit.parent_code)
                                                  .where(Unit.level != "township")):
            self.rows.setdefault(code, (name, parent))
        self.memo: dict[str, str] = {}

    def ensure(self, codes: Iterable[str]) -> None:
        missing = sorted({c for c in codes if c not in self.rows})
        for part in pieces(self.session, missing):
            for code, name, parent in self.session.execute(select(Unit.code, Unit.name, Unit.parent_code)
                                                           .where(among(self.session, Unit.code, part))):
                self.rows[code] = (name, parent)

    def path(self, code: str) -> str:
        if code not in self.memo:
            name, parent = self.rows[code]
            names, seen = [name], set()
            while parent is not None and parent in self.rows and parent not in seen:
                seen.add(parent)
                name, parent_next = self.rows[parent]
                names.append(name)
                parent = parent_next
            self.memo[code] = "".join(reversed(names))
        return self.memo[code]


def _due(session: Session, now: dt.datetime, cal: WorkCalendar) -> tuple[list[Due], _Paths]:
    campaign = campaign_in_force(session)
    ladder = ladder_of(campaign)
    today = local_date(now)
    loader = FactsLoader(session, campaign, now, plain=True)
    # Every county with its townships and their facts, then the townships without a county, each in a
    # few set-based queries (FactsLoader.prefetch): none per unit.
    counties = list(session.scalars(select(Unit.code).where(Unit.level == "county")))
    loader.prefetch(counties)
    orphans = list(session.scalars(select(Unit.code).where(Unit.level == "township")))
    loader.prefetch(c for c in orphans if c not in loader.units)
    paths = _Paths(session, loader.units)
    out: list[Due] = []
    names = {m.id: m.name for m in campaign.milestones}
    deadlines = {m.id: m.deadline for m in campaign.milestones}
    # The rung depends on the deadline and today only; each one walks the calendar week by week since
    # the deadline, so it is worked out once per milestone, not once per unit.
    rungs = {mid: latest_due(day, today, ladder, cal) for mid, day in deadlines.items()}
    # Where every township rule of the campaign is met by states alone (chengde-2014's are), a township's
    # milestones follow from its state and cohorts: worked out once per such pair, not 40,000 times.
    by_state = all(r.states and not r.when_has for m in campaign.milestones for r in m.rules if r.level == "township")
    seen: dict[tuple[str | None, frozenset[str]], list] = {}
    for code, u in sorted(loader.units.items()):
        if u.level not in ("county", "township"):
            continue
        if by_state and u.level == "township":
            key = (loader.state(code), frozenset(loader.cohorts.get(code, ())))
            if key not in seen:
                seen[key] = milestones(loader.facts(code), campaign, today)
            statuses = seen[key]
        else:
            statuses = milestones(loader.facts(code), campaign, today)
        for m in statuses:
            if m.status == "met":
                continue
            rung = rungs[m.id]
            if rung is None:
                continue
            line = NoticeLine(code, paths.path(code), m.id, names[m.id], deadlines[m.id], rung.name, rung.kind, m.days)
            out.append(Due(line, u.level, u.parent_code))
    return out, paths


def due_items(session: Session, now: dt.datetime, cal: WorkCalendar) -> list[Due]:
    """Every (unit, milestone) not met with the rung to send today, for townships and counties."""
    return _due(session, now, cal)[0]


def _contacts_by_unit(session: Session, codes: list[str]) -> dict[str, list]:
    """The contacts of these units as plain rows (unit_code, name, email, webhook), in id order."""
    out: dict[str, list] = {}
    for part in pieces(session, codes):
        for c in session.execute(select(Contact.unit_code, Contact.name, Contact.email, Contact.webhook)
                                 .where(among(session, Contact.unit_code, part)).order_by(Contact.id)):
            out.setdefault(c.unit_code, []).append(c)
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
    unit_path: str = ""
    _has: set[NoticeLine] = field(default_factory=set, repr=False)

    def add(self, line: NoticeLine) -> None:
        if line not in self._has:
            self._has.add(line)
            self.lines.append(line)

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
    dues, paths = _due(session, now, cal)
    supervisors: dict[str, str | None] = {}
    for d in dues:
        supervisors[d.line.unit_code] = d.parent_code if d.level == "township" else (campaign.city or d.parent_code)
    contacts = _contacts_by_unit(session, sorted({d.line.unit_code for d in dues} | {s for s in supervisors.values() if s}))
    order: dict[str, int] = {}

    def rank(rung: str) -> int:
        if rung not in order:
            order[rung] = rung_order(rung, ladder)
        return order[rung]

    sent: dict[tuple[str, str, str], int] = {}
    milestone_ids = sorted({d.line.milestone for d in dues})
    if milestone_ids:
        for rec, unit, ms, rung in session.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone,
                                                          NoticeItem.rung).where(NoticeItem.milestone.in_(milestone_ids))):
            k = (rec, unit, ms)
            sent[k] = max(sent.get(k, -10**6), rank(rung))
    plans: dict[tuple[str, str], _Plan] = {}
    skipped: list[dict] = []
    for d in dues:
        line = d.line
        own = contacts.get(line.unit_code, [])
        targets = list(own)
        sup = supervisors.get(line.unit_code)
        if line.kind == "overdue" and sup:
            sup_contacts = contacts.get(sup, [])
            targets += sup_contacts
            if not sup_contacts:
                skipped.append({"unit": sup, "for_unit": line.unit_code, "milestone": line.milestone,
                                "rung": line.rung, "reason": "no contact at the supervising unit for the overdue escalation"})
        if not own:
            skipped.append({"unit": line.unit_code, "name": line.unit_path, "milestone": line.milestone,
                            "rung": line.rung, "reason": "no contact"})
        due_rank = rank(line.rung)
        for c in targets:
            for channel, address in _addresses(c, settings.channel):
                if sent.get((address, line.unit_code, line.milestone), -10**6) >= due_rank:
                    continue
                p = plans.get((channel, address))
                if p is None:
                    p = plans[(channel, address)] = _Plan(channel, address, c.name, c.unit_code, [])
                p.add(line)
    out = list(plans.values())
    paths.ensure(p.unit_code for p in out)
    for p in out:
        p.unit_path = paths.path(p.unit_code)
    return out, skipped


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


@dataclass
class _Ready:
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


def run_pass(db: Database, now: dt.datetime, settings: NotifySettings, outbox: FileOutbox | os.PathLike | str,
             dry_run: bool = False, retry_only: bool = False) -> PassResult:
    """One reminder pass: finish what an earlier pass left, then claim, send and mark what is due.

    With `retry_only` it only finishes leftovers and due retries (the daemon's frequent job), so new
    reminders still go out at the daily time.
    """
    outbox = outbox if isinstance(outbox, FileOutbox) else FileOutbox(outbox)
    size = chunk_size()
    started = time.monotonic()

    def clock() -> dt.datetime:
        """The pass's time as it runs: `now` at its start. A chunk's claim is stamped with the time it is
        made, not the pass's start, so the lease that lets another machine take over a dead pass's
        claims does not expire while a long pass is alive; a notice is marked with when it was sent."""
        return now + dt.timedelta(seconds=time.monotonic() - started)

    today = local_date(now)
    with _gc_paused(), ExitStack() as stack:
        with db.read() as session:
            cal = load_office_calendar(session)
            campaign = campaign_in_force(session)
            workday = cal.is_workday(today)
            result = PassResult(now.isoformat(), today.isoformat(), workday, cal.source(today.year), dry_run)
            writer = None
            if not (dry_run or retry_only) and workday and settings.channel == "file" and _mailboxes(session) > size:
                writer = OutboxWriter.start(outbox)  # a pass of many chunks: one is written while the next is claimed
                if writer is not None:
                    stack.callback(writer.close)
            if retry_only:
                plans: list[_Plan] = []
            elif not workday:
                result.skipped.append({"reason": f"{today} 不是工作日（{cal.source(today.year)}）：不发送新的提醒"})
                plans = []
            else:
                plans, skipped = plan(session, now, cal, settings)
                result.skipped.extend(skipped)
        if dry_run:
            for p in plans:
                result.sent.append(SentView(_notice_id(today, p.key()), p.address, p.channel,
                                            sorted({x.unit_code for x in p.lines}), sorted({x.milestone for x in p.lines}),
                                            p.kind, status="planned"))
            return result
        delivery = _Delivery(db, now, clock, _channels(settings, outbox), result, settings, writer)
        _finish_leftovers(db, now, settings, delivery.send, size)
        for part in _chunks(plans, size):
            marks = delivery.written()  # the chunks the writer has finished are marked with this claim
            ready = _claim(db, clock(), today, part, campaign, settings, marks)
            _report(result, marks)
            faults.point("after_claim")
            delivery.send(ready)
        delivery.finish()
    return result


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the pass: at national scale its full collections walk the
    million objects the pass holds, over a second in all, and find nothing (a pass makes no garbage
    cycles worth collecting before it ends); it is back on afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _mailboxes(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Contact).where(Contact.email.is_not(None))) or 0


def _channels(settings: NotifySettings, outbox: FileOutbox) -> dict:
    smtp = SmtpChannel(SmtpConfig(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_user,
                                  settings.smtp_password))
    return {"file": outbox, "smtp": smtp, "webhook": WebhookChannel(settings.webhook_timeout, settings.webhook_style)}


@dataclass
class _Staged:
    row: dict  # notices
    said: dict  # notice_contents
    items: list[dict]  # notice_items
    ready: _Ready


@dataclass(frozen=True)
class _Stamp:
    """What every notice of a pass shares: its day, its time and who claims it."""

    today: dt.date
    day: str  # the notice id's prefix, 20161201
    day_iso: str  # 2016-12-01
    created: str
    owner: str

    @classmethod
    def of(cls, now: dt.datetime, today: dt.date) -> _Stamp:
        return cls(today, f"{today:%Y%m%d}", today.isoformat(), utc_text(now), owner_tag())


def _stage(p: _Plan, stamp: _Stamp, campaign, settings: NotifySettings) -> _Staged:
    """Stage one planned notice: its subject rendered, what it says as content (its text and HTML are
    rendered where it is sent, by the outbox writer for a file), and the rows that claim it."""
    key = p.key()
    nid = f"{stamp.day}-{key[:16]}"  # _notice_id
    today = stamp.today
    kind = p.kind
    lines = sorted(p.lines, key=lambda x: (x.kind != "overdue", x.deadline, x.unit_code))
    args = (nid, kind, p.name, p.unit_path, lines, campaign.title, campaign.issuer, today, settings.language)
    subject = render_parts(context(*args), settings.language, ("subject",))["subject"]
    stored = content(*args)
    created = stamp.created
    row = {"id": nid, "key": key, "recipient": p.address, "recipient_name": p.name, "channel": p.channel,
           "kind": kind, "language": settings.language, "subject": subject, "status": "claimed",
           "attempts": 0, "next_attempt_at": None, "created_at": created,
           "sent_at": None, "last_error": None, "ambiguous": 0, "owner": stamp.owner}
    said = {"notice_id": nid, "content": stored, "body": None, "html": None}
    day = stamp.day_iso
    items = [{"notice_id": nid, "recipient": p.address, "unit_code": x.unit_code, "milestone": x.milestone,
              "rung": x.rung, "rung_date": day} for x in p.lines]
    ready = _Ready(nid, p.channel, p.address, p.name, kind, subject, stored, None, None, created, 0, False,
                   sorted({x.unit_code for x in p.lines}), sorted({x.milestone for x in p.lines}))
    return _Staged(row, said, items, ready)


def body_of(channel: str, stored: str | None, body: str | None = None, html: str | None = None) -> tuple[str, str | None]:
    """The text (a group robot's markdown, cut to fit) and HTML a notice is sent with: rendered from its
    stored content, or as stored by a pass before schema 0004."""
    if channel == "webhook" and stored is not None:
        language = json.loads(stored)["language"]
        return fit_markdown(parts_of(stored, ("markdown",))["markdown"], WEBHOOK_LIMIT, language), None
    return email_parts(stored, body, html)


Item = tuple[str, str, str]  # unit, milestone, rung


def _taken(session: Session, wanted: list[tuple[str, list[Item]]]) -> set[int]:
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


def _stage_chunk(now: dt.datetime, today: dt.date, plans: Sequence[_Plan], campaign,
               settings: NotifySettings) -> list[_Staged]:
    """Stage a chunk of planned notices into the rows that claim them. (Whether a peer daemon claimed one
    meanwhile is found when the chunk is claimed: looking first cost a national pass 0.7 s on PostgreSQL,
    and staging a notice, its text left to the writer, costs next to nothing.)"""
    stamp = _Stamp.of(now, today)
    staged = [_stage(p, stamp, campaign, settings) for p in plans]
    # A template that cannot render these notices fails the pass here, before any is claimed, not when
    # they are sent: the first of each channel is rendered whole now.
    for channel in {s.ready.channel for s in staged}:
        first = next(s for s in staged if s.ready.channel == channel)
        body_of(channel, first.said["content"])
    return staged


def _claim(db: Database, now: dt.datetime, today: dt.date, plans: Sequence[_Plan], campaign,
           settings: NotifySettings, marks: Sequence[_Mark] = ()) -> list[_Ready]:
    """Render and claim a chunk of planned notices (see `_claim_staged`)."""
    return _claim_staged(db, _stage_chunk(now, today, plans, campaign, settings), marks)


def _claim_staged(db: Database, staged: list[_Staged], marks: Sequence[_Mark] = ()) -> list[_Ready]:
    """Claim a chunk of staged notices in one transaction (which also marks `marks`, notices whose files
    are durable: one transaction a chunk, not two); a notice with an item someone else claimed meanwhile
    (another daemon) is dropped whole, as the unique key would drop it.

    Under the write lock (BEGIN IMMEDIATE; on PostgreSQL an advisory transaction lock) no other pass
    claims. The chunk is inserted whole, in a savepoint: the items' primary key refuses it if a peer
    claimed one of its items since this pass planned, and only then is each notice checked (checking
    every chunk cost a national pass 0.6 s on PostgreSQL, to find nothing)."""
    try:
        with db.write() as session:
            _apply(session, marks)
            try:
                with session.begin_nested():
                    _insert_staged(session, staged)
                free = staged
            except IntegrityError:
                taken = _taken(session, [(s.row["recipient"], [(i["unit_code"], i["milestone"], i["rung"]) for i in s.items])
                                         for s in staged])
                free = [s for i, s in enumerate(staged) if i not in taken]
                _insert_staged(session, free)
        return [s.ready for s in free]
    except IntegrityError:
        pass  # a writer that bypassed the lock: claim one by one, keeping what is still free
    if marks:
        with db.write() as session:
            _apply(session, marks)
    claimed = []
    for s in staged:
        try:
            with db.write() as session:
                _insert_staged(session, [s])
            claimed.append(s.ready)
        except IntegrityError:
            continue
    return claimed


def _insert_staged(session: Session, staged: Sequence[_Staged]) -> None:
    _insert(session, Notice.__table__, [s.row for s in staged])
    _insert(session, NoticeContent.__table__, [s.said for s in staged])
    _insert(session, NoticeItem.__table__, [i for s in staged for i in s.items])


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


def _dated(n: _Ready, now: dt.datetime, times: dict[str, dt.datetime]) -> dt.datetime:
    """When a claimed notice was claimed, which its message is dated (`times` keeps the parsed times of a
    chunk, which share one)."""
    if n.created_at not in times:
        times[n.created_at] = from_utc_text(n.created_at).astimezone(now.tzinfo) if n.created_at else now
    return times[n.created_at]


def _outgoing(n: _Ready, now: dt.datetime, sender: str, times: dict[str, dt.datetime] | None = None) -> Outgoing:
    """The message of a claimed notice, rendered, dated when it was claimed."""
    text, html = body_of(n.channel, n.content, n.body, n.html)
    return Outgoing(n.id, n.recipient, n.recipient_name, n.subject, text, html, text, sender, _dated(n, now, {} if times is None else times))


def _letters(ready: list[_Ready], now: dt.datetime, sender: str) -> list[tuple]:
    """A chunk of e-mails for the outbox writer, which renders them (the arguments of `email_outgoing`)."""
    times: dict[str, dt.datetime] = {}
    return [(n.id, n.recipient, n.recipient_name, n.subject, n.content, n.body, n.html, sender, _dated(n, now, times))
            for n in ready]


class _Delivery:
    """Sends claimed chunks: network notices one by one, marked as each goes; file-outbox chunks written
    here and marked at once — or, in a pass of many chunks, by the writer process, which writes chunk k
    while this process renders and claims the chunks after it (up to `OutboxWriter.DEPTH` handed over
    and not yet collected), and whose finished chunks are then marked in the transaction that claims
    the next (`written`)."""

    def __init__(self, db: Database, now: dt.datetime, clock: Callable[[], dt.datetime], channels: dict,
                 result: PassResult, settings: NotifySettings, writer: OutboxWriter | None):
        self.db, self.now, self.clock, self.channels, self.result = db, now, clock, channels, result
        self.settings = settings
        self.writer = writer
        self.inflight: deque[list[_Ready]] = deque()  # chunks handed to the writer, oldest first
        self.pending: list[_Mark] = []  # written and durable, not marked yet

    def _messages(self, ready: list[_Ready]) -> list[Outgoing]:
        times: dict[str, dt.datetime] = {}
        return [_outgoing(n, self.now, self.settings.sender, times) for n in ready]

    def send(self, ready: list[_Ready]) -> None:
        files = [n for n in ready if n.channel == "file"]
        if files and self.writer is not None and not self.writer.usable():
            self.writer = None
        if files and self.writer is None:
            marks = _marks(files, self.channels["file"].send_many(self._messages(files)), self.now, self.clock())
            with self.db.write() as session:
                _apply(session, marks)
            _report(self.result, marks)
        elif files:
            for part in _chunks(files, WRITE_CHUNK):
                self.writer.submit(_letters(part, self.now, self.settings.sender))
                self.inflight.append(part)
                self._collect(self.writer.DEPTH)
        for n in ready:
            if n.channel != "file":
                _deliver_one(self.db, self.now, n, self.channels[n.channel], self.result, self.settings, self.clock)

    def _collect(self, keep: int = 0) -> None:
        """Wait for the writer's oldest chunks until at most `keep` are under way."""
        while len(self.inflight) > keep:
            files = self.inflight.popleft()
            self.pending += _marks(files, self.writer.collect(), self.now, self.clock())

    def written(self) -> list[_Mark]:
        """The marks of what the writer has finished, for the caller's next transaction to apply."""
        marks, self.pending = self.pending, []
        return marks

    def finish(self) -> None:
        """Wait for the writer's last chunk and mark what is left."""
        self._collect()
        marks = self.written()
        if marks:
            with self.db.write() as session:
                _apply(session, marks)
            _report(self.result, marks)


@dataclass(frozen=True)
class _Mark:
    """The outcome of writing one notice: sent, or the row values of a failed attempt."""

    notice: _Ready
    status: str  # sent | retry | failed
    at: str  # when it was sent (or failed), as stored
    error: str | None = None
    values: dict | None = None


def _marks(ready: list[_Ready], problems: list[Transient | None], now: dt.datetime, at: dt.datetime) -> list[_Mark]:
    """The outcomes of writing `ready` at `at` in the pass at `now` (a retry is due a backoff after `now`)."""
    out = []
    for n, problem in zip(ready, problems, strict=True):
        if problem is None:
            out.append(_Mark(n, "sent", utc_text(at)))
        else:
            values = _failure(n, problem, now)
            out.append(_Mark(n, values["status"], utc_text(at), str(problem), values))
    return out


def _apply(session: Session, marks: Sequence[_Mark]) -> None:
    """Mark written notices: the sent ones in a statement or two, each failed one on its own.

    Only ever for files that are in place and durable (`FileOutbox.send_many` has returned): a pass
    killed before this leaves the notices `claimed`; the next one finds their files and does not write
    them again."""
    sent: dict[str, list[str]] = defaultdict(list)
    for m in marks:
        if m.values is None:
            sent[m.at].append(m.notice.id)
    for at, ids in sent.items():
        for part in pieces(session, ids):
            session.execute(update(Notice).where(among(session, Notice.id, part))
                            .values(status="sent", attempts=Notice.attempts + 1, last_error=None, next_attempt_at=None,
                                    sent_at=at)
                            .execution_options(synchronize_session=False))
    for m in marks:
        if m.values is not None:
            session.execute(update(Notice).where(Notice.id == m.notice.id).values(**m.values))


def _report(result: PassResult, marks: Sequence[_Mark]) -> None:
    for m in marks:
        {"sent": result.sent, "retry": result.deferred}.get(m.status, result.failed).append(m.notice.view(m.status, m.error))


def _failure(n: _Ready, exc: Exception, now: dt.datetime) -> dict:
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


def _deliver_one(db: Database, now: dt.datetime, n: _Ready, channel, result: PassResult, settings: NotifySettings,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
    """Send one claimed notice over a network channel and mark the outcome (sent at `clock()`).

    A network channel cannot tell whether a message a dead pass began sending went out, so the attempt
    is recorded before sending (`ambiguous` set; the mark puts back what it was before); a pass that
    finds the record left by a dead one resends and keeps the flag."""
    ambiguous = n.ambiguous  # an attempt a dead pass began (or an earlier one's flag): this send may double it
    if not ambiguous:
        _begin_attempt(db, n.id)
    try:
        channel.send(_outgoing(n, now, settings.sender))
    except (Transient, Permanent) as exc:
        values = _failure(n, exc, now)
        with db.write() as session:
            session.execute(update(Notice).where(Notice.id == n.id).values(**values))
        _report(result, [_Mark(n, values["status"], utc_text(now), str(exc), values)])
        return
    faults.point("after_send")
    _mark(db, n.id, "sent", clock() if clock else now, n.attempts + 1, None, None, ambiguous)
    result.sent.append(n.view())


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


def _finish_leftovers(db: Database, now: dt.datetime, settings: NotifySettings, deliver: Callable[[list[_Ready]], None],
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
            dead[owner] = _owner_dead(owner)
        orphan = status == "claimed" and (dead[owner] or created <= lease)
        if due_retry or orphan:
            todo.append((nid, status, owner))
    for part in _chunks(todo, size):
        won = _take_over_many(db, part)
        if won:
            deliver(_load_ready(db, won))


def _take_over(db: Database, notice_id: str, seen_status: str, seen_owner: str | None) -> bool:
    """Claim a leftover notice for this pass, atomically: of two passes that saw it, one wins."""
    return _take_over_many(db, [(notice_id, seen_status, seen_owner)]) == [notice_id]


def _take_over_many(db: Database, seen: Sequence[tuple[str, str, str | None]]) -> list[str]:
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


def _load_ready(db: Database, ids: Sequence[str]) -> list[_Ready]:
    """The claimed notices by id, with their units and milestones, in a query or two per chunk."""
    out: list[_Ready] = []
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
                out.append(_Ready(n.id, n.channel, n.recipient, n.recipient_name, n.kind, n.subject, n.content, n.body, n.html,
                                  n.created_at, n.attempts, bool(n.ambiguous), sorted(units[n.id]), sorted(ms[n.id])))
    return out


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
