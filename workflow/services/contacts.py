"""Contacts per unit: who receives its reminders (e-mail, a group-robot webhook, or both)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from anjian.i18n import _
from anjian.notifications.netguard import Policy, Refused
from anjian.workflow.clock import utc_text
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.formats.tables import Record
from anjian.workflow.store import audit, scope
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Contact, units_table

# Deliberately plain: one @, no spaces, no control characters, a dotted domain (or localhost for tests).
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class ContactView:
    id: int
    unit: str
    unit_name: str
    name: str
    email: str | None
    webhook: str | None
    campaigns: str | None = None  # the campaigns whose notices it takes (comma-separated ids); None: all


def check_name(name: str) -> str:
    value = unicodedata.normalize("NFKC", name).strip()
    if not value:
        raise BadInput(_("contact --name is empty"))
    if any(unicodedata.category(ch) == "Cs" for ch in value):  # bytes that were not UTF-8 (a GBK terminal)
        raise BadInput(_("contact name {name!r} is not valid text: the terminal sent bytes that are not UTF-8").format(name=name))
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise BadInput(_("contact name {name!r} contains control characters (line breaks are not allowed)").format(name=name))
    if len(value) > 64:
        raise BadInput(_("contact name is longer than 64 characters"))
    return value


def check_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    value = email.strip()
    if any(ch in value for ch in "\r\n\0") or not value.isascii() or not _EMAIL.match(value) or len(value) > 254:
        raise BadInput(_("e-mail address {email!r} is not a plain address like name@example.gov.cn").format(email=email))
    return value


def check_webhook(url: str | None, hooks: Policy | None = None) -> str | None:
    """A webhook as it will be stored: an http(s) URL that can go on the wire, whose host is on the
    allowlist of `hooks` (the group robots by default) and resolves to no refused address."""
    if url is None or not url.strip():
        return None
    value = url.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise BadInput(_("webhook {url!r} is not an http(s) URL").format(url=url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(_("webhook {url!r} is not an http(s) URL").format(url=url))
    # Sent as is on the request line, so only printable ASCII: other characters must be percent-encoded.
    if not all(" " < ch < "\x7f" for ch in value):
        raise BadInput(_("webhook {url!r} has spaces, control or non-ASCII characters (percent-encode them)").format(url=url))
    try:
        (hooks or Policy()).vet(value, unresolved_ok=True)  # a name that does not resolve now is checked at send
    except Refused as exc:
        raise BadInput(_("webhook {url} is refused: {why}").format(url=value, why=exc)) from None
    return value


@dataclass(frozen=True)
class Imported:
    """What `import_many` did: contacts added, contacts whose address changed, rows already as stored."""

    added: list[ContactView]
    updated: list[ContactView]
    unchanged: int


def add(db: Database, unit: str, name: str, email: str | None, webhook: str | None, actor: Acting | str, now: dt.datetime,
        hooks: Policy | None = None, campaigns: str | None = None) -> ContactView:
    """Add a contact to a unit (a name may appear once per unit); `hooks`: where webhooks may go;
    `campaigns`: the ids of the campaigns whose notices it takes (comma-separated; none: all)."""
    return add_many(db, [Record(0, {"unit": unit, "name": name, "email": email or "", "webhook": webhook or "",
                                    "campaigns": campaigns or ""})], actor, now, hooks=hooks)[0]


def add_many(db: Database, records: list[Record], actor: Acting | str, now: dt.datetime,
             unreadable: list[str] | None = None, hooks: Policy | None = None) -> list[ContactView]:
    """Add contacts from rows (unit,name,email,webhook): all or none, every bad row reported —
    `unreadable` carries the rows the CSV reader could not split, reported together with the rest;
    `hooks` is where webhooks may go (settings `webhook_hosts`; the group robots when not given).
    A unit's contact of the same name is refused."""
    return _write(db, records, actor, now, unreadable, hooks, upsert=False).added


def import_many(db: Database, records: list[Record], actor: Acting | str, now: dt.datetime,
                unreadable: list[str] | None = None, hooks: Policy | None = None) -> Imported:
    """`add_many` that may be run again: a unit's contact of the same name takes the row's address
    and webhook (audited as `contact_update`, same id); a row already as stored writes nothing."""
    return _write(db, records, actor, now, unreadable, hooks, upsert=True)


def _write(db: Database, records: list[Record], actor: Acting | str, now: dt.datetime,
           unreadable: list[str] | None, hooks: Policy | None, *, upsert: bool) -> Imported:
    actor = authz.acting(actor)
    hooks = (hooks or Policy()).prefetched(r.values.get("webhook") or "" for r in records)  # DNS before the lock
    problems, staged = list(unreadable or []), []
    denials: list[str] = []
    changes: list[tuple[Contact, str, str | None, str | None]] = []
    unchanged = 0
    with authz.refusals_audited(db, actor, now, "contact add"), db.write() as session:
        resolver = Resolver(session)
        resolver.preload([r.values["unit"] for r in records])
        seen: set[tuple[str, str]] = set()
        for r in records:
            where = _("line {line}: ").format(line=r.line) if r.line else ""
            try:
                ref = resolver.resolve(r.values["unit"], hint=len(problems) < 50)  # a hint scans every name
                try:
                    authz.may(session, actor, "contact", ref.code, ref.name)
                except NotPermitted as exc:
                    denials.append(where + exc.message)
                    continue
                name = check_name(r.values["name"])
                email, hook = check_email(r.values.get("email")), check_webhook(r.values.get("webhook"), hooks)
                if not email and not hook:
                    raise BadInput(_("give --email or --webhook (or both)"))
                subscribed = check_campaigns(session, r.values.get("campaigns"))
                if (ref.code, name) in seen:  # twice in one file: which row is meant is not guessed
                    raise BadInput(_("{unit} already has a contact named {name}").format(unit=ref.name, name=name))
                old = session.scalar(select(Contact).where(Contact.unit_code == ref.code, Contact.name == name))
                if old is not None and not upsert:
                    raise BadInput(_("{unit} already has a contact named {name}").format(unit=ref.name, name=name))
            except BadInput as exc:
                problems.append(where + exc.message + ("; " + "; ".join(exc.details) if exc.details else ""))
                continue
            seen.add((ref.code, name))
            if old is None:
                staged.append((ref, name, email, hook, subscribed))
            elif (old.email, old.webhook, old.campaigns) == (email, hook, subscribed):
                unchanged += 1
            else:
                changes.append((old, ref.name, email, hook, subscribed))
        if denials:
            raise authz.denied(_("contacts refused: {count} row(s) not permitted; nothing was written").format(
                count=len(denials)), None).with_details(denials)
        if problems:
            problems.sort(key=_line_number)
            raise BadInput(_("contacts refused: {count} problem(s); nothing was written").format(count=len(problems)),
                           problems)
        out, updated = _apply(session, actor, now, staged, changes)
        return Imported(out, updated, unchanged)


def _apply(session, actor, now: dt.datetime, staged: list, changes: list) -> tuple[list[ContactView], list[ContactView]]:
    """Write the checked rows: new contacts, and new addresses of existing ones; one audit row each."""
    out, updated = [], []
    created = utc_text(audit.stamp(session, now))
    for ref, name, email, hook, subscribed in staged:
        c = Contact(unit_code=ref.code, name=name, email=email, webhook=hook, created_at=created, campaigns=subscribed)
        session.add(c)
        session.flush()
        out.append(ContactView(c.id, ref.code, ref.name, name, email, hook, subscribed))
    for old, unit_name, email, hook, subscribed in changes:
        old.email, old.webhook, old.campaigns = email, hook, subscribed
        updated.append(ContactView(old.id, old.unit_code, unit_name, old.name, email, hook, subscribed))
    session.flush()
    # the keys the log rebuild reads (store/rebuild.py): name, email, webhook, id, campaigns (when given)
    audit.append(session, [audit.Entry(now, actor, "contact_add", c.unit, detail=_said(c)) for c in out] + [
        audit.Entry(now, actor, "contact_update", c.unit, detail=_said(c)) for c in updated])
    return out, updated


def _said(c: ContactView) -> dict:
    return {"name": c.name, "email": c.email, "webhook": c.webhook, "id": c.id} | (
        {"campaigns": c.campaigns} if c.campaigns else {})


def check_campaigns(session, text: str | None) -> str | None:
    """The campaigns a contact takes the notices of, as stored: ids of this database's campaigns,
    comma-separated in its order; None (every campaign) for none given."""
    wanted = [w.strip() for w in re.split(r"[,，、\s]+", text or "") if w.strip()]
    if not wanted:
        return None
    known = [cid for _no, cid in scope.campaigns(session)]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise BadInput(_("--campaigns: this database has no campaign {ids}; it runs: {known}").format(
            ids=_(", ").join(unknown), known=_(", ").join(known)))
    return ",".join(cid for cid in known if cid in wanted)


_LINE = re.compile(r"^\D{0,6}?(\d+)\D")


def _line_number(problem: str) -> int:
    """The line a problem names ("line 7: …", or "第 7 行：…"), 0 if none: problems sort by line."""
    m = _LINE.match(problem)
    return int(m.group(1)) if m else 0


def remove(db: Database, unit: str, name: str, actor: Acting | str, now: dt.datetime) -> int:
    actor = authz.acting(actor)
    folded = check_name(name)  # folded as `add` stored it, so a name is found as it was typed
    with authz.refusals_audited(db, actor, now, "contact remove"), db.write() as session:
        ref = Resolver(session).resolve(unit)
        authz.may(session, actor, "contact", ref.code, ref.name)
        n = session.execute(delete(Contact).where(Contact.unit_code == ref.code, Contact.name == folded)).rowcount
        if not n:
            raise BadInput(_("{unit} has no contact named {name}").format(unit=ref.name, name=name))
        audit.append(session, [audit.Entry(now, actor, "contact_remove", ref.code, detail={"name": folded})])
        return n


def listing(db: Database, unit: str | None = None, actor: Acting | None = None) -> list[ContactView]:
    """The contacts of one unit or all, as `actor` may see them: only the roles that keep contacts, and
    only the units within their jurisdiction (a webhook's address carries the robot's key)."""
    with db.read() as session:
        ref = Resolver(session).resolve(unit) if unit else None
        if actor is not None:
            authz.may(session, actor, "contact", ref.code if ref else None, ref.name if ref else None)
        q = (select(Contact, units_table.c.name).join(units_table, units_table.c.code == Contact.unit_code)
             .order_by(Contact.unit_code, Contact.name))
        if ref is not None:
            q = q.where(Contact.unit_code == ref.code)
        rows = [ContactView(c.id, c.unit_code, n, c.name, c.email, c.webhook, c.campaigns) for c, n in session.execute(q)]
        if actor is not None:
            rows = [r for r in rows if authz.within_reach(session, actor, r.unit)]
        return rows
