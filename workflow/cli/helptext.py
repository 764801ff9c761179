"""`--help` in the official's language: command docstrings and option help are English message ids,
translated by the catalog when help is shown (never at import, so one process can answer in both).

The root group gives every subcommand `I18nContext`, whose formatter translates what click writes: the
usage line, section headings, the help text, and each option's help (click's own extras such as
``[default: table]`` included). `anjian.workflow.translations` lists every text so the catalog test can
require a translation for each.
"""

from __future__ import annotations

import inspect
import re

import click

from anjian.i18n import _

_EXTRAS = re.compile(r"^(.*?)(\s{2}\[[^\]]*\])?$", re.S)
_EXTRA_WORDS = ("default: ", "env var: ")


def _extras(text: str) -> str:
    inner = text.strip()[1:-1]
    parts = []
    for part in inner.split("; "):
        if part == "required":
            part = _("must be given")
        for word in _EXTRA_WORDS:
            if part.startswith(word):
                part = _(word) + part[len(word):]
                break
        parts.append(part)
    return "  [" + "; ".join(parts) + "]"


def translate_help(text: str) -> str:
    """An option's help with click's bracketed extras, translated part by part."""
    if not text:
        return text
    m = _EXTRAS.match(text)
    body, extras = (m.group(1), m.group(2)) if m else (text, None)
    out = _(body) if body else body
    return out + (_extras(extras) if extras else "")


class I18nFormatter(click.HelpFormatter):
    """click's formatter, translating each piece as it is written."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage: ") if prefix is None else _(prefix))

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))

    def write_text(self, text: str) -> None:
        super().write_text(_(text))

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(first, translate_help(second)) for first, second in rows], col_max, col_spacing)


class I18nContext(click.Context):
    formatter_class = I18nFormatter


def localize(cmd: click.Command) -> click.Command:
    """Give `cmd` (and, for a group, each of its subcommands) the translating context."""
    cmd.context_class = I18nContext
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            localize(sub)
    return cmd


def help_of(cmd: click.Command) -> str:
    """The text click shows for `cmd`'s docstring (its message id)."""
    return inspect.cleandoc(cmd.help or "").partition("\f")[0]
