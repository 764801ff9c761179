"""Who is acting, and whether they may: roles and jurisdiction from `states.permissions`, deny by
default, separation of duties, and an audit row for every refusal.

Every check takes either an `Actor` (an official resolved from the operating-system account at the
CLI edge: always checked) or a `SystemActor` (`Actor.system("scheduler")`: the program itself, which
callers pass deliberately and which no role or jurisdiction limits). Anything else — None, a plain
name — is a programming error (TypeError), never a check skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
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

    @staticmethod
    def system(name: str) -> SystemActor:
        """The program itself acting under `name` (the scheduler, init's own loads)."""
        return SystemActor(name)


@dataclass(frozen=True)
class SystemActor:
    """The program acting on its own account: trusted by construction (no role, no jurisdiction),
    named in the audit log like an official."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a system actor needs a name, not {self.name!r}")

    def __str__(self) -> str:
        return self.name

    @property
    def by(self) -> None:
        return None

    @property
    def shown(self) -> str:
        return self.name


Acting = Actor | SystemActor


def acting(actor: Acting | str) -> Acting:
    """`actor` as the services pass it on: an Actor or SystemActor as it is; a bare name is taken as
    `Actor.system(name)` here, in one place, for callers inside the program that name themselves
    (tests and benchmarks call the services so); None or anything else is a TypeError."""
    if isinstance(actor, Actor | SystemActor):
        return actor
    if isinstance(actor, str) and actor:
        return SystemActor(actor)
    raise TypeError(f"an action needs an Actor or Actor.system(name), not {actor!r}")


def _official(actor: Acting) -> Actor | None:
    """The official whose rights are checked, or None for the program itself; anything else is a bug."""
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, SystemActor):
        return None
    raise TypeError(f"authorization needs an Actor or Actor.system(name), not {actor!r}: "
                    "pass the actor through authz.acting() at the service's entry")


def name_of(actor: Acting | str) -> str:
    """The name an audit row or a `changed_by` records (a bare name: who tried, before being identified)."""
    return actor if isinstance(actor, str) else actor.name


def by_of(actor: Acting | str) -> str | None:
    return actor.by if isinstance(actor, Actor) else None


def _within(session: Session, actor: Actor, unit_code: str) -> bool:
    """Whether the unit is the actor's own unit or below it."""
    from anjian.workflow.engine.tree import tree_of

    tree = tree_of(session)  # a batch asks once per unit above its rows, not once per row
    tree.ensure([unit_code])
    return unit_code == actor.unit_code or tree.within(unit_code, actor.unit_code)


def denied(message: str, unit_code: str | None) -> NotPermitted:
    exc = NotPermitted(message)
    exc.unit_code = unit_code
    return exc


def posts(role: str) -> str:
    """Where an official of `role` may be posted, in words (from states.permissions.ROLE_LEVELS)."""
    from anjian.states.labels import LEVEL_NAMES

    fit = "、".join(LEVEL_NAMES[lv] for lv in LEVEL_NAMES if lv in P.ROLE_LEVELS.get(role, ()))
    return f"只能设在{fit}级单位" if fit else "不是已知的角色"


def misposted(session: Session, actor: Actor) -> str | None:
    """Why the official's role does not fit the level of the unit they are posted at (an official stored so
    by an older version), or None: such an official is refused every action, never guessed at."""
    from anjian.states.labels import LEVEL_NAMES
    from anjian.workflow.engine.tree import tree_of

    levels = P.ROLE_LEVELS.get(actor.role, frozenset())
    if levels == P.ANYWHERE:
        return None
    tree = tree_of(session)
    tree.ensure([actor.unit_code])
    node = tree.get(actor.unit_code)
    if node is not None and node.level in levels:
        return None
    where = (f"{node.name}（{node.code}）是{LEVEL_NAMES.get(node.level, node.level)}级单位" if node is not None
             else f"单位 {actor.unit_code} 不存在")
    return (f"{actor.shown} 的角色 {P.ROLES.get(actor.role, actor.role)}（{actor.role}）{posts(actor.role)}，而其所在{where}："
            "须由管理员改正其角色或单位（停用后按正确的单位重新登记：anjian user disable、anjian user add）")


def _check(session: Session, actor: Actor, roles: frozenset[str], what: str, unit_code: str | None, unit_name: str | None) -> None:
    if why := misposted(session, actor):
        raise denied(why, unit_code)
    if actor.role not in roles:
        allowed = "、".join(P.ROLES[r] + f"（{r}）" for r in sorted(roles)) or "nobody"
        raise denied(f"{actor.shown} is {P.ROLES.get(actor.role, actor.role)}（{actor.role}）: may not {what}; "
                     f"allowed: {allowed}", unit_code)
    if unit_code is not None and not _within(session, actor, unit_code):
        raise denied(f"{actor.shown} acts for {actor.unit_code}; {unit_name or unit_code}（{unit_code}）"
                     f"is outside that jurisdiction: may not {what}", unit_code)


def may_fire(session: Session, actor: Acting, level: str, trigger: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, P.TRIGGERS.get((level, trigger), frozenset()), f"fire {trigger} on a {level}", unit_code, unit_name)


def may_record(session: Session, actor: Acting, level: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, P.RECORD.get(level, frozenset()), f"record a {level}'s checklist", unit_code, unit_name)


def may_designate(session: Session, actor: Acting, cohort: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, P.DESIGNATE.get(cohort, frozenset()), f"designate {cohort}", unit_code, unit_name)


def may(session: Session, actor: Acting, action: str, unit_code: str | None = None, unit_name: str | None = None) -> None:
    if official := _official(actor):
        _check(session, official, P.ACTIONS.get(action, frozenset()), f"use `{action}`", unit_code, unit_name)


def not_own_unit(session: Session, actor: Acting, unit_code: str, applicants: Iterable[str], trigger: str) -> None:
    """A verdict on an application (states.permissions.INSPECTION_TRIGGERS) must come from outside the bodies
    its applicants applied from: not the same role at the same unit as any of them (the city's office and
    its inspectors are different bodies). An applicant giving the verdict is the guard's to refuse."""
    from anjian.workflow.store.models import Official

    official = _official(actor)
    others = sorted(set(applicants) - {official.name}) if official is not None else []
    if not others or trigger not in P.INSPECTION_TRIGGERS:
        return
    rows = session.execute(select(Official.name, Official.unit_code, Official.role).where(Official.name.in_(others)))
    for name, unit, role in sorted(rows):
        if (unit, role) == (official.unit_code, official.role):
            raise denied(f"{official.shown} 与申请人 {name} 同为 {unit} 的{P.ROLES.get(role, role)}（{role}）："
                         f"验收、不予通过和撤销须由申请单位以外的人员作出", unit_code)


DETAILS_KEPT = 20  # the reasons one `denied` audit row quotes; beyond them it gives the total


@contextmanager
def refusals_audited(db, actor: Acting | str, now: dt.datetime, action: str) -> Iterator[None]:
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
                detail["details"] = list(exc.details[:DETAILS_KEPT])
                if len(exc.details) > DETAILS_KEPT:  # a batch of 100,000 refused rows is one row, not 10 MB
                    detail["details_total"] = len(exc.details)
            if by_of(actor):
                detail["by"] = by_of(actor)
            audit.append(session, [audit.Entry(now, name_of(actor), "denied", code, detail=detail)])
        raise
