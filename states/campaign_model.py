"""What a campaign is, as the engine reads it: its stages, cohorts, milestones and rules, checklists,
reminder ladder, assessment, and the guards it declares — plain frozen data, built and validated from its
file by `states.campaign`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from anjian.states.machines import SPECS, MachineSpec


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    name_en: str = ""


@dataclass(frozen=True)
class Cohort:
    """A category of townships the campaign names (示范乡镇, 重点乡镇 …): its words in Chinese and English
    (full and short, for tables), who may put a township in it, and what it asks of a county."""

    id: str
    name: str
    deadline: dt.date | None
    per_county: tuple[int, int] | None = None
    requires: tuple[str, ...] = ()
    name_en: str = ""
    short: str = ""
    short_en: str = ""
    designated_by: tuple[str, ...] = ("city_office",)

    def word(self, short: bool, lang: str) -> str:
        """Its name (or short name) in `lang`: Chinese unless English is asked for, where one is given."""
        if lang == "en":
            return (self.short_en if short else "") or self.name_en or self.id.replace("_", " ")
        return (self.short if short else "") or self.name


@dataclass(frozen=True)
class Rule:
    """Which units owe a milestone, and what makes it met for them."""

    level: str
    cohorts: tuple[str, ...] = ()
    exclude_cohorts: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    when_has: str | None = None

    def applies(self, level: str, cohorts: frozenset[str]) -> bool:
        if level != self.level:
            return False
        if self.cohorts and not cohorts.intersection(self.cohorts):
            return False
        return not cohorts.intersection(self.exclude_cohorts)


@dataclass(frozen=True)
class Milestone:
    id: str
    name: str
    deadline: dt.date
    stage: str
    rules: tuple[Rule, ...]
    short: str = ""  # a few characters for a table's column; none: the name, cut short
    short_en: str = ""

    def word(self, lang: str) -> str | None:
        """Its short name in `lang`, where the campaign gives one."""
        return (self.short_en if lang == "en" else self.short) or None


@dataclass(frozen=True)
class Item:
    """One checklist fact; `requirement(cohorts)` says what makes it ok for a unit."""

    id: str
    area: str
    label: str
    kind: str
    required: Any = None
    by_cohort: dict[str, Any] = field(default_factory=dict)
    minimum_of: str | None = None
    only_for: tuple[str, ...] = ()
    optional: bool = False

    def applies(self, cohorts: frozenset[str]) -> bool:
        return not self.only_for or bool(cohorts.intersection(self.only_for))

    def requirement(self, cohorts: frozenset[str]) -> Any:
        """True for a required flag, a minimum for a count, None for any text (False: optional)."""
        if self.kind == "flag":
            return not self.optional
        if self.kind == "text":
            return None
        raised = [v for c, v in self.by_cohort.items() if c in cohorts]
        return max([self.required or 0, *raised])


class Applicable(NamedTuple):
    """A checklist item a unit has to fill, with what it requires of that unit (see `Item.requirement`)."""

    item: Item
    required: Any


@dataclass(frozen=True)
class GuardSpec:
    """A guard the campaign declares: a kind from the engine's library (guards.GUARD_KINDS) with its
    parameters, for units of `level`."""

    name: str
    kind: str
    level: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Reminders:
    """The reminder ladder: days before each deadline, then an overdue notice every N days."""

    before: tuple[int, ...] = (30, 14, 7, 3, 1)
    overdue_every: int = 7


@dataclass(frozen=True)
class Deduction:
    """Points a county loses for one unit and one milestone: `late` when it was met after the deadline,
    `missed` while it is still not met once the deadline has passed. `level` says whose milestone:
    the county's own, or each of its townships'."""

    milestone: str
    level: str
    late: float
    missed: float


@dataclass(frozen=True)
class Assessment:
    """The target-assessment (考核) rules: every county starts from `base` points."""

    base: float = 100.0
    deductions: tuple[Deduction, ...] = ()

    def rule(self, milestone: str, level: str) -> Deduction | None:
        return next((d for d in self.deductions if d.milestone == milestone and d.level == level), None)


@dataclass(frozen=True)
class Campaign:
    id: str
    title: str
    issuer: str
    issued: dt.date
    city: str
    timezone: str
    stages: tuple[Stage, ...]
    cohorts: dict[str, Cohort]
    milestones: tuple[Milestone, ...]
    checklists: dict[str, tuple[Item, ...]]
    areas: dict[str, str]
    sha256: str
    reminders: Reminders = Reminders()
    assessment: Assessment = Assessment()
    guards: dict[str, GuardSpec] = field(default_factory=dict)
    triggers: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # the machines by level: the city's from the stages, the county's from `[machines.county]` where the
    # file declares it, else the engine's (states.machines)
    machines: dict[str, MachineSpec] = field(default_factory=lambda: dict(SPECS))
    # the words of the states and triggers the file declares: ("state", level, id) or ("trigger", id) -> (zh, en)
    words: dict[tuple, tuple[str, str]] = field(default_factory=dict)
    # the plan's document as notices and circulars cite it (《…》); none: the title and 推进方案
    document: str = ""

    def machine(self, level: str | None) -> MachineSpec | None:
        return self.machines.get(level) if level else None

    def conditions(self, level: str, trigger: str) -> tuple[str, ...]:
        """The guards a trigger checks: the campaign's (its `[triggers.LEVEL]` table), else its machine's."""
        if (level, trigger) in self.triggers:
            return self.triggers[level, trigger]
        spec = self.machine(level)
        t = spec.transition(trigger) if spec else None
        return tuple(t["conditions"]) if t else ()

    def word(self, key: tuple, lang: str) -> str | None:
        """The name the file gives a state (("state", level, id)) or a trigger (("trigger", id)) in `lang`."""
        found = self.words.get(key)
        if found is None:
            return None
        return (found[1] if lang == "en" else "") or found[0]

    def items(self, level: str) -> tuple[Item, ...]:
        return self.checklists.get(level, ())

    def item(self, level: str, item_id: str) -> Item | None:
        return next((i for i in self.items(level) if i.id == item_id), None)

    def applicable_items(self, level: str, cohorts: frozenset[str] | set[str] | tuple[str, ...]) -> list[Applicable]:
        """The checklist items a unit of this level and these cohorts has to fill, each with its requirement.
        Left out: items limited to other cohorts (`only_for`), and counts whose minimum is 0 for these
        cohorts (专职安全监管人员 ≥ 0 for an ordinary township) unless the minimum comes from another item
        that applies (`minimum_of`). Optional flags (False) and text items (None: any text) stay."""
        cohorts, out, kept = frozenset(cohorts), [], set()
        for item in self.items(level):
            required = item.requirement(cohorts)
            if not item.applies(cohorts) or (item.kind == "count" and not required
                                             and not (item.minimum_of and item.minimum_of in kept)):
                continue
            kept.add(item.id)
            out.append(Applicable(item, required))
        return out

    def milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)

    @property
    def cohort_ids(self) -> tuple[str, ...]:
        """The campaign's cohorts in the order its file declares them (the order tables show them)."""
        return tuple(self.cohorts)

    @property
    def milestone_cohorts(self) -> tuple[str, ...]:
        """The cohorts whose townships count toward a milestone (a milestone rule names them); the others
        only raise checklist thresholds."""
        named = {c for m in self.milestones for r in m.rules for c in r.cohorts}
        return tuple(c for c in self.cohorts if c in named)

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


applicable_items = Campaign.applicable_items  # applicable_items(campaign, level, cohorts), for the views
