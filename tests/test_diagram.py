"""`anjian diagram`: each machine as mermaid, dot and SVG, drawn from the definitions the engine runs,
every transition an edge naming its trigger and guards, states and triggers in Chinese with their ids."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from anjian.states.labels import STATE_NAMES, TRIGGER_NAMES
from anjian.states.machines import SPECS
from anjian.workflow.reports.diagram import graph_machine, state_label, trigger_label

LEVELS = list(SPECS)
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed")

# What a line of the mermaid text may be: the stateDiagram-v2 statements transitions writes.
MERMAID_LINE = re.compile(
    r"(direction (LR|RL|TB|BT)"
    r"|classDef \w+ [\w:,#-]+"
    r"|class \w+ \w+"
    r'|state "[^"\n]+" as \w+'
    r"|(\w+|\[\*\]) --> \w+(: [^\n]+)?"
    r"|)",
    re.IGNORECASE,
)
MERMAID_EDGE = re.compile(r"^\s*(\w+) --> (\w+): (.+)$", re.MULTILINE)
MERMAID_STATE = re.compile(r'^\s*state "([^"]+)" as (\w+)$', re.MULTILINE)
DOT_EDGE = re.compile(r'^\s*(\w+) -> (\w+) \[label="((?:[^"\\]|\\.)*)"', re.MULTILINE)
DOT_NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', re.MULTILINE)


@pytest.fixture
def anjian(tmp_path, monkeypatch) -> Callable[..., Result]:
    """Run `anjian ARGS…` with no database at all: a diagram needs none."""
    from anjian.workflow.cli import cli as group

    monkeypatch.setenv("ANJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANJIAN_DB", str(tmp_path / "never-created.db"))

    def run(*args: str) -> Result:
        return CliRunner().invoke(group, list(args), catch_exceptions=False)

    return run


def drawn(anjian, level: str, fmt: str) -> str:
    r = anjian("diagram", level, "--format", fmt)
    assert r.exit_code == 0, r.output
    return r.stdout


def guards_of(label: str) -> list[str]:
    """The guard names an edge label lists between brackets, `&`-joined as transitions writes them."""
    m = re.search(r"\[([^\]]*)\]", label)
    return [g.strip() for g in m.group(1).split("&")] if m else []


def edges_by_trigger(edges: list[tuple[str, str, str]]) -> dict[str, tuple[str, str, list[str]]]:
    """trigger -> (source, dest, guards), from (source, dest, label) edges; labels joined by " | " split."""
    out = {}
    for src, dst, label in edges:
        for part in label.split(" | "):
            head = part.split("[")[0].replace("\\n", " ").split()
            out[head[-1]] = (src, dst, guards_of(part))
    return out


def expected(level: str) -> dict[str, tuple[str, str, list[str]]]:
    """Each trigger's source, dest and the guards the built-in campaign checks for it."""
    from anjian.states.labels import current_campaign

    campaign = current_campaign()
    return {t["trigger"]: (t["source"], t["dest"], list(campaign.conditions(level, t["trigger"])))
            for t in SPECS[level].transitions}


# -- mermaid ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
def test_mermaid_is_a_state_diagram(anjian, level):
    """The mermaid text is a stateDiagram-v2 whose every line is a statement of that grammar, with a
    YAML title in its front matter, every edge between declared states, and the initial state marked."""
    text = drawn(anjian, level, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "---" and lines[1].startswith("title: ") and lines[2] == "---"
    assert lines[3] == "stateDiagram-v2"
    bad = [line for line in lines[4:] if not MERMAID_LINE.fullmatch(line.strip())]
    assert bad == []
    declared = {sid for _, sid in MERMAID_STATE.findall(text)}
    assert declared == set(SPECS[level].states)
    assert {s for e in MERMAID_EDGE.findall(text) for s in e[:2]} <= declared
    assert f"[*] --> {SPECS[level].initial}" in text


@pytest.mark.parametrize("level", LEVELS)
def test_mermaid_has_every_transition_with_its_guards(anjian, level):
    """Each transition of SPECS is exactly one mermaid edge from its source to its dest, labelled with
    the trigger's Chinese name and id, and listing its guards in order (none where it has none)."""
    text = drawn(anjian, level, "mermaid")
    edges = MERMAID_EDGE.findall(text)
    assert edges_by_trigger(edges) == expected(level)
    labels = " | ".join(label for *_, label in edges)
    for t in SPECS[level].transitions:
        assert trigger_label(t["trigger"]) in labels
        assert TRIGGER_NAMES[t["trigger"]] in labels


@pytest.mark.parametrize("level", LEVELS)
def test_mermaid_states_read_in_chinese_with_their_ids(anjian, level):
    """Every state's box says its Chinese name and then its id, e.g. "已申请验收 applied"."""
    states = dict((sid, label) for label, sid in MERMAID_STATE.findall(drawn(anjian, level, "mermaid")))
    assert states == {s: f"{STATE_NAMES[level, s]} {s}" for s in SPECS[level].states}


def test_the_township_edges_an_official_reads(anjian):
    """Spot check against the README: apply needs checklist_complete, accept needs the inspector's note
    and someone other than the applicant, start needs nothing."""
    text = drawn(anjian, "township", "mermaid")
    assert "building --> applied: 申请验收 apply [checklist_complete]" in text
    assert "applied --> accepted: 验收通过 accept [inspection_note_given & inspector_is_not_applicant]" in text
    assert "not_started --> building: 开展创建 start\n" in text
    assert 'state "已申请验收 applied" as applied' in text


# -- dot and svg -----------------------------------------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
def test_dot_has_every_transition_with_its_guards(anjian, level):
    """The dot source has one edge per transition with its trigger and guards, a node per state
    labelled in Chinese with its id, and an arrow from a start point into the initial state."""
    text = drawn(anjian, level, "dot")
    assert text.startswith("digraph ")
    edges = [e for e in DOT_EDGE.findall(text) if e[0] != "__start__"]
    assert edges_by_trigger(edges) == expected(level)
    nodes = {n: label.removesuffix("\\l") for n, label in DOT_NODE.findall(text) if n != "__start__"}
    assert nodes == {s: state_label(level, s) for s in SPECS[level].states}
    assert f"__start__ -> {SPECS[level].initial}" in text


@needs_dot
@pytest.mark.parametrize("level", LEVELS)
def test_dot_renders_with_graphviz(anjian, level, tmp_path):
    """`dot -Tsvg` accepts the dot source as it is."""
    src = tmp_path / f"{level}.dot"
    src.write_text(drawn(anjian, level, "dot"), encoding="utf-8")
    done = subprocess.run(["dot", "-Tsvg", str(src)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert ET.fromstring(done.stdout).tag.endswith("svg")


@needs_dot
@pytest.mark.parametrize("level", LEVELS)
def test_svg_is_xml_with_the_states_and_guards(anjian, level):
    """The SVG is well-formed XML whose text names every state (Chinese and id), trigger and guard."""
    root = ET.fromstring(drawn(anjian, level, "svg").encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for s in SPECS[level].states:
        assert state_label(level, s) in words
    for t in SPECS[level].transitions:
        assert trigger_label(t["trigger"]) in words
        assert all(g in words for g in t["conditions"])


def test_svg_without_dot_says_what_to_install(anjian, monkeypatch, tmp_path):
    """With no `dot` on the PATH, `--format svg` exits 2 naming Graphviz and the formats that need nothing."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    r = anjian("diagram", "township", "--format", "svg")
    assert r.exit_code == 2
    assert "Graphviz" in r.output and "apt-get install graphviz" in r.output and "--format dot" in r.output


# -- the same machine, and the command's edges -----------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
def test_the_diagram_is_of_the_machine_the_engine_runs(level):
    """The GraphMachine drawn has the runtime Machine's states, initial state, and per trigger the same
    sources and dests, with the guards the campaign checks for the trigger in the same order (the runtime
    Machine asks them all through its one condition, `guards_hold`)."""
    from anjian.states.labels import current_campaign
    from anjian.workflow.engine.machine import machine

    def shape(m, conditions):
        return {name: [(t.source, t.dest, conditions(name, t)) for ts in e.transitions.values() for t in ts]
                for name, e in m.events.items()}

    runtime, drawn_from = machine(level), graph_machine(level, "mermaid")
    assert list(drawn_from.states) == list(runtime.states)
    assert drawn_from.initial == runtime.initial
    assert all([c.func for c in t.conditions] == ["guards_hold"]
               for e in runtime.events.values() for ts in e.transitions.values() for t in ts)
    campaign = current_campaign()
    assert shape(drawn_from, lambda _name, t: [c.func for c in t.conditions]) == shape(
        runtime, lambda name, _t: list(campaign.conditions(level, name)))


@pytest.mark.parametrize("args", [("diagram", "village"), ("diagram", "township", "--format", "png"), ("diagram",)])
def test_unknown_machine_or_format_is_bad_input(anjian, args):
    """An unknown machine or format, or none at all, exits 2 with the choices."""
    r = anjian(*args)
    assert r.exit_code == 2
    assert "township" in r.output or "mermaid" in r.output


@pytest.mark.parametrize("fmt", ["mermaid", "dot", pytest.param("svg", marks=needs_dot)])
def test_out_writes_the_file_in_utf8(anjian, tmp_path, fmt):
    """`--out` writes the same diagram as the terminal shows, as UTF-8, and prints nothing on stdout."""
    out = tmp_path / f"乡镇.{fmt}"
    r = anjian("diagram", "township", "--format", fmt, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    text = out.read_bytes().decode("utf-8")
    assert "已申请验收 applied" in text
    assert text.rstrip("\n") == drawn(anjian, "township", fmt).rstrip("\n")


def test_diagram_opens_no_database(anjian, tmp_path):
    """Drawing a machine needs no `anjian init` and creates no database file."""
    assert anjian("diagram", "county").exit_code == 0
    assert not (tmp_path / "never-created.db").exists()
