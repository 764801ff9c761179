"""A campaign definition (stages, cohorts, milestones, checklists) loaded from TOML and validated.

Errors name the line and the field, so an office editing its own file can find the mistake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anjian.states import labels
from anjian.states.campaign_machines import IDENT, MachineChecks
from anjian.states.campaign_model import (  # noqa: F401  (the model's names, as they have always been imported)
    Applicable,
    Assessment,
    Campaign,
    Cohort,
    Deduction,
    GuardSpec,
    Item,
    Milestone,
    Reminders,
    Rule,
    Stage,
    applicable_items,
)
from anjian.states.locate import Locator
from anjian.states.machines import CLOSED, SPECS, begin_trigger, city_spec

KINDS = ("flag", "count", "text")
BUILTIN = ("chengde-2014", "zhangjiakou-2015", "chengde-2017-review")  # the first is the default



class CampaignError(ValueError):
    """A campaign file that cannot be used; `problems` lists each one with its line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))




def builtin_text(name: str) -> str:
    """The text of a campaign file shipped with anjian."""
    return resources.files("anjian.states").joinpath("campaigns", f"{name}.toml").read_text("utf-8")


def load(text: str, source: str = "<campaign>", stored: bool = False) -> Campaign:
    """Parse and validate a campaign; raise CampaignError listing every problem with its line.
    `stored`: a file a database already runs, loaded again, which checks added since it was loaded (a
    milestone due before its stage starts) do not refuse: a database never stops opening over one."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        where = f"line {at[1]}, {Locator(text).label_at(int(at[1]))}: " if at else ""
        raise CampaignError(source, [f"{where}TOML syntax: {exc}"]) from None
    checker = _Checker(text)
    checker.stored = stored
    campaign = checker.build(data, hashlib.sha256(text.encode("utf-8")).hexdigest())
    if checker.problems:
        raise CampaignError(source, checker.problems)
    return campaign


@labels.register_builtin
def builtin() -> Campaign:
    """The built-in campaign, loaded once (the words officials read when no other campaign is in use)."""
    return load(builtin_text(BUILTIN[0]), BUILTIN[0])


class _Checker(MachineChecks, Locator):
    """Builds a Campaign while collecting problems, each with the line of its field."""

    def __init__(self, text: str):
        super().__init__(text)
        self.problems: list[str] = []
        self.cohort_ids: tuple[str, ...] = ()
        self.declared: dict[str, GuardSpec] = {}
        self.named_guards: dict[str, str] = {}
        self.stage_ids: list[str] = []
        self.stored = False  # a file loaded again from a database (see `load`)
        self.specs = dict(SPECS)  # the machines being built: the engine's, until the file shapes its own
        self.words: dict[tuple, tuple[str, str]] = {}  # the words the file gives its own states and triggers

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

    def named_tables(self, raw: dict, name: str):
        """The tables `[name.KEY]` with their key and place; anything else under `name` is a problem."""
        for key, entry in raw.items():
            if isinstance(entry, dict):
                yield key, entry, (f"{name}.{key}", None)
            else:
                self.problem((name, None, key), f"must be a table [{name}.{key}], not {entry!r}")

    def unknown(self, raw: dict, where: tuple[str, int | None], allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.problem((*where, key), f"unknown field (allowed: {', '.join(sorted(allowed))})")

    # -- building ---------------------------------------------------------------------------------
    def build(self, data: dict, sha: str) -> Campaign:
        self.unknown(data, ("", None), {"campaign", "stages", "cohorts", "milestones", "checklist", "areas", "reminders",
                                     "assessment", "guards", "triggers", "machines"})
        head = self.table(data.get("campaign", {}), "campaign")
        w = ("campaign", None)
        self.unknown(head, w, {"id", "title", "issuer", "issued", "city", "timezone", "document"})
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
        self.declared = self.guards(self.table(data.get("guards", {}), "guards"))
        if stages:
            self.specs["city"] = city_spec([s.id for s in stages])
            for stage in stages:
                if stage.id not in SPECS["city"].states:  # a stage the engine has no word for: the file's
                    self.words["state", "city", stage.id] = (stage.name, stage.name_en)
                    self.words["trigger", begin_trigger(stage.id)] = (
                        f"进入{stage.name}", f"begin the {stage.name_en or stage.id.replace('_', ' ')}")
        self.machines(self.table(data.get("machines", {}), "machines"))
        triggers = self.triggers(self.table(data.get("triggers", {}), "triggers"))
        # checked against the city machine's stages, so that one bad stage is not reported again per milestone
        before = len(self.problems)
        # every stage id declared, with its stage where its dates were good (one bad date is reported once)
        declared = {sid: next((s for s in stages if s.id == sid), None) for sid in self.stage_ids}
        milestones = self.milestones(data.get("milestones", []), issued, declared)
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
            guards=self.declared, triggers=triggers, machines=self.specs, words=self.words,
            document=self.take(head, w, "document", str, "") or "",
        )

    def known_guards(self, level: str) -> set[str]:
        from anjian.states.guards import GUARDS

        return set(GUARDS.get(level, {})) | {name for name, at in self.named_guards.items() if at == level}

    def guards(self, raw: dict) -> dict[str, GuardSpec]:
        from anjian.states.guards import GUARD_KINDS, GUARD_LEVELS, GUARDS

        out: dict[str, GuardSpec] = {}
        for name, entry, w in self.named_tables(raw, "guards"):
            if not IDENT.fullmatch(name) or any(name in g for g in GUARDS.values()):
                self.problem((*w, None), f"a guard's name is lower-case letters, digits and _, and not one of the "
                                         f"engine's own, not {name!r}")
                continue
            before = len(self.problems)
            kind = self.take(entry, w, "kind", str)
            if kind is None:
                continue
            if kind not in GUARD_KINDS:
                self.problem((*w, "kind"), f"unknown kind {kind!r} (kinds: {', '.join(GUARD_KINDS)})")
                continue
            self.named_guards[name] = GUARD_LEVELS[kind]  # a name used elsewhere is not unknown for its own mistake
            wanted = GUARD_KINDS[kind][0]
            self.unknown(entry, w, {"kind", *wanted})
            params = {}
            for p in wanted:
                value = self.take(entry, w, p, str)
                if value is not None and value not in self.cohort_ids:
                    self.problem((*w, p), f"unknown cohort {value!r} (declared: {', '.join(self.cohort_ids)})")
                params[p] = value
            if len(self.problems) == before:
                out[name] = GuardSpec(name, kind, GUARD_LEVELS[kind], params)
        return out

    def triggers(self, raw: dict) -> dict[tuple[str, str], tuple[str, ...]]:
        out: dict[tuple[str, str], tuple[str, ...]] = {}
        for level, table in raw.items():
            if level not in self.specs:
                self.problem(("triggers", None, level), f"unknown level (allowed: {', '.join(self.specs)})")
                continue
            if not isinstance(table, dict):
                self.problem(("triggers", None, level), f"must be a table [triggers.{level}], not {table!r}")
                continue
            w = (f"triggers.{level}", None)
            known = self.known_guards(level)
            for trigger, names in table.items():
                if trigger not in self.specs[level].triggers:
                    self.problem((*w, trigger), f"unknown {level} trigger (triggers: {', '.join(self.specs[level].triggers)})")
                    continue
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    self.problem((*w, trigger), f"must be a list of guard names, not {names!r}")
                    continue
                bad = [n for n in names if n not in known]
                if bad:
                    self.problem((*w, trigger), f"unknown {level} guard {bad[0]!r} (known: {', '.join(sorted(known))})")
                    continue
                out[level, trigger] = tuple(names)
        return out

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
        """The campaign's stages in order: the city machine's states (then `closed`), as many as the plan has."""
        out: list[Stage] = []
        for n, entry in self.array(raw, "stages"):
            w = ("stages", n)
            self.unknown(entry, w, {"id", "name", "name_en", "starts", "ends"})
            sid = self.take(entry, w, "id", str)
            starts, ends = self.take(entry, w, "starts", dt.date), self.take(entry, w, "ends", dt.date)
            if sid is not None and (not IDENT.fullmatch(sid) or sid == CLOSED):
                self.problem((*w, "id"), f"a stage's id is lower-case letters, digits and _, and not {CLOSED!r} (the "
                                         f"city's state once the last stage ends), not {sid!r}")
                sid = None
            if sid and any(s.id == sid for s in out):
                self.problem((*w, "id"), f"duplicate stage {sid!r}")
                sid = None
            if starts and ends and ends < starts:
                self.problem((*w, "ends"), f"{ends} is before starts {starts}")
            if out and starts and starts <= out[-1].starts:
                self.problem((*w, "starts"), f"{starts} is not after the previous stage's start {out[-1].starts} (dates out of order)")
            if sid:
                self.stage_ids.append(sid)
            if sid and starts and ends:
                out.append(Stage(sid, self.take(entry, w, "name", str, sid) or sid, starts, ends,
                                 self.take(entry, w, "name_en", str, "") or ""))
        if not out and not self.problems:
            self.problem(("stages", None, None), "a campaign needs at least one stage ([[stages]] with id, name, starts, ends)",
                         self.top_line("stages") or 1)
        return tuple(out)

    def cohorts(self, raw: dict) -> dict[str, Cohort]:
        from anjian.states.permissions import ROLE_LEVELS

        out: dict[str, Cohort] = {}
        for cid, entry, w in self.named_tables(raw, "cohorts"):
            if not IDENT.fullmatch(cid):
                self.problem((*w, None), f"a cohort's id is lower-case letters, digits and _, not {cid!r}")
                continue
            self.unknown(entry, w, {"name", "name_en", "short", "short_en", "deadline", "decided_by", "designated_by",
                                    "per_county", "requires"})
            per = self.take(entry, w, "per_county", list, None)
            if per is not None and (len(per) != 2 or not all(isinstance(x, int) for x in per) or per[0] > per[1]):
                self.problem((*w, "per_county"), f"must be [least, most], not {per!r}")
                per = None
            requires = tuple(self.take(entry, w, "requires", list, []) or [])
            for r in requires:
                if r not in raw:
                    self.problem((*w, "requires"), f"unknown cohort {r!r} (declared: {', '.join(raw)})")
            by = self.take(entry, w, "designated_by", list, ["city_office"]) or []
            for role in by:
                if role not in ROLE_LEVELS:
                    self.problem((*w, "designated_by"), f"unknown role {role!r} (roles: {', '.join(ROLE_LEVELS)})")
            words = {k: self.take(entry, w, k, str, "") or "" for k in ("name_en", "short", "short_en")}
            out[cid] = Cohort(cid, self.take(entry, w, "name", str, cid) or cid, self.take(entry, w, "deadline", dt.date, None),
                              tuple(per) if per else None, requires, designated_by=tuple(by), **words)
        self.cohort_ids = tuple(raw)
        return out

    def milestones(self, raw: list, issued: dt.date, stage_ids: dict[str, Stage | None]) -> tuple[Milestone, ...]:
        from anjian.states.guards import GUARDS

        out: list[Milestone] = []
        for n, entry in self.array(raw, "milestones"):
            w = ("milestones", n)
            self.unknown(entry, w, {"id", "name", "short", "short_en", "deadline", "stage", "rules"})
            mid, deadline = self.take(entry, w, "id", str), self.take(entry, w, "deadline", dt.date)
            stage = self.take(entry, w, "stage", str)
            if stage and stage_ids and stage not in stage_ids:
                self.problem((*w, "stage"), f"unknown stage {stage!r} (stages: {', '.join(stage_ids)})")
            elif stage and deadline and stage_ids.get(stage) and issued <= deadline < stage_ids[stage].starts \
                    and not self.stored:
                self.problem((*w, "deadline"), f"{deadline} is before its stage {stage!r} starts ({stage_ids[stage].starts})")
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
                out.append(Milestone(mid, self.take(entry, w, "name", str, mid), deadline, stage or "", tuple(r for r in rules if r),
                                     self.take(entry, w, "short", str, "") or "", self.take(entry, w, "short_en", str, "") or ""))
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
            if s not in self.specs[level].states:
                say("states", f"unknown {level} state {s!r}")
                bad = True
        for g in names["guards"]:
            if g not in self.known_guards(level):
                say("guards", f"unknown {level} guard {g!r}")
                bad = True
        for key, cohorts in (("cohorts", names["cohorts"]), ("exclude_cohorts", names["exclude_cohorts"]),
                             ("when_has", (when_has,) if when_has else ())):
            for c in cohorts:
                if c not in self.cohort_ids:
                    say(key, f"unknown cohort {c!r} (declared: {', '.join(self.cohort_ids)})")
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
                if c not in self.cohort_ids:
                    self.problem((*w, "by_cohort"), f"unknown cohort {c!r}")
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    self.problem((*w, "by_cohort"), f"{c} must be a whole number, not {v!r}")
            minimum_of = self.take(entry, w, "minimum_of", str, None)
            if minimum_of and not any(i.id == minimum_of and i.kind == "count" for i in out):
                self.problem((*w, "minimum_of"), f"{minimum_of!r} is not an earlier count item")
            only_for = tuple(self.take(entry, w, "only_for", list, []) or [])
            for c in only_for:
                if c not in self.cohort_ids:
                    self.problem((*w, "only_for"), f"unknown cohort {c!r}")
            if iid and kind:
                out.append(Item(iid, area or "", self.take(entry, w, "label", str, iid) or iid, kind, required,
                                dict(by_cohort), minimum_of, only_for, bool(self.take(entry, w, "optional", bool, False))))
        return tuple(out)
