"""A campaign definition (stages, cohorts, milestones, checklists) loaded from TOML and validated.

Errors name the line and the field, so an office editing its own file can find the mistake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anjian.states.labels import COHORTS
from anjian.states.locate import Locator
from anjian.states.machines import SPECS

KINDS = ("flag", "count", "text")
BUILTIN = ("chengde-2014",)


class CampaignError(ValueError):
    """A campaign file that cannot be used; `problems` lists each one with its line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    starts: dt.date
    ends: dt.date


@dataclass(frozen=True)
class Cohort:
    id: str
    name: str
    deadline: dt.date | None
    per_county: tuple[int, int] | None = None
    requires: tuple[str, ...] = ()


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

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


applicable_items = Campaign.applicable_items  # applicable_items(campaign, level, cohorts), for the views


def builtin_text(name: str) -> str:
    """The text of a campaign file shipped with anjian."""
    return resources.files("anjian.states").joinpath("campaigns", f"{name}.toml").read_text("utf-8")


def load(text: str, source: str = "<campaign>") -> Campaign:
    """Parse and validate a campaign; raise CampaignError listing every problem with its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        where = f"line {at[1]}, {Locator(text).label_at(int(at[1]))}: " if at else ""
        raise CampaignError(source, [f"{where}TOML syntax: {exc}"]) from None
    checker = _Checker(text)
    campaign = checker.build(data, hashlib.sha256(text.encode("utf-8")).hexdigest())
    if checker.problems:
        raise CampaignError(source, checker.problems)
    return campaign


class _Checker(Locator):
    """Builds a Campaign while collecting problems, each with the line of its field."""

    def __init__(self, text: str):
        super().__init__(text)
        self.problems: list[str] = []

    def problem(self, where: tuple[str, int | None, str | None], message: str, line: int | None = None) -> None:
        table, index, key = where
        line = line or self.line_of(table, index, key)
        label = ".".join(filter(None, [table + (f"[{index}]" if index is not None else ""), key]))
        self.problems.append(f"line {line or '?'}, {label}: {message}")

    def take(self, raw: dict, where: tuple[str, int | None], key: str, kind: type | tuple, default: Any = ...) -> Any:
        value = raw.get(key, default)
        if value is ...:
            self.problem((*where, key), "is required")
            return None
        # to isinstance a bool is an int and a datetime is a date; to a campaign file neither is
        numeric = kind is int or isinstance(kind, tuple) and int in kind
        wrong = (not isinstance(value, kind) or isinstance(value, bool) and numeric
                 or kind is dt.date and isinstance(value, dt.datetime))
        if value is not default and wrong:
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem((*where, key), f"must be {expected}, not {value!r}")
            return None
        return value

    def table(self, raw: Any, name: str) -> dict:
        """`raw` when it is a table; otherwise a problem, and an empty table to go on with."""
        if isinstance(raw, dict):
            return raw
        self.problem(("", None, name), f"must be a table [{name}], not {raw!r}")
        return {}

    def array(self, raw: Any, name: str) -> list[tuple[int, dict]]:
        """The tables of an array `[[name]]` with their index; anything else is a problem."""
        if not isinstance(raw, list):
            self.problem(("", None, name), f"must be an array of tables [[{name}]], not {raw!r}")
            return []
        for n, entry in enumerate(raw):
            if not isinstance(entry, dict):
                self.problem((name, n, None), f"must be a table, not {entry!r}",
                             self.line_of(name, n, None) or self.top_line(name))
        return [(n, entry) for n, entry in enumerate(raw) if isinstance(entry, dict)]

    def unknown(self, raw: dict, where: tuple[str, int | None], allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.problem((*where, key), f"unknown field (allowed: {', '.join(sorted(allowed))})")

    # -- building ---------------------------------------------------------------------------------
    def build(self, data: dict, sha: str) -> Campaign:
        self.unknown(data, ("", None), {"campaign", "stages", "cohorts", "milestones", "checklist", "areas", "reminders",
                                     "assessment"})
        head = self.table(data.get("campaign", {}), "campaign")
        w = ("campaign", None)
        self.unknown(head, w, {"id", "title", "issuer", "issued", "city", "timezone"})
        issued = self.take(head, w, "issued", dt.date) or dt.date.min
        timezone = self.take(head, w, "timezone", str, "Asia/Shanghai") or "Asia/Shanghai"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem((*w, "timezone"), f"unknown time zone {timezone!r} (e.g. Asia/Shanghai)")
        stages = self.stages(data.get("stages", []))
        cohorts = self.cohorts(self.table(data.get("cohorts", {}), "cohorts"))
        areas = self.table(data.get("areas", {}), "areas")
        lists = self.table(data.get("checklist", {}), "checklist")
        for level, value in lists.items():  # a misspelt level would silently drop its whole checklist
            if level not in ("township", "county"):
                self.problem((f"checklist.{level}", 0 if isinstance(value, list) else None, None),
                             "unknown checklist level (allowed: county, township)")
        checklists = {level: self.items(level, lists.get(level, []), areas) for level in ("township", "county")}
        # checked against the city machine's stages, so that one bad stage is not reported again per milestone
        before = len(self.problems)
        milestones = self.milestones(data.get("milestones", []), issued, set(SPECS["city"].states[:-1]))
        self.milestones_ok = len(self.problems) == before
        return Campaign(
            id=self.take(head, w, "id", str) or "",
            title=self.take(head, w, "title", str) or "",
            issuer=self.take(head, w, "issuer", str, "") or "",
            issued=issued,
            city=self.take(head, w, "city", str, "") or "",
            timezone=timezone,
            stages=stages, cohorts=cohorts, milestones=milestones, checklists=checklists,
            areas=dict(areas), sha256=sha, reminders=self.reminders(self.table(data.get("reminders", {}), "reminders")),
            assessment=self.assessment(self.table(data.get("assessment", {}), "assessment"), data.get("milestones", [])),
        )

    def assessment(self, raw: dict, declared: Any) -> Assessment:
        # Checked against the milestones as written, so a milestone already reported is not again here.
        declared = [m for m in declared if isinstance(m, dict)] if isinstance(declared, list) else []
        levels = {m.get("id"): {r.get("level") for r in m.get("rules", []) if isinstance(r, dict)}
                  for m in declared if isinstance(m.get("rules", []), list)}
        w = ("assessment", None)
        self.unknown(raw, w, {"base", "deductions"})
        base = self.take(raw, w, "base", (int, float), 100)
        out: list[Deduction] = []
        for n, entry in self.array(raw.get("deductions", []), "assessment.deductions"):
            dw = ("assessment.deductions", n)
            self.unknown(entry, dw, {"milestone", "level", "late", "missed"})
            mid = self.take(entry, dw, "milestone", str)
            level = self.take(entry, dw, "level", str)
            known = [m.get("id") for m in declared if isinstance(m.get("id"), str)]
            if not self.milestones_ok:  # the milestones' own problems come first; their references after
                known = [mid] if mid in known else []
            elif mid and mid not in known:
                self.problem((*dw, "milestone"), f"unknown milestone {mid!r} (known: {', '.join(known)})")
            elif mid in levels and level in ("county", "township") and level not in levels[mid]:
                self.problem((*dw, "level"), f"milestone {mid!r} has no rule for level {level!r}")
            if level and level not in ("county", "township"):
                self.problem((*dw, "level"), f"must be county or township, not {level!r}")
            points = []
            for key in ("late", "missed"):
                v = self.take(entry, dw, key, (int, float), 0)
                if v is not None and v < 0:
                    self.problem((*dw, key), f"must be 0 or more points, not {v!r}")
                points.append(float(v or 0))
            if mid and level and any(d.milestone == mid and d.level == level for d in out):
                self.problem((*dw, "milestone"), f"a second deduction for {mid!r} at level {level!r}")
            if mid in known and level in ("county", "township"):
                out.append(Deduction(mid, level, *points))
        return Assessment(float(base if base is not None else 100), tuple(out))

    def reminders(self, raw: dict) -> Reminders:
        w = ("reminders", None)
        self.unknown(raw, w, {"before", "overdue_every"})
        before = self.take(raw, w, "before", list, list(Reminders.before)) or []
        if not before or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in before):
            self.problem((*w, "before"), f"must be a list of whole numbers of days above 0, not {before!r}")
            before = list(Reminders.before)
        every = self.take(raw, w, "overdue_every", int, Reminders.overdue_every)
        if not isinstance(every, int) or every < 1:
            self.problem((*w, "overdue_every"), f"must be a whole number of days above 0, not {every!r}")
            every = Reminders.overdue_every
        return Reminders(tuple(sorted(set(before), reverse=True)), every)

    def stages(self, raw: list) -> tuple[Stage, ...]:
        out: list[Stage] = []
        city_states = SPECS["city"].states
        for n, entry in self.array(raw, "stages"):
            w = ("stages", n)
            self.unknown(entry, w, {"id", "name", "starts", "ends"})
            sid = self.take(entry, w, "id", str)
            starts, ends = self.take(entry, w, "starts", dt.date), self.take(entry, w, "ends", dt.date)
            if sid is not None and sid not in city_states[:-1]:
                self.problem((*w, "id"), f"unknown state {sid!r} (the city machine's stages: {', '.join(city_states[:-1])})")
            if starts and ends and ends < starts:
                self.problem((*w, "ends"), f"{ends} is before starts {starts}")
            if out and starts and starts <= out[-1].starts:
                self.problem((*w, "starts"), f"{starts} is not after the previous stage's start {out[-1].starts} (dates out of order)")
            if sid and starts and ends:
                out.append(Stage(sid, self.take(entry, w, "name", str, sid), starts, ends))
        if not self.problems and [s.id for s in out] != list(city_states[:-1]):
            self.problem(("stages", None, None), f"must declare the stages {', '.join(city_states[:-1])} in this order")
        return tuple(out)

    def cohorts(self, raw: dict) -> dict[str, Cohort]:
        out: dict[str, Cohort] = {}
        for cid, entry in raw.items():
            w = (f"cohorts.{cid}", None)
            if not isinstance(entry, dict):
                self.problem(("cohorts", None, cid), f"must be a table [cohorts.{cid}], not {entry!r}")
                continue
            if cid not in COHORTS:
                self.problem((*w, None), f"unknown cohort {cid!r} (known: {', '.join(COHORTS)})")
                continue
            self.unknown(entry, w, {"name", "deadline", "decided_by", "per_county", "requires"})
            per = self.take(entry, w, "per_county", list, None)
            if per is not None and (len(per) != 2 or not all(isinstance(x, int) for x in per) or per[0] > per[1]):
                self.problem((*w, "per_county"), f"must be [least, most], not {per!r}")
                per = None
            requires = tuple(self.take(entry, w, "requires", list, []) or [])
            for r in requires:
                if r not in COHORTS:
                    self.problem((*w, "requires"), f"unknown cohort {r!r}")
            out[cid] = Cohort(cid, self.take(entry, w, "name", str, cid), self.take(entry, w, "deadline", dt.date, None),
                              tuple(per) if per else None, requires)
        return out

    def milestones(self, raw: list, issued: dt.date, stage_ids: set[str]) -> tuple[Milestone, ...]:
        from anjian.states.guards import GUARDS

        out: list[Milestone] = []
        for n, entry in self.array(raw, "milestones"):
            w = ("milestones", n)
            self.unknown(entry, w, {"id", "name", "deadline", "stage", "rules"})
            mid, deadline = self.take(entry, w, "id", str), self.take(entry, w, "deadline", dt.date)
            stage = self.take(entry, w, "stage", str)
            if stage and stage_ids and stage not in stage_ids:
                self.problem((*w, "stage"), f"unknown stage {stage!r}")
            if deadline and deadline < issued:
                self.problem((*w, "deadline"), f"{deadline} is before the campaign was issued ({issued})")
            if deadline and out and deadline < out[-1].deadline:
                self.problem((*w, "deadline"), f"{deadline} is before the previous milestone's {out[-1].deadline} (dates out of order)")
            if mid and any(m.id == mid for m in out):
                self.problem((*w, "id"), f"duplicate milestone {mid!r}")
            rules = []
            for k, raw_rule in enumerate(self.take(entry, w, "rules", list, []) or []):
                rules.append(self.rule(raw_rule, w, k, GUARDS))
            if mid and deadline:
                out.append(Milestone(mid, self.take(entry, w, "name", str, mid), deadline, stage or "", tuple(r for r in rules if r)))
        return tuple(out)

    def rule(self, raw: dict, w: tuple[str, int], k: int, guards: dict) -> Rule | None:
        line = self.line_in_array(*w, "rules", k)

        def say(key: str | None, message: str) -> None:  # a rule sits on its own line inside `rules = [...]`
            self.problem((*w, f"rules[{k}]" + (f".{key}" if key else "")), message, line)

        if not isinstance(raw, dict):
            say(None, f"must be a table like {{ level = \"township\", states = [\"accepted\"] }}, not {raw!r}")
            return None
        allowed = {"level", "cohorts", "exclude_cohorts", "states", "guards", "when_has"}
        for key in raw:
            if key not in allowed:
                say(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")
        names: dict[str, tuple[str, ...]] = {}
        for key in ("cohorts", "exclude_cohorts", "states", "guards"):
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                say(key, f"must be a list of names, not {value!r}")
                value = []
            names[key] = tuple(value)
        when_has = raw.get("when_has")
        if when_has is not None and not isinstance(when_has, str):
            say("when_has", f"must be a cohort name, not {when_has!r}")
            when_has = None
        level = raw.get("level")
        if level not in ("township", "county"):
            say("level", f"rule level must be township or county, not {level!r}")
            return None
        bad = False
        for s in names["states"]:
            if s not in SPECS[level].states:
                say("states", f"unknown {level} state {s!r}")
                bad = True
        for g in names["guards"]:
            if g not in guards.get(level, {}):
                say("guards", f"unknown {level} guard {g!r}")
                bad = True
        for key, cohorts in (("cohorts", names["cohorts"]), ("exclude_cohorts", names["exclude_cohorts"]),
                             ("when_has", (when_has,) if when_has else ())):
            for c in cohorts:
                if c not in COHORTS:
                    say(key, f"unknown cohort {c!r}")
                    bad = True
        if not names["states"] and not names["guards"]:
            say(None, "a rule needs `states` or `guards`")
            bad = True
        if bad:
            return None
        return Rule(level, names["cohorts"], names["exclude_cohorts"], names["states"], names["guards"], when_has)

    def items(self, level: str, raw: list, areas: dict) -> tuple[Item, ...]:
        out: list[Item] = []
        table = f"checklist.{level}"
        for n, entry in self.array(raw, table):
            w = (table, n)
            self.unknown(entry, w, {"id", "area", "label", "kind", "required", "by_cohort", "minimum_of", "only_for", "optional"})
            iid, kind = self.take(entry, w, "id", str), self.take(entry, w, "kind", str)
            if kind is not None and kind not in KINDS:
                self.problem((*w, "kind"), f"must be one of {', '.join(KINDS)}, not {kind!r}")
                continue
            if iid and any(i.id == iid for i in out):
                self.problem((*w, "id"), f"duplicate item {iid!r}")
            area = self.take(entry, w, "area", str, "")
            if areas and area and area not in areas:
                self.problem((*w, "area"), f"unknown area {area!r}")
            required = self.take(entry, w, "required", int, None) if kind == "count" else None
            if isinstance(required, int) and required < 0:
                self.problem((*w, "required"), "must not be negative")
            by_cohort = self.take(entry, w, "by_cohort", dict, {}) or {}
            for c, v in by_cohort.items():
                if c not in COHORTS:
                    self.problem((*w, "by_cohort"), f"unknown cohort {c!r}")
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    self.problem((*w, "by_cohort"), f"{c} must be a whole number, not {v!r}")
            minimum_of = self.take(entry, w, "minimum_of", str, None)
            if minimum_of and not any(i.id == minimum_of and i.kind == "count" for i in out):
                self.problem((*w, "minimum_of"), f"{minimum_of!r} is not an earlier count item")
            only_for = tuple(self.take(entry, w, "only_for", list, []) or [])
            for c in only_for:
                if c not in COHORTS:
                    self.problem((*w, "only_for"), f"unknown cohort {c!r}")
            if iid and kind:
                out.append(Item(iid, area or "", self.take(entry, w, "label", str, iid) or iid, kind, required,
                                dict(by_cohort), minimum_of, only_for, bool(self.take(entry, w, "optional", bool, False))))
        return tuple(out)
