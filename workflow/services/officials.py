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

from anjian.i18n import _
from anjian.states.labels import LEVEL_NAMES, ROLE_NAMES, parse_role
from anjian.states.permissions import ROLE_LEVELS, ROLES, fits
from anjian.workflow.clock import utc_text
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting, Actor, acting, may, posts, refusals_audited
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Official, Password, units_table


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
    has_password: bool = False  # a password for the service is set (`user passwd`, or the web's first one)
    must_change: bool = False  # it was set by an admin and waits to be changed at the first sign-in


def _view(o: Official, unit_name: str, password: Password | None = None) -> OfficialView:
    return OfficialView(o.name, o.role, o.unit_code, unit_name, o.os_user, bool(o.active), password is not None,
                        bool(password.must_change) if password is not None else False)


def identify(session: Session, login: str, as_user: str | None = None) -> Actor:
    """The official acting: mapped from the OS account; an admin may act as another official."""
    me = session.scalar(select(Official).where(Official.os_user == login))
    if me is None or not me.active:
        if not session.scalar(select(func.count()).select_from(Official)):
            raise NotPermitted(_("this database has no officials yet: run `anjian init` to make this account its admin"))
        if me is not None:
            raise NotPermitted(_("operating-system account {login} is disabled; an admin can run "
                                 "`anjian user enable {name}`").format(login=login, name=me.name))
        raise NotPermitted(_("operating-system account {login} is not mapped to any official; an admin can run "
                             "`anjian user add NAME --role ROLE --unit UNIT --os-user {login}`").format(login=login))
    if not as_user or as_user == me.name:
        return Actor(me.name, me.role, me.unit_code)
    if me.role != "admin":
        raise NotPermitted(_("{name} is not an admin: --as/ANJIAN_USER is only honoured for admin accounts").format(name=me.name))
    other = session.get(Official, as_user)
    if other is None or not other.active:
        raise NotPermitted(_("--as {name}: no active official of that name (see `anjian user list`)").format(name=as_user))
    return Actor(other.name, other.role, other.unit_code, by=me.name)


def ensure_admin(session: Session, login: str, now: dt.datetime) -> str | None:
    """On a database with no officials, make the current account its admin (the first `init`)."""
    if session.scalar(select(func.count()).select_from(Official)):
        return None
    units = units_table.c  # the registry's, whichever campaign covers them
    top = session.scalar(select(units.code).where(units.parent_code.is_(None)).order_by(units.code).limit(1)) or \
        session.scalar(select(units.code).order_by(func.length(units.code), units.code).limit(1))
    session.add(Official(name=login, role="admin", unit_code=top, os_user=login, active=1, created_at=utc_text(audit.stamp(session, now)),
                         created_by=login))
    session.flush()
    audit.append(session, [audit.Entry(now, login, "user_add", None, detail={"name": login, "role": "admin", "os_user": login,
                                                                       "unit": top, "first_admin": True})])
    return login


def _clean(name: str, what: str) -> str:
    value = unicodedata.normalize("NFKC", name).strip()
    if not value or len(value) > 64 or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise BadInput(_("{what} {value!r} must be 1–64 printable characters").format(what=what, value=name))
    if "acting as" in value:
        raise BadInput(_("{what} {value!r} may not contain 'acting as'").format(what=what, value=name))
    return value


def role_of(text: str) -> str:
    """The role identifier an official typed: `county_official`, `county-official`, 县区工作人员 or its English name."""
    role = parse_role(text or "")
    if role not in ROLES:
        raise BadInput(_("role {role!r} is not one of {choices}").format(
            role=text, choices="、".join(f"{r}（{ROLE_NAMES[r]}）" for r in ROLES)))
    return role


def _misfit(role: str, ref) -> BadInput:
    return BadInput(_("role {role_name} ({role}) {posts}; {unit} ({code}) is a {level}-level unit: "
                      "choose a unit or a role of the matching level").format(
        role_name=ROLE_NAMES[role], role=role, posts=posts(role), unit=ref.name, code=ref.code,
        level=LEVEL_NAMES.get(ref.level, ref.level)))


def _login_taken(session: Session, login: str, name: str | None = None) -> None:
    holder = session.scalar(select(Official.name).where(Official.os_user == login))
    if holder is not None and holder != name:
        raise BadInput(_("OS account {login} is already mapped to {name}").format(login=login, name=holder))


def add(db: Database, name: str, role: str, unit: str, os_user: str | None, actor: Acting | str, now: dt.datetime) -> OfficialView:
    """Register an official (admins only)."""
    actor = acting(actor)
    name = _clean(name, _("name"))
    role = role_of(role)
    login = _clean(os_user, "--os-user") if os_user else None
    with refusals_audited(db, actor, now, "user add"), db.write() as session:
        may(session, actor, "users")
        ref = Resolver(session).resolve(unit, levels=tuple(ROLE_LEVELS[role]))
        if not fits(role, ref.level):
            raise _misfit(role, ref)
        if session.get(Official, name) is not None:
            raise BadInput(_("an official named {name} already exists").format(name=name))
        if login:
            _login_taken(session, login)
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
            raise BadInput(_("no official named {name} (see `anjian user list`)").format(name=name))
        if not active and o.role == "admin" and _admins(session) <= 1:
            raise BadInput(_("{name} is the last active admin; add another admin first").format(name=name))
        o.active = int(active)
        audit.append(session, [audit.Entry(now, str(actor), "user_enable" if active else "user_disable", o.unit_code,
                                           detail={"name": o.name} | _by(actor))])
        return _view(o, session.scalar(select(units_table.c.name).where(units_table.c.code == o.unit_code)))


def _admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Official).where(Official.role == "admin", Official.active == 1))


def edit(db: Database, name: str, actor: Acting | str, now: dt.datetime, *, os_user: str | None = None,
         role: str | None = None, unit: str | None = None, new_name: str | None = None) -> OfficialView:
    """Change an official's OS account, role, unit or name (admins only), under the rules of `add`:
    the role fits the unit's level, an OS account maps to one official, names are unique, and the last
    active admin stays an admin. Audited as `user_edit` with the whole resulting record."""
    actor = acting(actor)
    wanted_role = role_of(role) if role is not None else None
    login = (_clean(os_user, "--login") if os_user.strip() else "") if os_user is not None else None
    renamed = _clean(new_name, "--name") if new_name is not None else None
    with refusals_audited(db, actor, now, "user edit"), db.write() as session:
        may(session, actor, "users")
        o = session.get(Official, name.strip())
        if o is None:
            raise BadInput(_("no official named {name} (see `anjian user list`)").format(name=name))
        role_after = wanted_role or o.role
        if unit is not None:
            ref = Resolver(session).resolve(unit, levels=tuple(ROLE_LEVELS[role_after]))
        else:
            ref = Resolver(session).resolve(o.unit_code)
        if not fits(role_after, ref.level):
            raise _misfit(role_after, ref)
        if o.role == "admin" and role_after != "admin" and o.active and _admins(session) <= 1:
            raise BadInput(_("{name} is the last active admin; add another admin first").format(name=o.name))
        if login:
            _login_taken(session, login, o.name)
        if renamed is not None and renamed != o.name and session.get(Official, renamed) is not None:
            raise BadInput(_("an official named {name} already exists").format(name=renamed))
        after = {"role": role_after, "unit": ref.code, "os_user": o.os_user if login is None else (login or None),
                 "new_name": renamed or o.name}
        before = {"role": o.role, "unit": o.unit_code, "os_user": o.os_user, "new_name": o.name}
        changed = sorted(k for k in after if after[k] != before[k])
        if not changed:
            return _view(o, ref.name)
        old_name = o.name
        if after["new_name"] != old_name:
            # the name is the key: a renamed official is the same row under a new key
            session.execute(Official.__table__.update().where(Official.name == old_name).values(name=after["new_name"]))
            session.expire_all()
            o = session.get(Official, after["new_name"])
        o.role, o.unit_code, o.os_user = after["role"], after["unit"], after["os_user"]
        session.flush()
        audit.append(session, [audit.Entry(now, str(actor), "user_edit", ref.code,
                                           detail={"name": old_name, **after, "changed": changed} | _by(actor))])
        return _view(o, ref.name)


def listing(db: Database, actor: Acting | None = None) -> list[OfficialView]:
    """Every official `actor` may list (the offices that organize people, each within its jurisdiction),
    with whether a password for the service is set and must still be changed."""
    with db.read() as session:
        if actor is not None:
            authz.may(session, actor, "user_list")
        rows = session.execute(select(Official, units_table.c.name, Password)
                               .join(units_table, units_table.c.code == Official.unit_code)
                               .outerjoin(Password, Password.official == Official.name).order_by(Official.name))
        views = [_view(o, n, pw) for o, n, pw in rows]
        if actor is not None:
            views = [v for v in views if authz.within_reach(session, actor, v.unit)]
        return views


def _by(actor: Acting) -> dict:
    return {"by": actor.by} if isinstance(actor, Actor) and actor.by else {}
