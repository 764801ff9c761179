"""The part of a campaign file that shapes its machines: `[machines.county]`, a county machine of the
plan's own (its states, and its transitions with their guards and the roles that may fire each), checked
field by field with its line like the rest of the file (`states.campaign`)."""

from __future__ import annotations

import re
from typing import Any

from anjian.states.machines import RESERVED, MachineSpec

IDENT = re.compile(r"[a-z][a-z0-9_]{0,39}")  # an id (cohort, stage, state, trigger): what officials type and the database stores
# The roles that may fire a county trigger a campaign declares: those posted at a county or above it. An
# admin keeps the system, not the plan; a township's chief acts on their own township only.
COUNTY_ACTORS = ("county_official", "city_office", "city_inspector")


class MachineChecks:
    """Mixed into the campaign's checker (which gives `problem`, `take`, `array`, `named_tables`,
    `unknown`, `line_of`, `line_in_array`, `known_guards`, and the `specs` and `words` being built)."""

    problems: list[str]
    specs: dict[str, MachineSpec]
    words: dict[tuple, tuple[str, str]]

    def machines(self, raw: dict) -> None:
        """`[machines.county]`: the county machine of this campaign's plan, in place of the engine's."""
        for level, entry, w in self.named_tables(raw, "machines"):
            if level != "county":
                why = ("the city machine is the campaign's [[stages]]" if level == "city" else
                       "the township machine is the standard's acceptance procedure, the same in every campaign"
                       if level == "township" else "unknown level")
                self.problem((*w, None), f"only [machines.county] may be declared ({why})")
                continue
            self.unknown(entry, w, {"states", "transitions"})
            before = len(self.problems)
            states = self.machine_states(entry, w)
            transitions = self.machine_transitions(level, entry, states)
            if len(self.problems) == before and states and transitions:
                reached = {states[0]} | {t["dest"] for t in transitions}
                for sid in states:
                    if sid not in reached:
                        self.problem((*w, "states"), f"state {sid!r} is the destination of no transition (it could never be reached)")
            if states:  # with problems, the file is refused; the rest of it is still checked against its own states
                self.specs[level] = MachineSpec(level, tuple(states), states[0], tuple(transitions))

    def machine_states(self, entry: dict, w: tuple[str, None]) -> list[str]:
        raw = self.take(entry, w, "states", list)
        if raw is None:
            return []
        out: list[str] = []
        for k, state in enumerate(raw):
            line = self.line_in_array(w[0], None, "states", k) or self.line_of(w[0], None, "states")
            sw = (w[0], None, f"states[{k}]")
            if not isinstance(state, dict) or not isinstance(state.get("id"), str) or not isinstance(state.get("name"), str):
                self.problem(sw, f"must be a table like {{ id = \"self_check\", name = \"自查整改\" }}, not {state!r}", line)
                continue
            for key in state:
                if key not in ("id", "name", "name_en"):
                    self.problem((*sw[:2], f"{sw[2]}.{key}"), "unknown field (allowed: id, name, name_en)", line)
            sid = state["id"]
            if not IDENT.fullmatch(sid) or sid in out:
                self.problem(sw, f"a state's id is lower-case letters, digits and _, once each, not {sid!r}", line)
                continue
            out.append(sid)
            self.words["state", "county", sid] = (state["name"], state.get("name_en") or "")
        if len(out) < 2 and len(out) == len(raw):
            self.problem((*w, "states"), f"a machine needs at least two states, not {len(out)}")
        return out

    def machine_transitions(self, level: str, entry: dict, states: list[str]) -> list[dict[str, Any]]:
        from anjian.states.permissions import ROLE_LEVELS

        table = f"machines.{level}.transitions"
        others = {t for lv, spec in self.specs.items() if lv != level for t in spec.triggers}
        known = self.known_guards(level)
        out: list[dict[str, Any]] = []
        for n, t in self.array(entry.get("transitions", []), table):
            tw = (table, n)
            self.unknown(t, tw, {"trigger", "name", "name_en", "source", "dest", "guards", "by"})
            trigger, name = self.take(t, tw, "trigger", str), self.take(t, tw, "name", str)
            source, dest = self.take(t, tw, "source", str), self.take(t, tw, "dest", str)
            guards, by = self.take(t, tw, "guards", list, []), self.take(t, tw, "by", list)
            if trigger is not None and (not IDENT.fullmatch(trigger) or trigger in RESERVED or trigger in others):
                self.problem((*tw, "trigger"), f"a trigger's id is lower-case letters, digits and _, and neither an audit "
                                               f"action nor another machine's trigger, not {trigger!r}")
                trigger = None
            if trigger and any(x["trigger"] == trigger for x in out):
                self.problem((*tw, "trigger"), f"duplicate trigger {trigger!r} (each trigger has one transition)")
            for key, value in (("source", source), ("dest", dest)):
                if value is not None and states and value not in states:
                    self.problem((*tw, key), f"unknown {level} state {value!r} (states: {', '.join(states)})")
            for g in guards or []:
                if g not in known:
                    self.problem((*tw, "guards"), f"unknown {level} guard {g!r} (known: {', '.join(sorted(known))})")
            for role in by or []:
                if role not in COUNTY_ACTORS:
                    what = "unknown role" if role not in ROLE_LEVELS else "a role that may not act on a county"
                    self.problem((*tw, "by"), f"{what} {role!r} (roles: {', '.join(COUNTY_ACTORS)})")
            if by is not None and not by:
                self.problem((*tw, "by"), "names no role: nobody could fire it")
            if trigger and name and source and dest and by:
                out.append({"trigger": trigger, "source": source, "dest": dest, "conditions": list(guards or []),
                            "by": tuple(by)})
                self.words["trigger", trigger] = (name, self.take(t, tw, "name_en", str, "") or "")
        if not out and isinstance(entry.get("transitions", []), list) and not entry.get("transitions"):
            self.problem((table.rsplit(".", 1)[0], None, "transitions"), "a machine needs its transitions "
                                                                         f"([[{table}]] with trigger, source, dest, by)")
        return out

