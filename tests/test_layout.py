"""The house's rules, checked over the installed package's source: module and function sizes, where
the environment is read, and no import cycle anywhere (imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

import anjian.notifications
import anjian.states
import anjian.workflow

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
ROOTS = [Path(p) for pkg in (anjian.workflow, anjian.states, anjian.notifications) for p in pkg.__path__]
SETTINGS = "settings.py"


def _modules() -> list[Path]:
    return sorted(p for root in ROOTS for p in root.rglob("*.py") if "versions" not in p.parts)


def _explained(lines: list[str], node: ast.AST) -> bool:
    """A long function says why in a comment at its top (within its first lines)."""
    body_start = node.body[0].lineno - 1
    head = lines[node.lineno - 1: body_start + 3]
    return any("#" in line and "long" in line.lower() for line in head)


def test_no_module_is_over_500_lines():
    """Every module of the package stays readable in one sitting."""
    big = {str(p): n for p in _modules() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_no_function_is_over_60_lines_without_a_reason():
    """A function longer than 60 lines carries a comment saying why it is long."""
    long = []
    for p in _modules():
        text = p.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _explained(lines, node):
                    long.append(f"{p}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_the_environment_is_read_by_the_settings_module_alone():
    """No module but workflow/settings.py reads os.environ or os.getenv."""
    readers = []
    for p in _modules():
        if p.name == SETTINGS and p.parent.name == "workflow":
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv") \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(f"{p}:{node.lineno}")
    assert readers == []


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, out = set(), [], []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in graph.modules:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("anjian.workflow", "anjian.states", "anjian.notifications",
                             exclude_type_checking_imports=True)


def test_no_import_cycle_anywhere(graph):
    """No module imports, directly or through others, a module that imports it back."""
    assert _cycles(graph) == []


def test_the_cycle_check_sees_imports_inside_functions(graph):
    """The cycle check sees imports made inside functions (the lazy ones that keep --help fast)."""
    assert "anjian.workflow.store.db" in graph.find_modules_directly_imported_by("anjian.workflow.cli.common")


def test_every_package_of_the_source_is_installed():
    """setup.cfg's `packages` lists every folder of the source that holds an __init__.py, and nothing else:
    a package left out is missing from a non-editable install (CI's) while the checkout still imports it."""
    import configparser

    repo = Path(__file__).resolve().parents[1]
    cfg = configparser.ConfigParser()
    cfg.read(repo / "setup.cfg", encoding="utf-8")
    listed = set(cfg["options"]["packages"].split())
    tops = ("workflow", "states", "notifications", "templates", "i18n")
    found = {".".join(("anjian", *p.parent.relative_to(repo).parts))
             for top in tops for p in (repo / top).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found == listed
