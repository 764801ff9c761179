"""The campaign's machines drawn from the very data the engine runs (the campaign's `machines`), with the
`transitions` library's own diagram support: each edge names its trigger and guards, each state and
trigger reads in Chinese with its id beside it."""

from __future__ import annotations

import copy

from anjian.i18n import N_, _
from anjian.states.labels import STATE_NAMES, TRIGGER_NAMES, current_campaign
from anjian.states.machines import SPECS
from anjian.workflow.errors import BadInput

MACHINES = tuple(SPECS)  # township, county, city
FORMATS = ("mermaid", "dot", "svg")
TITLES = {  # shown with the machine's id after them: "乡镇规范化建设 township"
    "township": N_("township standardization"),
    "county": N_("county progress"),
    "city": N_("the city's campaign stages"),
}
# A generic family: Graphviz (through fontconfig) and every SVG viewer find a face with CJK glyphs for it.
FONT = "sans-serif"
INSTALL_DOT = N_("svg needs Graphviz's `dot` program, which is not installed here: install Graphviz "
               "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; Windows: "
               "https://graphviz.org/download/), or use --format dot or --format mermaid")


def state_label(level: str, state: str) -> str:
    """What a state's box says: its Chinese name, then its id (e.g. "已申请验收 applied")."""
    name = STATE_NAMES.get((level, state))
    return f"{name} {state}" if name else state


def trigger_label(trigger: str) -> str:
    """What an edge says before its guards: the trigger's Chinese name, then its id."""
    name = TRIGGER_NAMES.get(trigger)
    return f"{name} {trigger}" if name else trigger


def graph_machine(level: str, engine: str):
    """A `GraphMachine` built as `workflow.machine.machine` builds the runtime one, with the guards the
    campaign in use checks for each trigger, and labels."""
    from transitions.extensions.diagrams import GraphMachine

    campaign = current_campaign()
    spec = campaign.machines[level]
    gm = GraphMachine(
        model=None,
        states=list(spec.states),
        # transitions appends " [guard & guard]" to the label; in dot, put the guards on a line of their own
        # the guards the campaign checks for each trigger (the runtime Machine asks them through one condition)
        transitions=[dict({k: t[k] for k in ("trigger", "source", "dest")},
                          label=trigger_label(t["trigger"]) + ("\\n" if engine == "graphviz" else ""),
                          conditions=list(campaign.conditions(level, t["trigger"]))) for t in spec.transitions],
        initial=spec.initial,
        auto_transitions=False,
        send_event=True,
        title=f"{_(TITLES[level])} {level}",
        show_conditions=True,
        graph_engine=engine,
    )
    # Top to bottom: left to right, a chain of states with long guard labels runs off any screen.
    gm.machine_attributes = dict(gm.machine_attributes, rankdir="TB")
    for name, state in gm.states.items():
        state.label = state_label(level, name)  # the markup (and so the graph) reads a state's `label`
    return gm


def render(level: str, fmt: str) -> str:
    """The machine of `level` as mermaid stateDiagram-v2 text, Graphviz dot source, or SVG."""
    if level not in SPECS:
        raise BadInput(_("no machine “{level}”: choose one of {choices}").format(level=level, choices=", ".join(MACHINES)))
    if fmt not in FORMATS:
        raise BadInput(_("no diagram format “{fmt}”: choose one of {choices}").format(fmt=fmt, choices=", ".join(FORMATS)))
    if fmt == "mermaid":
        return _mermaid(level)
    graph = _graphviz(level)
    if fmt == "dot":
        return graph.source
    import graphviz

    try:
        return graph.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise BadInput(_(INSTALL_DOT)) from None


def _mermaid(level: str) -> str:
    gm = graph_machine(level, "mermaid")
    lines = gm.graph_cls(gm).get_graph().source.splitlines()
    # transitions writes the title bare between the front-matter fences; mermaid's front matter is YAML keys.
    if lines[:1] == ["---"] and lines[2:3] == ["---"]:
        lines[1] = f"title: {_(TITLES[level])} {level}"
    return "\n".join(lines) + "\n"


def _graphviz(level: str):
    gm = graph_machine(level, "graphviz")
    if not gm.graph_cls.__module__.endswith("diagrams_graphviz"):  # transitions falls back to mermaid quietly
        raise BadInput(_("the `graphviz` Python package is missing: pip install graphviz"))
    gm.style_attributes = styles = copy.deepcopy(gm.style_attributes)  # per machine, not the class's
    for kind in ("node", "edge", "graph"):
        styles[kind]["default"]["fontname"] = FONT
    styles["graph"]["default"]["labelloc"] = "t"  # the title above the machine, where a reader starts
    graph = gm.graph_cls(gm).get_graph()
    # Where a unit starts, as in UML (and as mermaid's `[*] -->`).
    graph.node("__start__", label="", shape="point", width="0.15", style="filled", fillcolor="black")
    graph.edge("__start__", current_campaign().machines[level].initial)
    return graph
