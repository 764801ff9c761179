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

from anjian.i18n import _
from anjian.states import permissions as P
from anjian.states.labels import COHORT_NAMES, LEVEL_NAMES, TRIGGER_NAMES, current_campaign
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
        return _("{by} acting as {name}").format(by=self.by, name=self.name) if self.by else self.name

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
    fit = "、".join(LEVEL_NAMES[lv] for lv in LEVEL_NAMES if lv in P.ROLE_LEVELS.get(role, ()))
    return _("may only be posted at a {levels} unit").format(levels=fit) if fit else _("is no known role")


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
    if node is None and (outside := _outside_campaign(session, actor)):
        return outside
    where = (_("{unit}（{code}）is a {level} unit").format(unit=node.name, code=node.code,
                                                          level=LEVEL_NAMES.get(node.level, node.level))
             if node is not None else _("unit {code} does not exist").format(code=actor.unit_code))
    return _("the role {role}（{role_id}）of {actor} {posts}, but where they are posted {where}: an admin must correct "
             "their role or unit (disable them and register them again at the right unit: anjian user disable, "
             "anjian user add)").format(actor=actor.shown, role=P.ROLES.get(actor.role, actor.role), role_id=actor.role,
                                        posts=posts(actor.role), where=where)


def _outside_campaign(session: Session, actor: Actor) -> str | None:
    """Why an official posted at a unit of the registry that the campaign in scope does not cover (another
    city's, where the database runs several campaigns) does not act in it; None if the unit is not in the
    registry at all."""
    from anjian.workflow.store import scope
    from anjian.workflow.store.models import units_table

    name = session.scalar(select(units_table.c.name).where(units_table.c.code == actor.unit_code))
    if name is None:
        return None
    return _("{actor} is posted at {unit}（{code}）, which the campaign {campaign} does not cover: they do not act "
             "in it (name their campaign with --campaign)").format(
        actor=actor.shown, unit=name, code=actor.unit_code, campaign=scope.campaign_id(session))


def _check(session: Session, actor: Actor, roles: frozenset[str], what: str, unit_code: str | None, unit_name: str | None) -> None:
    if why := misposted(session, actor):
        raise denied(why, unit_code)
    if actor.role not in roles:
        allowed = "、".join(P.ROLES[r] + f"（{r}）" for r in sorted(roles)) or _("nobody")
        raise denied(_("{actor} is {role}（{role_id}）: may not {what}; allowed: {allowed}").format(
            actor=actor.shown, role=P.ROLES.get(actor.role, actor.role), role_id=actor.role, what=what,
            allowed=allowed), unit_code)
    if unit_code is not None and not _within(session, actor, unit_code):
        raise denied(_("{actor} acts for {own}; {unit}（{code}）is outside that jurisdiction: may not {what}").format(
            actor=actor.shown, own=actor.unit_code, unit=unit_name or unit_code, code=unit_code, what=what), unit_code)


def may_fire(session: Session, actor: Acting, level: str, trigger: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, P.trigger_roles(level, trigger), _("fire “{trigger}”（{trigger_id}）on a {level}").format(
            trigger=TRIGGER_NAMES.get(trigger, trigger), trigger_id=trigger, level=LEVEL_NAMES.get(level, level)), unit_code, unit_name)


def may_record(session: Session, actor: Acting, level: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, P.RECORD.get(level, frozenset()), _("record a {level}'s checklist").format(level=LEVEL_NAMES.get(level, level)),
               unit_code, unit_name)


def may_designate(session: Session, actor: Acting, cohort: str, unit_code: str, unit_name: str) -> None:
    if official := _official(actor):
        _check(session, official, _designators(cohort), _("designate {cohort}（{cohort_id}）").format(
            cohort=COHORT_NAMES.get(cohort, cohort), cohort_id=cohort), unit_code, unit_name)


def _designators(cohort: str) -> frozenset[str]:
    """The roles the campaign in use lets designate townships into `cohort` (its `designated_by`)."""
    found = current_campaign().cohorts.get(cohort)
    return frozenset(found.designated_by) if found else frozenset()


def may_see(session: Session, actor: Acting, unit_code: str, unit_name: str) -> None:
    """Whether the official may open the unit in full (`show`): a role of states.permissions.SEES_OWN_ONLY
    only within its jurisdiction; every other role anywhere."""
    official = _official(actor)
    if official is not None and official.role in P.SEES_OWN_ONLY:
        _check(session, official, frozenset({official.role}), _("see this unit in full"), unit_code, unit_name)


def seen_within(actor: Acting | None) -> str | None:
    """The unit whose own rows (and those below it) are all a reader of `actor`'s role may see of the
    campaign's files (states.permissions.SEES_OWN_ONLY), or None where the role reads everything."""
    official = _official(actor) if actor is not None else None
    return official.unit_code if official is not None and official.role in P.SEES_OWN_ONLY else None


def may(session: Session, actor: Acting, action: str, unit_code: str | None = None, unit_name: str | None = None) -> None:
    if official := _official(actor):
        _check(session, official, P.ACTIONS.get(action, frozenset()), _("use `{action}`").format(action=action), unit_code, unit_name)


def role_may(actor: Acting, action: str) -> bool:
    """Whether the actor's role may use `action` (states.permissions.ACTIONS) at all, jurisdiction aside:
    what a page offers. Offering is not permitting: the service checks in full (`may`) when it is used."""
    official = _official(actor)
    return official is None or official.role in P.ACTIONS.get(action, frozenset())


def within_reach(session: Session, actor: Acting, unit_code: str) -> bool:
    """Whether the unit is within the actor's jurisdiction (always, for the program itself): what a
    listing of an office's own data may show."""
    official = _official(actor)
    return official is None or official.role == "admin" or _within(session, official, unit_code)


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
            raise denied(_("{actor} and the applicant {name} are both {role}（{role_id}）of {unit}: acceptance, "
                           "rejection and revocation must come from outside the applying body").format(
                actor=official.shown, name=name, unit=unit, role=P.ROLES.get(role, role), role_id=role), unit_code)


DETAILS_KEPT = 20  # the reasons one `denied` audit row quotes; beyond them it gives the total


@contextmanager
def refusals_audited(db, actor: Acting | str, now: dt.datetime, action: str) -> Iterator[None]:
    """Record every NotPermitted refusal in the audit log (in its own transaction), then re-raise."""
    try:
        yield
    except NotPermitted as exc:
        from anjian.workflow.store import audit
        from anjian.workflow.store.models import units_table

        unit = getattr(exc, "unit_code", None)
        with db.write() as session:  # the unit named if the registry has it, whichever campaign covers it
            code = unit if unit and session.scalar(select(func.count()).select_from(units_table)
                                                   .where(units_table.c.code == unit)) else None
            detail = {"attempted": action, "reason": exc.message}
            if exc.details:  # the why, where the message only sums up (a batch, a guard's verdict)
                detail["details"] = list(exc.details[:DETAILS_KEPT])
                if len(exc.details) > DETAILS_KEPT:  # a batch of 100,000 refused rows is one row, not 10 MB
                    detail["details_total"] = len(exc.details)
            if by_of(actor):
                detail["by"] = by_of(actor)
            audit.append(session, [audit.Entry(now, name_of(actor), "denied", code, detail=detail)])
        raise
