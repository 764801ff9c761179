"""Who is acting, and whether they may: roles and jurisdiction from `states.permissions`, deny by
default, separation of duties, and an audit row for every refusal.

Services take the actor either as a plain name (trusted callers inside the program: the scheduler,
tests, benchmarks) or as an `Actor` resolved from the operating-system account at the CLI edge;
an `Actor` is always checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anjian.states import permissions as P
from anjian.workflow.errors import NotPermitted


@dataclass(frozen=True)
class Actor:
    """An official acting now; `by` is the admin acting as them (recorded as "by acting as name")."""

    name: str
    role: str
    unit_code: str
    by: str | None = None

    def __str__(self) -> str:
        return self.name

    @property
    def shown(self) -> str:
        return f"{self.by} acting as {self.name}" if self.by else self.name


def name_of(actor: str | Actor) -> str:
    return actor.name if isinstance(actor, Actor) else actor


def by_of(actor: str | Actor) -> str | None:
    return actor.by if isinstance(actor, Actor) else None


def _within(session: Session, actor: Actor, unit_code: str) -> bool:
    """Whether the unit is the actor's own unit or below it."""
    from anjian.workflow.store.models import Unit

    parents: dict[str, str | None] = session.info.setdefault("anjian_parents", {})  # the registry never changes
    code, seen = unit_code, set()
    while code and code not in seen:
        if code == actor.unit_code:
            return True
        seen.add(code)
        if code not in parents:  # a batch asks once per unit above its rows, not once per row
            parents[code] = session.scalar(select(Unit.parent_code).where(Unit.code == code))
        code = parents[code]
    return False


def denied(message: str, unit_code: str | None) -> NotPermitted:
    exc = NotPermitted(message)
    exc.unit_code = unit_code
    return exc


def _check(session: Session, actor: Actor, roles: frozenset[str], what: str, unit_code: str | None, unit_name: str | None) -> None:
    if actor.role not in roles:
        allowed = "、".join(P.ROLES[r] + f"（{r}）" for r in sorted(roles)) or "nobody"
        raise denied(f"{actor.shown} is {P.ROLES.get(actor.role, actor.role)}（{actor.role}）: may not {what}; "
                     f"allowed: {allowed}", unit_code)
    if unit_code is not None and not _within(session, actor, unit_code):
        raise denied(f"{actor.shown} acts for {actor.unit_code}; {unit_name or unit_code}（{unit_code}）"
                     f"is outside that jurisdiction: may not {what}", unit_code)


def may_fire(session: Session, actor: str | Actor, level: str, trigger: str, unit_code: str, unit_name: str) -> None:
    if isinstance(actor, Actor):
        _check(session, actor, P.TRIGGERS.get((level, trigger), frozenset()), f"fire {trigger} on a {level}", unit_code, unit_name)


def may_record(session: Session, actor: str | Actor, level: str, unit_code: str, unit_name: str) -> None:
    if isinstance(actor, Actor):
        _check(session, actor, P.RECORD.get(level, frozenset()), f"record a {level}'s checklist", unit_code, unit_name)


def may_designate(session: Session, actor: str | Actor, cohort: str, unit_code: str, unit_name: str) -> None:
    if isinstance(actor, Actor):
        _check(session, actor, P.DESIGNATE.get(cohort, frozenset()), f"designate {cohort}", unit_code, unit_name)


def may(session: Session, actor: str | Actor, action: str, unit_code: str | None = None, unit_name: str | None = None) -> None:
    if isinstance(actor, Actor):
        _check(session, actor, P.ACTIONS.get(action, frozenset()), f"use `{action}`", unit_code, unit_name)


def not_own_unit(session: Session, actor: str | Actor, unit_code: str, applicant: str | None, trigger: str) -> None:
    """An inspection verdict must come from outside the body whose official applied: not the same
    unit in the same role (the city's office and its inspectors are different bodies)."""
    from anjian.workflow.store.models import Official

    if not isinstance(actor, Actor) or not applicant or trigger not in P.INSPECTION_TRIGGERS:
        return
    if actor.name == applicant:  # the guard inspector_is_not_applicant says so, with every other reason
        return
    row = session.execute(select(Official.unit_code, Official.role).where(Official.name == applicant)).first()
    applicant_unit = row.unit_code if row and row.role == actor.role else None
    if applicant_unit is not None and applicant_unit == actor.unit_code:
        raise denied(f"{actor.shown} belongs to the unit that applied ({applicant_unit}, via {applicant}); "
                     "acceptance is done by someone outside the applying unit", unit_code)


@contextmanager
def refusals_audited(db, actor: str | Actor, now: dt.datetime, action: str) -> Iterator[None]:
    """Record every NotPermitted refusal in the audit log (in its own transaction), then re-raise."""
    try:
        yield
    except NotPermitted as exc:
        from anjian.workflow.store import audit
        from anjian.workflow.store.models import Unit

        unit = getattr(exc, "unit_code", None)
        with db.write() as session:
            code = unit if unit and session.scalar(select(func.count()).select_from(Unit).where(Unit.code == unit)) else None
            detail = {"attempted": action, "reason": exc.message}
            if exc.details:  # the why, where the message only sums up (a batch, a guard's verdict)
                detail["details"] = list(exc.details)
            if by_of(actor):
                detail["by"] = by_of(actor)
            audit.append(session, [audit.Entry(now, name_of(actor), "denied", code, detail=detail)])
        raise
