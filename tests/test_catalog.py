"""The message catalog stays whole: a Chinese translation for every message id the source and the help use,
the same placeholders on both sides, the .mo compiled from the .po, ids extraction can see, and help that
loads no database library."""

from __future__ import annotations

import ast
import string
import subprocess
import sys

import pytest

from anjian.workflow import translations


@pytest.fixture(scope="module")
def catalog():
    """The Chinese catalog as the .po holds it."""
    return translations.read()


@pytest.fixture(scope="module")
def used():
    """Every message id in use: the source's `_`/`N_`/`ngettext`/`pgettext` calls and the command line's help."""
    return translations.all_messages()


def fields(text: str) -> set[str]:
    """The names of the `{placeholders}` of a message (format specs aside)."""
    return {name.split(".")[0].split("[")[0] for _lit, name, _spec, _conv in string.Formatter().parse(text)
            if name is not None}


def test_every_message_in_use_has_a_chinese_translation(catalog, used):
    """`translations check` finds nothing untranslated: each id of the source and of the help has its Chinese."""
    missing = translations.missing(catalog, used)
    shown = "\n".join(f"  {mid!r} at {used[(ctx, mid)][0]}" for ctx, mid in missing[:40])
    assert not missing, f"{len(missing)} message ids without Chinese (run translations update, fill anjian.po):\n{shown}"


def test_every_help_text_is_translated(catalog):
    """Each docstring, summary and option help of every command (the click tree walked) has its Chinese."""
    help_ids = translations.help_messages()
    missing = [mid for ctx, mid in translations.missing(catalog, help_ids)]
    assert not missing, missing[:20]


def test_placeholders_agree(catalog):
    """Each translation has exactly the placeholders of its message id, so `.format(name=…)` fills both."""
    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        for text in strings:
            if text and fields(text) != fields(ids[0]):
                wrong.append((ids[0], text))
    assert not wrong, wrong[:10]


def test_the_mo_is_compiled_from_the_po(catalog):
    """The committed anjian.mo is exactly what compiling anjian.po gives (commit both together)."""
    assert translations.MO.read_bytes() == translations.compiled_bytes(catalog), \
        "run: python -m anjian.workflow.translations compile"


def test_the_catalog_translates_at_run_time():
    """The compiled catalog is the one loaded: a help text and an engine message come out Chinese by default
    and English on request."""
    from anjian.i18n import _, language

    with language("zh"):
        assert _("Show this message and exit.") == "显示本帮助后退出。"
        assert _("Error") == "错误"
    with language("en"):
        assert _("Error") == "Error"


def test_no_message_id_is_built_at_run_time():
    """`_()` and `N_()` get a literal: an f-string or a variable is invisible to extraction (and never translated)."""
    root = translations._package_root()
    bad = []
    for top in translations.SOURCES:
        for path in sorted((root / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_")
                        and node.args and isinstance(node.args[0], ast.JoinedStr)):
                    bad.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not bad, f"an f-string passed to _() or N_(): {bad}"


def test_chinese_help_imports_no_database_library():
    """`anjian --help` in Chinese (the catalog loaded) imports neither SQLAlchemy nor transitions nor Babel."""
    code = ("import sys\nfrom anjian.workflow.cli import cli\n"
            "try:\n    cli(['--help'], prog_name='anjian')\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('sqlalchemy', 'transitions', 'babel') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True,
                         env={"ANJIAN_LANG": "zh", "PATH": "/usr/bin:/bin"}).stdout
    assert "用法：" in out and "命令" in out
    assert out.strip().splitlines()[-1] == "[]", out
