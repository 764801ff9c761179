"""Officials: adding, listing, disabling them, and working out who is acting.

The acting official is the one mapped to the operating-system account running the command, found
from the process's user id (not $USER, which anyone can set). `--as`/ANJIAN_USER is honoured only
for an admin, and recorded as "X acting as Y".
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anjian.states.labels import LEVEL_NAMES
from anjian.states.permissions import ROLE_LEVELS, ROLES, fits
from anjian.workflow.clock import utc_text
from anjian.workflow.engine.authz import Acting, Actor, acting, may, posts, refusals_audited
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Official, Unit


def os_login() -> str:
    """The operating-system account running this process, from its user id."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class OfficialView:
    name: str
    role: str
    unit: str
    unit_name: str
    os_user: str | None
    active: bool


def _view(o: Official, unit_name: str) -> OfficialView:
    return OfficialView(o.name, o.role, o.unit_code, unit_name, o.os_user, bool(o.active))


def identify(session: Session, login: str, as_user: str | None = None) -> Actor:
    """The official acting: mapped from the OS account; an admin may act as another official."""
    me = session.scalar(select(Official).where(Official.os_user == login))
    if me is None or not me.active:
        if not session.scalar(select(func.count()).select_from(Official)):
            raise NotPermitted("this database has no officials yet: run `anjian init` to make this account its admin")
        why = "is disabled" if me is not None else "is not mapped to any official"
        raise NotPermitted(f"operating-system account {login!r} {why}; an admin can run "
                           f"`anjian user add NAME --role ROLE --unit UNIT --os-user {login}`")
    if not as_user or as_user == me.name:
        return Actor(me.name, me.role, me.unit_code)
    if me.role != "admin":
        raise NotPermitted(f"{me.name} is not an admin: --as/ANJIAN_USER is only honoured for admin accounts")
    other = session.get(Official, as_user)
    if other is None or not other.active:
        raise NotPermitted(f"--as {as_user}: no active official of that name (see `anjian user list`)")
    return Actor(other.name, other.role, other.unit_code, by=me.name)


def ensure_admin(session: Session, login: str, now: dt.datetime) -> str | None:
    """On a database with no officials, make the current account its admin (the first `init`)."""
    if session.scalar(select(func.count()).select_from(Official)):
        return None
    top = session.scalar(select(Unit.code).where(Unit.parent_code.is_(None)).order_by(Unit.code).limit(1)) or \
        session.scalar(select(Unit.code).order_by(func.length(Unit.code), Unit.code).limit(1))
    session.add(Official(name=login, role="admin", unit_code=top, os_user=login, active=1, created_at=utc_text(audit.stamp(session, now)),
                         created_by=login))
    session.flush()
    audit.append(session, [audit.Entry(now, login, "user_add", None, detail={"name": login, "role": "admin", "os_user": login,
                                                                       "unit": top, "first_admin": True})])
    return login


def _clean(name: str, what: str) -> str:
    value = unicodedata.normalize("NFKC", name).strip()
    if not value or len(value) > 64 or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise BadInput(f"{what} {name!r} must be 1–64 printable characters")
    if "acting as" in value:
        raise BadInput(f"{what} {name!r} may not contain 'acting as'")
    return value


def add(db: Database, name: str, role: str, unit: str, os_user: str | None, actor: Acting | str, now: dt.datetime) -> OfficialView:
    """Register an official (admins only)."""
    actor = acting(actor)
    name = _clean(name, "name")
    role = role.strip().replace("-", "_").lower()
    if role not in ROLES:
        raise BadInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    login = _clean(os_user, "--os-user") if os_user else None
    with refusals_audited(db, actor, now, "user add"), db.write() as session:
        may(session, actor, "users")
        ref = Resolver(session).resolve(unit, levels=tuple(ROLE_LEVELS[role]))
        if not fits(role, ref.level):
            raise BadInput(f"角色 {ROLES[role]}（{role}）{posts(role)}；{ref.name}（{ref.code}）"
                           f"是{LEVEL_NAMES.get(ref.level, ref.level)}级单位：请改用相应级别的单位或角色")
        if session.get(Official, name) is not None:
            raise BadInput(f"an official named {name} already exists")
        if login and session.scalar(select(Official.name).where(Official.os_user == login)):
            raise BadInput(f"OS account {login} is already mapped to {session.scalar(select(Official.name).where(Official.os_user == login))}")
        session.add(Official(name=name, role=role, unit_code=ref.code, os_user=login, active=1, created_at=utc_text(audit.stamp(session, now)),
                             created_by=str(actor)))
        session.flush()
        audit.append(session, [audit.Entry(now, str(actor), "user_add", ref.code,
                                           detail={"name": name, "role": role, "os_user": login} | _by(actor))])
        return OfficialView(name, role, ref.code, ref.name, login, True)


def set_active(db: Database, name: str, active: bool, actor: Acting | str, now: dt.datetime) -> OfficialView:
    actor = acting(actor)
    with refusals_audited(db, actor, now, "user disable" if not active else "user enable"), db.write() as session:
        may(session, actor, "users")
        o = session.get(Official, name.strip())
        if o is None:
            raise BadInput(f"no official named {name}")
        if not active and o.role == "admin" and session.scalar(
                select(func.count()).select_from(Official).where(Official.role == "admin", Official.active == 1)) <= 1:
            raise BadInput(f"{name} is the last active admin; add another admin first")
        o.active = int(active)
        audit.append(session, [audit.Entry(now, str(actor), "user_enable" if active else "user_disable", o.unit_code,
                                           detail={"name": o.name} | _by(actor))])
        return _view(o, session.get(Unit, o.unit_code).name)


def listing(db: Database) -> list[OfficialView]:
    with db.read() as session:
        rows = session.execute(select(Official, Unit.name).join(Unit, Unit.code == Official.unit_code).order_by(Official.name))
        return [_view(o, n) for o, n in rows]


def _by(actor: Acting) -> dict:
    return {"by": actor.by} if isinstance(actor, Actor) and actor.by else {}
