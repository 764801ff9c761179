"""Who gets what: what is due grouped by recipient (one message each, by each channel a contact has),
with the supervising unit's contacts told of what is overdue below them and of the early warnings (预警)
of the counties they supervise."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.notifications.channels import REGISTRY
from anjian.notifications.render import NoticeLine
from anjian.workflow.clock import local_date
from anjian.workflow.reminders.due import Due, due, ladder_of
from anjian.workflow.reminders.ladder import rung_order
from anjian.workflow.reminders.warnings import is_weekly, warnings, week_rung
from anjian.workflow.reminders.workdays import WorkCalendar
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store import scope
from anjian.workflow.store.db import among, pieces
from anjian.workflow.store.models import Contact, NoticeItem

NEVER = -10**6  # the rank of a rung nobody was sent
# What also goes to the supervising unit's contacts, and why a pass reports it when that unit has none.
ESCALATED = {"overdue": "no contact at the supervising unit for the overdue escalation",
             "warning": "no contact at the supervising unit for the early warning"}


@dataclass
class Plan:
    """One message to be sent: to one address by one channel, listing every line due for it."""

    channel: str  # the transport, as the notice records it
    address: str
    name: str
    unit_code: str
    lines: list[NoticeLine]
    unit_path: str = ""
    _has: set[NoticeLine] = field(default_factory=set, repr=False)
    campaign: str = ""  # the campaign it is about, when not the database's first (part of its key)

    def add(self, line: NoticeLine) -> None:
        if line not in self._has:
            self._has.add(line)
            self.lines.append(line)

    @property
    def kind(self) -> str:
        """What the message is called: overdue for any overdue line, else reminder for any reminder, else (its
        lines are early warnings alone) warning. A message that was a reminder or an overdue notice before
        the warnings stays one (the contract's `kind`); only a message of warnings alone is a new kind."""
        kinds = {x.kind for x in self.lines}
        return "overdue" if "overdue" in kinds else "reminder" if "reminder" in kinds else "warning"

    def key(self) -> str:
        items = sorted(f"{x.unit_code}|{x.milestone}|{x.rung}" for x in self.lines)
        within = [f"campaign|{self.campaign}"] if self.campaign else []
        return hashlib.sha256("\n".join([self.channel, self.address, *within, *items]).encode("utf-8")).hexdigest()


def contacts_by_unit(session: Session, codes: list[str]) -> dict[str, list]:
    """The contacts of these units as plain rows (unit_code, name and each channel's address field), in
    id order."""
    fields = [getattr(Contact, f) for f in dict.fromkeys(c.contact_field for c in REGISTRY)]
    out: dict[str, list] = {}
    this = scope.campaign_id(session)  # a contact may take the notices of some campaigns only
    for part in pieces(session, codes):
        for c in session.execute(select(Contact.unit_code, Contact.name, Contact.campaigns, *fields)
                                 .where(among(session, Contact.unit_code, part)).order_by(Contact.id)):
            if c.campaigns is None or this in c.campaigns.split(","):
                out.setdefault(c.unit_code, []).append(c)
    return out


def routes(settings: NotifySettings) -> list[tuple[str, str]]:
    """(contact field, transport) of each channel under these settings, in the registry's order."""
    return [(channel.contact_field, channel.transport(settings)) for channel in REGISTRY]


def addresses(contact, routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(transport, address) for each channel this contact has an address for."""
    return [(transport, address) for field_name, transport in routes if (address := getattr(contact, field_name))]


Sent = tuple[dict[tuple[str, str, str], int], set[tuple[str, str, str]]]


def _sent(session: Session, dues: list[Due], rank: Callable[[str], int], week: str) -> Sent:
    """What was already sent, in one query: the highest rung on the ladder each (recipient, unit, milestone)
    got, as its rank, and the (recipient, unit, milestone) warned of in the week `week` (a warning's rung)."""
    sent: dict[tuple[str, str, str], int] = {}
    warned: set[tuple[str, str, str]] = set()
    milestone_ids = sorted({d.line.milestone for d in dues})
    if milestone_ids:
        for rec, unit, ms, rung in session.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone,
                                                          NoticeItem.rung).where(NoticeItem.milestone.in_(milestone_ids))):
            k = (rec, unit, ms)
            if is_weekly(rung):
                if rung == week:
                    warned.add(k)
                continue
            sent[k] = max(sent.get(k, NEVER), rank(rung))
    return sent, warned


def plan(session: Session, now: dt.datetime, cal: WorkCalendar, settings: NotifySettings) -> tuple[list[Plan], list[dict]]:
    """Group what is due by recipient (one message each), leaving out what each already got."""
    campaign = campaign_in_force(session)
    ladder = ladder_of(campaign)
    dues, paths, counties = due(session, now, cal)
    dues += warnings(session, now, campaign, cal, settings.forecast, counties)
    supervisors: dict[str, str | None] = {}
    for d in dues:
        supervisors[d.line.unit_code] = d.parent_code if d.level == "township" else (campaign.city or d.parent_code)
    contacts = contacts_by_unit(session, sorted({d.line.unit_code for d in dues} | {s for s in supervisors.values() if s}))
    order: dict[str, int] = {}

    def rank(rung: str) -> int:
        if rung not in order:
            order[rung] = rung_order(rung, ladder)
        return order[rung]

    week = week_rung(local_date(now))
    sent, warned = _sent(session, dues, rank, week)
    by = routes(settings)
    plans: dict[tuple[str, str], Plan] = {}
    skipped: list[dict] = []
    for d in dues:
        line = d.line
        own = contacts.get(line.unit_code, [])
        targets = list(own)
        sup = supervisors.get(line.unit_code)
        weekly = line.kind == "warning"
        if line.kind in ESCALATED and sup:
            sup_contacts = contacts.get(sup, [])
            targets += sup_contacts
            if not sup_contacts:
                skipped.append({"unit": sup, "for_unit": line.unit_code, "milestone": line.milestone,
                                "rung": line.rung, "reason": ESCALATED[line.kind]})
        if not own:
            skipped.append({"unit": line.unit_code, "name": line.unit_path, "milestone": line.milestone,
                            "rung": line.rung, "reason": "no contact"})
        due_rank = NEVER if weekly else rank(line.rung)
        for c in targets:
            for channel, address in addresses(c, by):
                k = (address, line.unit_code, line.milestone)
                if (k in warned) if weekly else (sent.get(k, NEVER) >= due_rank):
                    continue
                p = plans.get((channel, address))
                if p is None:
                    p = plans[(channel, address)] = Plan(channel, address, c.name, c.unit_code, [])
                p.add(line)
    out = list(plans.values())
    paths.ensure(p.unit_code for p in out)
    within = campaign.id if scope.number(session) != scope.FIRST else ""
    for p in out:
        p.unit_path = paths.path(p.unit_code)
        p.campaign = within
    return out, skipped
