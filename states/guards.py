"""The plan's rules as named guards.

Each guard takes the `Facts` of one unit at one moment and returns the reasons, in words an official
can act on, why it is not satisfied; the guard holds when that list is empty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from anjian.i18n import N_, _
from anjian.i18n import current as language_now
from anjian.states.labels import state_name

if TYPE_CHECKING:  # a campaign validates its guard names against GUARDS: only the type goes this way
    from anjian.states.campaign import Campaign

FLAG_TRUE = "是"
FLAG_FALSE = "否"


@dataclass(frozen=True)
class Child:
    """A township as its county's guards see it."""

    code: str
    name: str
    state: str
    cohorts: frozenset[str]


@dataclass(frozen=True)
class Evidence:
    path: str
    sha256: str


@dataclass
class Facts:
    """Everything a guard may look at for one unit, loaded once before a trigger fires."""

    level: str
    code: str
    name: str
    state: str
    cohorts: frozenset[str]
    campaign: Campaign
    now: dt.datetime
    checklist: dict[str, str] = field(default_factory=dict)
    children: tuple[Child, ...] = ()
    actor: str | None = None
    note: str | None = None
    evidence: tuple[Evidence, ...] = ()
    last_applicant: str | None = None
    dest: str | None = None
    applicants: frozenset[str] = frozenset()  # everyone who applied for the township or resubmitted it


@dataclass(frozen=True)
class ItemStatus:
    item: str
    label: str
    area: str
    kind: str
    required: object
    value: object
    ok: bool


def parse_value(kind: str, raw: str | None) -> object:
    """A stored checklist value as its kind: bool for a flag, int for a count, str for text."""
    if raw is None:
        return None
    if kind == "flag":
        return raw == FLAG_TRUE
    if kind == "count":
        return int(raw)
    return raw


def checklist(facts: Facts) -> list[ItemStatus]:
    """Each checklist item this unit has to fill (`applicable_items`), with what it requires and whether it is ok."""
    out: list[ItemStatus] = []
    values: dict[str, object] = {}
    applicable = {a.item.id: a.required for a in facts.campaign.applicable_items(facts.level, facts.cohorts)}
    for item in facts.campaign.items(facts.level):
        value = parse_value(item.kind, facts.checklist.get(item.id))
        values[item.id] = value
        linked = values.get(item.minimum_of) if item.minimum_of else None
        if item.id in applicable:
            required = applicable[item.id]
        elif item.applies(facts.cohorts) and isinstance(linked, int) and linked > 0:
            required = item.requirement(facts.cohorts)  # 2 full-time staff recorded: both need the certificate
        else:
            continue
        if item.minimum_of:
            linked = values.get(item.minimum_of)
            required = max(required, linked if isinstance(linked, int) else 0)
        if item.kind == "flag":
            ok = value is True or required is False
        elif item.kind == "count":
            ok = value is not None and value >= required
        else:
            ok = bool(value and str(value).strip())
        out.append(ItemStatus(item.id, item.label, item.area, item.kind, required, value, ok))
    return out


def _describe_missing(s: ItemStatus) -> str:
    if s.kind == "flag":
        return _("{label}: not yet in place ({item})").format(label=s.label, item=s.item)
    if s.kind == "count":
        have = _("not recorded") if s.value is None else _("{value} now").format(value=s.value)
        return _("{label}: at least {required} needed, {have} ({item})").format(
            label=s.label, required=s.required, have=have, item=s.item)
    return _("{label}: not recorded ({item})").format(label=s.label, item=s.item)


def checklist_complete(f: Facts) -> list[str]:
    return [_describe_missing(s) for s in checklist(f) if not s.ok]


def _needs_note(what: str) -> Callable[[Facts], list[str]]:
    def guard(f: Facts) -> list[str]:
        return [] if f.note and f.note.strip() else [_("the {what} must be given (--note)").format(what=_(what))]

    guard.__doc__ = f"A note carrying the {what}."
    return guard


def inspector_is_not_applicant(f: Facts) -> list[str]:
    """A verdict (accept, reject, revoke) from someone who ever applied for the township or resubmitted it."""
    if f.actor and (f.actor == f.last_applicant or f.actor in f.applicants):
        return [_("the verdict must come from someone other than the applicant ({actor} applied for this acceptance)")
                .format(actor=f.actor)]
    return []


def plan_document_attached(f: Facts) -> list[str]:
    return [] if f.evidence else [_("the plan document must be attached (--evidence PLAN_FILE)")]


def _names(children: list[Child], limit: int = 5) -> str:
    shown = "、".join(f"{c.name}（{state_name('township', c.state)}）" for c in children[:limit])
    return shown + (_(" and others, {count} in all").format(count=len(children)) if len(children) > limit else "")


def _word(f: Facts, cohort: str) -> str:
    """The cohort's name as the unit's campaign writes it, in the current language."""
    found = f.campaign.cohorts.get(cohort)
    return found.word(False, language_now()) if found else cohort


def _cohort_accepted(cohort: str) -> Callable[[Facts], list[str]]:
    def guard(f: Facts) -> list[str]:
        late = [c for c in f.children if cohort in c.cohorts and c.state != "accepted"]
        return [_("not every {cohort} has been accepted yet: {names}").format(cohort=_word(f, cohort), names=_names(late))] if late else []

    guard.__doc__ = f"Every township of the cohort {cohort} is accepted."
    return guard


def _cohort_named_and_accepted(cohort: str) -> Callable[[Facts], list[str]]:
    def guard(f: Facts) -> list[str]:
        named = [c for c in f.children if cohort in c.cohorts]
        found = f.campaign.cohorts.get(cohort)
        least, most = found.per_county if found and found.per_county else (1, len(f.children) or 1)
        reasons = []
        if len(named) < least:
            reasons.append(_("{least}–{most} townships must be named {cohort}, there are {count} "
                             "(anjian designate TOWNSHIP {cohort_id})").format(
                least=least, most=most, count=len(named), cohort=_word(f, cohort), cohort_id=cohort))
        if len(named) > most:
            reasons.append(_("at most {most} townships may be named {cohort}, there are {count}").format(
                most=most, count=len(named), cohort=_word(f, cohort)))
        late = [c for c in named if c.state != "accepted"]
        if late:
            reasons.append(_("not every {cohort} has been accepted yet: {names}").format(
                cohort=_word(f, cohort), names=_names(late)))
        return reasons

    guard.__doc__ = f"As many townships named {cohort} as the cohort's per_county asks, every one accepted."
    return guard


def _others_started(cohort: str | None) -> Callable[[Facts], list[str]]:
    def guard(f: Facts) -> list[str]:
        idle = [c for c in f.children if (cohort is None or cohort not in c.cohorts) and c.state == "not_started"]
        return [_("the other townships have not all started: {names}").format(names=_names(idle))] if idle else []

    guard.__doc__ = f"Every township outside the cohort {cohort} has started."
    return guard


def all_townships_accepted(f: Facts) -> list[str]:
    late = [c for c in f.children if c.state != "accepted"]
    return [_("some townships are not up to standard yet: {names}").format(names=_names(late))] if late else []


def stage_date_reached(f: Facts) -> list[str]:
    stage = f.campaign.stage(f.dest or "")
    if stage is None:  # `closed` has no stage of its own: it follows the last stage's end
        last = f.campaign.stages[-1]
        starts = last.ends + dt.timedelta(days=1)
    else:
        starts = stage.starts
    today = f.now.astimezone(_tz(f.campaign)).date()
    return [] if today >= starts else [_("not before {starts} (today is {today})").format(starts=starts, today=today)]


def _tz(campaign: Campaign):
    from zoneinfo import ZoneInfo

    return ZoneInfo(campaign.timezone)


# The engine's own guards, by level: what every campaign may name without declaring it.
GUARDS: dict[str, dict[str, Callable[[Facts], list[str]]]] = {
    "township": {
        "checklist_complete": checklist_complete,
        "inspection_note_given": _needs_note(N_("inspector's opinion")),
        "inspector_is_not_applicant": inspector_is_not_applicant,
        "rejection_reason_given": _needs_note(N_("reason for rejection and what to rectify")),
        "reinspection_finding_given": _needs_note(N_("problems found on re-inspection")),
    },
    "county": {
        "plan_document_attached": plan_document_attached,
        "county_checklist_complete": checklist_complete,
        "all_townships_accepted": all_townships_accepted,
        "review_note_given": _needs_note(N_("review summary")),
    },
    "city": {"stage_date_reached": stage_date_reached},
}

# The kinds of guard a campaign declares for itself (its `[guards.NAME]` tables), each with the parameters
# it takes: a county's townships of a cohort all accepted; as many named to a cohort as its `per_county`
# asks, and accepted; every township outside a cohort started.
GUARD_KINDS: dict[str, tuple[tuple[str, ...], Callable[..., Callable[[Facts], list[str]]]]] = {
    "cohort_accepted": (("cohort",), _cohort_accepted),
    "cohort_named_and_accepted": (("cohort",), _cohort_named_and_accepted),
    "others_started": (("except_cohort",), _others_started),
}
GUARD_LEVELS = {"cohort_accepted": "county", "cohort_named_and_accepted": "county", "others_started": "county"}


def guard_of(campaign: Campaign, level: str, name: str) -> Callable[[Facts], list[str]]:
    """The guard `name` of a unit of `level`: the engine's own, or one the campaign declares."""
    own = GUARDS.get(level, {}).get(name)
    if own is not None:
        return own
    spec = campaign.guards[name]
    return _built(campaign.sha256, name, spec.kind, tuple(sorted(spec.params.items())))


@cache
def _built(sha: str, name: str, kind: str, params: tuple) -> Callable[[Facts], list[str]]:
    return GUARD_KINDS[kind][1](*(dict(params).get(p) for p in GUARD_KINDS[kind][0]))


def unmet(facts: Facts, name: str) -> list[str]:
    """The reasons guard `name` does not hold for this unit (none: it holds)."""
    return guard_of(facts.campaign, facts.level, name)(facts)
