"""Keeping the catalog whole (a developer's tool; needs Babel, which the test extras install).

    python -m anjian.workflow.translations update    # add every new message id to anjian.po (empty msgstr)
    python -m anjian.workflow.translations compile   # anjian.po -> anjian.mo (commit both)
    python -m anjian.workflow.translations check     # untranslated ids, stale .mo: exit 1 on any

Message ids come from the source (`_`, `N_`, `ngettext`, `pgettext` calls), from the Jinja2 templates
(`{{ _("…") }}`, `{% trans %}`: the reports', read with `jinja2.ext.i18n`) and from the command line's
help (every command's docstring and every option's help, which our click classes translate when shown).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from anjian.i18n import DOMAIN, LOCALE_DIR

ROOT = LOCALE_DIR.parent
SOURCES = ("workflow", "states", "notifications", "i18n")
TEMPLATES = "templates"  # every *.j2 in it and its folders (the reports', the web's pages)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
PO = LOCALE_DIR / "zh" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")


def _package_root() -> Path:
    """The folder that holds workflow/, states/ …: the checkout, or the installed `anjian` package."""
    return ROOT


def source_messages() -> dict[tuple[str | None, str], list[str]]:
    """(context, id) -> where it is used, from the Python source."""
    from babel.messages.extract import extract_from_file

    found: dict[tuple[str | None, str], list[str]] = {}
    root = _package_root()
    for top in SOURCES:
        for path in sorted((root / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for lineno, message, _comments, context in extract_from_file(
                    "python", str(path), keywords=KEYWORDS, options={"encoding": "utf-8"}):
                ids = message if isinstance(message, tuple) else (message,)
                for mid in ids[:1]:
                    if mid:
                        found.setdefault((context, mid), []).append(f"{path.relative_to(root)}:{lineno}")
    for key, where in template_messages().items():
        found.setdefault(key, []).extend(where)
    return found


def template_messages() -> dict[tuple[str | None, str], list[str]]:
    """(context, id) -> where it is used, from the Jinja2 templates (Babel's extractor of Jinja2's i18n)."""
    from babel.messages.extract import extract_from_file

    found: dict[tuple[str | None, str], list[str]] = {}
    root = _package_root()
    for path in sorted((root / TEMPLATES).rglob("*.j2")):  # the web's pages (templates/web/) too
        for lineno, message, _comments, context in extract_from_file(
                "jinja2.ext:babel_extract", str(path), keywords=KEYWORDS,
                options={"extensions": "jinja2.ext.i18n", "encoding": "utf-8", "newstyle_gettext": "true"}):
            mid = message[0] if isinstance(message, tuple) else message
            if mid:
                found.setdefault((context, mid), []).append(f"{path.relative_to(root)}:{lineno}")
    return found


def help_messages() -> dict[tuple[str | None, str], list[str]]:
    """Every help text of the command line, as our click classes look it up."""
    from anjian.workflow.cli import SUMMARIES, cli
    from anjian.workflow.cli.helptext import all_help_texts

    return {(None, text): [where] for text, where in all_help_texts(cli, SUMMARIES)}


def all_messages() -> dict[tuple[str | None, str], list[str]]:
    found = source_messages()
    for key, where in help_messages().items():
        found.setdefault(key, []).extend(where)
    return found


def read():
    from babel.messages.pofile import read_po

    with PO.open("rb") as f:
        return read_po(f, locale="zh_Hans_CN", domain=DOMAIN)


def write(catalog) -> None:
    from babel.messages.pofile import write_po

    buf = io.BytesIO()
    write_po(buf, catalog, width=0, sort_output=True, omit_header=False, include_lineno=False)
    PO.write_bytes(buf.getvalue())


def new_catalog():
    from babel.messages.catalog import Catalog

    return Catalog(locale="zh_Hans_CN", domain=DOMAIN, project="anjian", charset="utf-8")


def update() -> int:
    """Add the ids the source uses and the catalog lacks; report (not delete) ids nothing uses."""
    catalog = read() if PO.exists() else new_catalog()
    used = all_messages()
    added = 0
    for (context, mid), where in used.items():
        if catalog.get(mid, context=context) is None:
            catalog.add(mid, "", context=context, auto_comments=where[:1])
            added += 1
    write(catalog)
    unused = [m.id for m in catalog if m.id and (m.context, m.id if isinstance(m.id, str) else m.id[0]) not in used]
    print(f"{added} added, {len(unused)} unused, {len(missing(catalog, used))} untranslated")
    return 0


def missing(catalog, used) -> list[tuple[str | None, str]]:
    out = []
    for context, mid in used:
        m = catalog.get(mid, context=context)
        text = m.string if m is not None else None
        if isinstance(text, tuple | list):
            text = text[0]
        if not text or (m is not None and m.fuzzy):
            out.append((context, mid))
    return sorted(out, key=lambda k: (k[0] or "", k[1]))


def compiled_bytes(catalog) -> bytes:
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def compile_() -> int:
    MO.write_bytes(compiled_bytes(read()))
    print(f"wrote {MO}")
    return 0


def check() -> int:
    catalog = read()
    used = all_messages()
    problems = [f"untranslated: {mid!r}" + (f" (context {context})" if context else "") + f"  at {used[(context, mid)][0]}"
                for context, mid in missing(catalog, used)]
    if not MO.exists() or MO.read_bytes() != compiled_bytes(catalog):
        problems.append(f"{MO.name} is not compiled from {PO.name}: run python -m anjian.workflow.translations compile")
    for p in problems:
        print(p)
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    actions = {"update": update, "compile": compile_, "check": check}
    if len(argv) != 1 or argv[0] not in actions:
        print(__doc__)
        return 2
    return actions[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
