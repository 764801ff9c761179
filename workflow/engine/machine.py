"""Runs the declared machines with the `transitions` library: one shared Machine per campaign and unit
type, fired for one loaded unit at a time (never `add_model` per row: its cost grows with the square)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from anjian.i18n import _
from anjian.states.guards import Facts, unmet
from anjian.states.labels import TRIGGER_NAMES, state_name
from anjian.states.machines import MachineSpec, of


@dataclass(frozen=True)
class TriggerCheck:
    """Whether a trigger may fire now, and each reason it may not."""

    name: str
    allowed: bool
    unmet: tuple[str, ...]
    dest: str | None


class Subject:
    """The model `transitions` fires: the unit's state plus its guards, each answered from `Facts`."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.state = facts.state
        self._unmet: dict[str, list[str]] = {}

    def unmet(self, guard: str) -> list[str]:
        if guard not in self._unmet:
            self._unmet[guard] = unmet(self.facts, guard)
        return self._unmet[guard]

    def guards_hold(self, event) -> bool:
        """The one condition of every transition `transitions` sees: the guards the campaign names for
        the trigger (its own, or the engine's defaults), so one shared Machine serves every campaign."""
        facts = self.facts
        return not any(self.unmet(g) for g in facts.campaign.conditions(facts.level, event.event.name))


def machine(level: str, campaign=None):
    """The one Machine for a unit type in `campaign` (else the campaign in use), built from its data."""
    spec: MachineSpec = of(level, campaign)
    return _machine(spec.states, spec.initial, tuple((t["trigger"], t["source"], t["dest"]) for t in spec.transitions))


@cache
def _machine(states: tuple[str, ...], initial: str, moves: tuple[tuple[str, str, str], ...]):
    """A Machine per shape: campaigns whose machines are alike (Chengde's and Zhangjiakou's) share one.
    Its one condition asks the unit's campaign for the guards, so the guards need not be in the key."""
    from transitions import Machine

    return Machine(
        model=None,
        states=list(states),
        transitions=[{"trigger": t, "source": src, "dest": dest, "conditions": ["guards_hold"]} for t, src, dest in moves],
        initial=initial,
        auto_transitions=False,
        send_event=True,
    )


def check(facts: Facts, trigger: str) -> TriggerCheck:
    """Evaluate a trigger for a unit without firing it."""
    spec = facts.campaign.machines[facts.level]
    t = spec.transition(trigger)
    if t is None:
        raise KeyError(trigger)
    if facts.state != t["source"]:
        reason = _("the state is “{state}”; “{trigger}” can only be done in the state “{source}”").format(
            state=state_name(facts.level, facts.state), trigger=TRIGGER_NAMES.get(trigger, trigger),
            source=state_name(facts.level, t["source"]))
        return TriggerCheck(trigger, False, (reason,), t["dest"])
    facts.dest = t["dest"]
    subject = Subject(facts)
    reasons = [r for g in facts.campaign.conditions(facts.level, trigger) for r in subject.unmet(g)]
    return TriggerCheck(trigger, not reasons, tuple(reasons), t["dest"])


def fire(facts: Facts, trigger: str) -> str:
    """Fire a trigger through `transitions` and return the new state; the caller checked it first."""
    facts.dest = facts.campaign.machines[facts.level].transition(trigger)["dest"]
    subject = Subject(facts)
    ok = machine(facts.level, facts.campaign).events[trigger].trigger(subject)
    if not ok:  # a guard changed its mind between check and fire: a bug, not an official's error
        raise RuntimeError(f"{trigger} refused by the machine after its check passed")
    return subject.state


def triggers(level: str, campaign=None) -> tuple[str, ...]:
    spec = of(level, campaign)
    return spec.triggers if spec else ()
