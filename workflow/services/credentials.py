"""Sign-in to the service: passwords, API tokens and browser sessions, and the limits on guessing.

Passwords are kept as argon2id hashes (argon2-cffi); a password an admin sets must be changed at the
first sign-in. Tokens and sessions are random secrets of which only the SHA-256 is kept (they carry 256
bits, so a fast hash is enough and lets each request find its row by index); each expires, can be
listed and revoked, and a revoked one is refused from the next request on. Every password set, token
issued or revoked, sign-in and failed attempt is a row of the audit log (never the secret itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.workflow.clock import from_utc_text, utc_text
from anjian.workflow.engine.authz import Actor, refusals_audited
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Official, Password, SigninFailure, Token

TOKEN_PREFIX = "anj_"
PASSWORD_MIN = 10  # characters; the service refuses shorter ones
PASSWORD_MAX = 1024  # bytes hashed at most: a megabyte "password" would be a denial of service


@dataclass(frozen=True)
class Limits:
    """How long credentials live and how much guessing is allowed (settings [service])."""

    token_days: int = 90
    session_minutes: int = 480  # a working day; a browser session idle longer signs in again
    failures_per_account: int = 5  # within `failure_window_minutes`, then that account waits
    failures_per_address: int = 20
    failure_window_minutes: int = 15


@dataclass(frozen=True)
class Issued:
    """A new token or session: the secret is shown once, here, and never stored."""

    id: str
    official: str
    kind: str
    secret: str
    expires_at: dt.datetime
    csrf: str | None = None


@dataclass(frozen=True)
class TokenView:
    id: str
    official: str
    kind: str
    label: str | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    revoked_at: str | None

    def as_json(self) -> dict:
        return {"id": self.id, "official": self.official, "kind": self.kind, "label": self.label,
                "created_at": self.created_at, "expires_at": self.expires_at, "last_used_at": self.last_used_at,
                "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class Principal:
    """Who a request is: the official (as an authz Actor), by which credential, and its CSRF secret."""

    actor: Actor
    credential: str  # the token's or session's id, or "proxy"
    kind: str  # token | session | proxy
    csrf: str | None = None
    must_change: bool = False
    last_used_at: str | None = None


class PasswordMustChange(NotPermitted):
    """The password is right but was set by an admin: it must be changed before a token is issued."""


# -- hashing -------------------------------------------------------------------------------------------

_hasher = None


def _argon():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
    return _hasher


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_password_text(password: str) -> None:
    """A new password fit to be set: long enough, not too long, printable."""
    if len(password) < PASSWORD_MIN:
        raise BadInput(_("the password is too short: at least {count} characters").format(count=PASSWORD_MIN))
    if len(password.encode("utf-8")) > PASSWORD_MAX:
        raise BadInput(_("the password is too long: at most {count} bytes").format(count=PASSWORD_MAX))
    if any(ord(ch) < 32 for ch in password):
        raise BadInput(_("the password holds a control character (a line end or tab, say)"))


# -- passwords -----------------------------------------------------------------------------------------

def _official(session: Session, name: str) -> Official:
    o = session.get(Official, name)
    if o is None:
        raise BadInput(_("no official named {name} (see `anjian user list`)").format(name=name))
    return o


def set_password(db: Database, actor: Actor, name: str, password: str, now: dt.datetime, *,
                 first: bool = False) -> None:
    """An admin sets an official's password; the official must change it at the first sign-in. With
    `first`, only a first password: an official who has one already is refused (see set_first_password)."""
    check_password_text(password)
    hashed = _argon().hash(password)  # before the write transaction: hashing takes a tenth of a second
    with refusals_audited(db, actor, now, "first password" if first else "user passwd"), db.write() as session:
        if actor.role != "admin":
            raise NotPermitted(_("only an admin sets another official's password"))
        _official(session, name)
        at = audit.stamp(session, now)
        row = session.get(Password, name)
        if first and row is not None:
            raise NotPermitted(_("{name} already has a password: they change it themselves (/password); an admin "
                                 "resets it only on the service's machine (`anjian user passwd`)").format(name=name))
        if row is None:
            session.add(Password(official=name, hash=hashed, must_change=1, set_at=utc_text(at), set_by=actor.name))
        else:
            row.hash, row.must_change, row.set_at, row.set_by = hashed, 1, utc_text(at), actor.name
        audit.append(session, [audit.Entry(at, actor, "password_set",
                                           detail={"official": name} | ({"first": True} if first else {}))])


def set_first_password(db: Database, actor: Actor, name: str, password: str, now: dt.datetime) -> None:
    """What the web lets an admin do (the form of /officials): give an official who has no password yet
    a first one, to be changed at the first sign-in. Resetting a password someone already has stays on
    the service's own machine (`anjian user passwd`, never through the service): a stolen admin session
    must not be able to take over every official's account."""
    set_password(db, actor, name, password, now, first=True)


def change_password(db: Database, name: str, old: str, new: str, now: dt.datetime, address: str = "",
                    keep: str | None = None) -> None:
    """An official changes their own password, giving the old one; their browser sessions end, all but
    `keep` (the session that changes it)."""
    check_password_text(new)
    if old == new:
        raise BadInput(_("the new password is the same as the old one"))
    with db.read() as session:
        row = session.get(Password, name)
        stored = row.hash if row is not None else None
    if stored is None or not _verify(stored, old):
        raise NotPermitted(_("the current password is wrong"))
    hashed = _argon().hash(new)
    with db.write() as session:
        at = audit.stamp(session, now)
        session.execute(update(Password).where(Password.official == name)
                        .values(hash=hashed, must_change=0, set_at=utc_text(at), set_by=name))
        session.execute(update(Token).where(Token.official == name, Token.kind == "session",
                                            Token.revoked_at.is_(None), Token.id != (keep or ""))
                        .values(revoked_at=utc_text(at), revoked_by=name))
        audit.append(session, [audit.Entry(at, name, "password_change", detail={"address": address})])


def _verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    if len(password.encode("utf-8")) > PASSWORD_MAX:
        return False
    try:
        return _argon().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# -- signing in ----------------------------------------------------------------------------------------

def _failures(session: Session, column, value: str, since: dt.datetime) -> int:
    return session.scalar(select(func.count()).select_from(SigninFailure)
                          .where(column == value, SigninFailure.at >= utc_text(since))) or 0


def sign_in(db: Database, username: str, password: str, address: str, now: dt.datetime, *, kind: str = "session",
            label: str | None = None, limits: Limits = Limits(), new_password: str | None = None) -> tuple[Issued, bool]:
    """Check a password and issue a session (for a browser) or a token (for `anjian login`); return it and
    whether the password must be changed first. A wrong name or password, a disabled official, or too
    many recent failures for the name or the address is refused alike (NotPermitted), and audited.

    A password an admin set must change first: with `new_password` it is changed (audited) and the
    credential issued; without it a token is refused (PasswordMustChange), while a browser gets a session
    that serves only to change it (the web's /password)."""
    if new_password is not None:
        check_password_text(new_password)
    since = now - dt.timedelta(minutes=limits.failure_window_minutes)
    username = username.strip()[:64]
    with db.read() as session:
        blocked = (_failures(session, SigninFailure.username, username, since) >= limits.failures_per_account
                   or _failures(session, SigninFailure.address, address, since) >= limits.failures_per_address)
        official = session.get(Official, username)
        row = session.get(Password, username)
        stored = row.hash if row is not None else None
        must_change = bool(row.must_change) if row is not None else False
        active = official is not None and bool(official.active)
    # The hash is computed even for an unknown name, so that timing does not tell names apart; not while
    # blocked (the answer says so anyway), so that a flood of guesses costs the service no hashing.
    ok = not blocked and _verify(stored or _dummy_hash(), password) and stored is not None and active
    if not ok:
        with db.write() as session:
            at = audit.stamp(session, now)
            session.add(SigninFailure(at=utc_text(now), username=username, address=address[:64]))
            reason = "blocked" if blocked else "credentials"
            audit.append(session, [audit.Entry(at, username or "?", "signin_failed",
                                               detail={"address": address, "reason": reason, "kind": kind})])
        if blocked:
            raise NotPermitted(_("too many failed sign-ins for this name or address: wait {minutes} minutes and try "
                                 "again, or ask an admin").format(minutes=limits.failure_window_minutes))
        raise NotPermitted(_("wrong name or password"))
    if must_change and new_password is not None:
        change_password(db, username, password, new_password, now, address)
        must_change = False
    elif must_change and kind == "token":
        raise PasswordMustChange(_("the password {name} signed in with was set by an admin and must be changed first: "
                                   "give a new one").format(name=username))
    issued = issue(db, username, username, now, kind=kind, label=label, limits=limits, address=address,
                   action="signin")
    return issued, must_change


def address_blocked(db: Database, address: str, now: dt.datetime, limits: Limits = Limits()) -> bool:
    """Whether `address` has failed too often within the window (passwords and bad tokens alike)."""
    since = now - dt.timedelta(minutes=limits.failure_window_minutes)
    with db.read() as session:
        return _failures(session, SigninFailure.address, address[:64], since) >= limits.failures_per_address


def token_refused(db: Database, address: str, now: dt.datetime, limits: Limits = Limits(), kind: str = "token") -> bool:
    """A bad, expired or revoked bearer token was presented: count it against the address (so guessing
    tokens is slowed as guessing passwords is) and audit it, until the address is blocked; from then on
    the refusals are neither counted nor audited, so a flood cannot grow the log. Return whether the
    address is blocked."""
    if address_blocked(db, address, now, limits):
        return True
    with db.write() as session:
        at = audit.stamp(session, now)
        session.add(SigninFailure(at=utc_text(now), username="", address=address[:64]))
        audit.append(session, [audit.Entry(at, "?", "signin_failed",
                                           detail={"address": address, "reason": "token", "kind": kind})])
    return False


_DUMMY: str | None = None


def _dummy_hash() -> str:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _argon().hash(secrets.token_urlsafe(16))
    return _DUMMY


def issue(db: Database, official: str, by: str, now: dt.datetime, *, kind: str = "token", label: str | None = None,
          limits: Limits = Limits(), address: str | None = None, action: str = "token_create",
          days: int | None = None) -> Issued:
    """Make a token (or a session) for `official`, audited as `action` by `by`."""
    tid = ("t" if kind == "token" else "s") + secrets.token_hex(5)
    secret = f"{TOKEN_PREFIX}{tid}_{secrets.token_urlsafe(32)}"
    csrf = secrets.token_urlsafe(32) if kind == "session" else None
    with db.write() as session:
        o = _official(session, official)
        if not o.active:
            raise NotPermitted(_("official {name} is disabled").format(name=official))
        at = audit.stamp(session, now)
        life = dt.timedelta(minutes=limits.session_minutes) if kind == "session" else \
            dt.timedelta(days=days or limits.token_days)
        expires = at + life
        session.add(Token(id=tid, kind=kind, official=official, hash=digest(secret), label=(label or "")[:100] or None,
                          csrf=csrf, created_at=utc_text(at), created_by=by, expires_at=utc_text(expires)))
        detail = {"id": tid, "kind": kind, "official": official, "expires_at": utc_text(expires)}
        if address is not None:
            detail["address"] = address
        audit.append(session, [audit.Entry(at, by, action, detail=detail)])
    return Issued(tid, official, kind, secret, expires, csrf)


def authenticate(db: Database, secret: str, now: dt.datetime, *, kind: str | None = None) -> Principal | None:
    """The official a bearer secret (token or session cookie) belongs to, or None if it is unknown,
    expired, revoked, or its official disabled. Looked up on every request: a revocation holds at once."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    with db.read() as session:
        row = session.scalar(select(Token).where(Token.hash == digest(secret)))
        if row is None or row.revoked_at is not None or (kind is not None and row.kind != kind):
            return None
        if from_utc_text(row.expires_at) <= now:
            return None
        o = session.get(Official, row.official)
        if o is None or not o.active:
            return None
        pw = session.get(Password, o.name)
        return Principal(Actor(o.name, o.role, o.unit_code), row.id, row.kind, row.csrf,
                         must_change=bool(pw.must_change) if pw is not None and row.kind == "session" else False,
                         last_used_at=row.last_used_at)


def touch(db: Database, token_id: str, now: dt.datetime, *, extend_minutes: int | None = None) -> None:
    """Note when a credential was last used (and slide a session's expiry); not audited."""
    values = {"last_used_at": utc_text(now)}
    if extend_minutes:
        values["expires_at"] = utc_text(now + dt.timedelta(minutes=extend_minutes))
    with db.write() as session:
        session.execute(update(Token).where(Token.id == token_id).values(**values))


def revoke(db: Database, actor: Actor, token_id: str, now: dt.datetime, *, action: str = "token_revoke") -> TokenView:
    """Revoke a token or session: an official their own, an admin anyone's."""
    with db.write() as session:
        row = session.get(Token, token_id)
        if row is None or (row.official != actor.name and actor.role != "admin"):
            raise BadInput(_("no token {id} of yours (see `anjian token list`)").format(id=token_id))
        if row.revoked_at is None:
            at = audit.stamp(session, now)
            row.revoked_at, row.revoked_by = utc_text(at), actor.name
            audit.append(session, [audit.Entry(at, actor, action, detail={"id": row.id, "kind": row.kind,
                                                                          "official": row.official})])
        return _token_view(row)


def create_token(db: Database, actor: Actor, name: str, now: dt.datetime, *, label: str | None = None,
                 days: int | None = None, limits: Limits = Limits()) -> Issued:
    """`anjian token create`: an admin for anyone, an official for themselves."""
    if days is not None and not 1 <= days <= 3650:
        raise BadInput(_("--days {days}: give a number of days from 1 to 3650").format(days=days))
    with refusals_audited(db, actor, now, "token create"):
        if actor.role != "admin" and name != actor.name:
            raise NotPermitted(_("only an admin creates a token for another official; you may create your own"))
    return issue(db, name, actor.name, now, kind="token", label=label, limits=limits, days=days)


def tokens(db: Database, actor: Actor, now: dt.datetime, *, everyone: bool = False) -> list[TokenView]:
    """The tokens and sessions still valid: the actor's own, or everyone's for an admin asking for them."""
    with refusals_audited(db, actor, now, "token list --all"):
        if everyone and actor.role != "admin":
            raise NotPermitted(_("only an admin lists everyone's tokens"))
    with db.read() as session:
        q = select(Token).where(Token.revoked_at.is_(None), Token.expires_at > utc_text(now))
        if not everyone:
            q = q.where(Token.official == actor.name)
        return [_token_view(t) for t in session.scalars(q.order_by(Token.created_at, Token.id))]


def _token_view(t: Token) -> TokenView:
    return TokenView(t.id, t.official, t.kind, t.label, t.created_at, t.expires_at, t.last_used_at, t.revoked_at)


def forget_failures(db: Database, now: dt.datetime, limits: Limits = Limits()) -> int:
    """Drop failure rows older than the window (they count for nothing any more)."""
    with db.write() as session:
        cut = utc_text(now - dt.timedelta(minutes=limits.failure_window_minutes))
        return session.execute(delete(SigninFailure).where(SigninFailure.at < cut)).rowcount or 0


def must_change(db: Database, name: str) -> bool:
    with db.read() as session:
        row = session.get(Password, name)
        return bool(row.must_change) if row is not None else False


def official_of(db: Database, name: str) -> Actor:
    """The official an admin names (for `token create NAME`)."""
    with db.read() as session:
        o = _official(session, name)
        if not o.active:
            raise NotPermitted(_("official {name} is disabled").format(name=name))
        return Actor(o.name, o.role, o.unit_code)
