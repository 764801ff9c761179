"""One reminder pass at `now`: work out what is due for whom, claim it, send it, mark it.

Exactly once: every (recipient, unit, milestone, rung) a notice carries is stored under a unique
constraint when the notice is claimed, before anything is sent (`claim`), with who claims it and where
it is to be written; a second pass (or a second daemon) cannot claim it again. A batch is marked
`sending` before it is handed to the writer or a sender. A pass that died leaves its notices `claimed`
(never begun: the next pass sends them) or `sending` (finished by a pass that can look — the same file
outbox — and otherwise reported ambiguous, not sent twice; `leftovers`). The pass first removes the
temporary files killed writers left in the outbox.

In chunks: a national pass has tens of thousands of notices, so the pass claims a chunk of them at a
time (ANJIAN_REMIND_CHUNK, default 5000, read by the settings) in one transaction, which stores what
each says (its content: the data its templates render, a few hundred bytes) and its items. The file
outbox's writer process renders and writes each chunk (one sync of the disk for all it has waiting)
while the pass claims the next; a chunk is marked sent in the transaction of a later claim. A network
channel still records each attempt before it sends and marks each notice after, which is what its
`ambiguous` flag needs (`delivery`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.notifications.channels import REGISTRY, senders
from anjian.notifications.faults import NO_FAULTS, FaultPlan
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.writer import OutboxWriter
from anjian.workflow.clock import local_date
from anjian.workflow.reminders.claim import chunks, claim, notice_id
from anjian.workflow.reminders.delivery import Delivery, apply, report
from anjian.workflow.reminders.leftovers import finish_leftovers, unsettled
from anjian.workflow.reminders.recipients import Plan, plan
from anjian.workflow.reminders.results import PassResult, SentView
from anjian.workflow.reminders.workdays import WorkCalendar, load_office_calendar
from anjian.workflow.services.registry import campaign_in_force, drill_in
from anjian.workflow.settings import NotifySettings, helper_environment
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Contact


def run_passes(db: Database, now: dt.datetime, settings: NotifySettings, outbox: FileOutbox | os.PathLike | str,
               dry_run: bool = False, retry_only: bool = False) -> list[tuple[str, PassResult]]:
    """A reminder pass for the chosen campaign, or for each campaign of the database in turn (the
    daemon's and `remind`'s case where a database runs several): (campaign id, result) each."""
    from anjian.workflow.store import scope

    if scope.choice() is not None:
        return [(scope.choice(), run_pass(db, now, settings, outbox, dry_run, retry_only))]
    with db.read() as session:
        ids = [cid for _no, cid in scope.campaigns(session)]
    out = []
    for cid in ids:
        with scope.chosen(cid):
            out.append((cid, run_pass(db, now, settings, outbox, dry_run, retry_only)))
    return out


def run_pass(db: Database, now: dt.datetime, settings: NotifySettings, outbox: FileOutbox | os.PathLike | str,
             dry_run: bool = False, retry_only: bool = False) -> PassResult:
    """One reminder pass: finish what an earlier pass left, then claim, send and mark what is due.

    With `retry_only` it only finishes leftovers and due retries (the daemon's frequent job), so new
    reminders still go out at the daily time.
    """
    tuning = settings.tuning
    size = tuning.chunk()
    faults = FaultPlan(tuning.fault, tuning.fault_skip) if tuning.fault else NO_FAULTS
    outbox = FileOutbox(outbox.folder if isinstance(outbox, FileOutbox) else outbox, faults)
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
            settings = dataclasses.replace(settings, drill=drill_in(session),  # a drill's notices say 演练
                                           sender=settings.sender or f"{campaign.issuer or campaign.title} <anjian@localhost>")
            result = PassResult(now.isoformat(), today.isoformat(), cal.is_workday(today), cal.source(today.year), dry_run)
            writer = None
            if not (dry_run or retry_only) and result.workday and _mailboxes(session, settings) > size:
                # a pass of many chunks: one is written while the next is claimed (started before the
                # pass plans, so that it has loaded its templates when the first chunk comes)
                writer = OutboxWriter.start(outbox, helper_environment(os.getpid()))
                if writer is not None:
                    stack.callback(writer.close)
            plans = [] if retry_only else _plans(session, now, cal, settings, result)
        if dry_run:
            for p in plans:
                result.sent.append(SentView(notice_id(today, p.key()), p.address, p.channel,
                                            sorted({x.unit_code for x in p.lines}), sorted({x.milestone for x in p.lines}),
                                            p.kind, status="planned"))
            return result
        result.swept = len(outbox.sweep(settings.lease_minutes * 60))
        delivery = Delivery(db, now, clock, senders(settings, outbox), result, settings, writer, faults)
        targets = {transport: sender.target for transport, sender in delivery.senders.items()}
        finish_leftovers(db, now, settings, delivery.send, size, delivery.senders,
                         lambda held: result.ambiguous.extend(n.view("ambiguous") for n in held))
        for part in chunks(plans, size):
            marks = delivery.written()  # the chunks the writer has finished are marked with this claim
            ready = claim(db, clock(), today, part, campaign, settings, lambda session, done=marks: apply(session, done),
                          targets)
            report(result, marks)
            faults.point("after_claim")
            delivery.send(ready)
        delivery.finish()
    result.unsettled = unsettled(db)
    return result


def _plans(session: Session, now: dt.datetime, cal: WorkCalendar, settings: NotifySettings,
           result: PassResult) -> list[Plan]:
    """What the pass is to send (what it skips goes to `result`): nothing new on a day off."""
    if not result.workday:
        today = local_date(now)
        result.skipped.append({"reason": _("{day} is not a working day ({calendar}): no new reminders are sent").format(
            day=today, calendar=cal.source(today.year))})
        return []
    plans, skipped = plan(session, now, cal, settings)
    result.skipped.extend(skipped)
    return plans


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


def _mailboxes(session: Session, settings: NotifySettings) -> int:
    """Contacts with an address that goes to the file outbox under these settings (the outbox writer
    pays off for more than a chunk of them)."""
    fields = {c.contact_field for c in REGISTRY if c.transport(settings) == FileOutbox.name}
    if not fields:
        return 0
    where = or_(*(getattr(Contact, f).is_not(None) for f in sorted(fields)))
    return session.scalar(select(func.count()).select_from(Contact).where(where)) or 0
