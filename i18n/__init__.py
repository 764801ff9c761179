"""The words officials read, in their language: gettext catalogs (compiled with Babel) and the one
place that decides which language a command speaks.

Message ids are English; `locale/zh/LC_MESSAGES/anjian.po` holds the Chinese. Chinese is the default;
English is chosen with ``ANJIAN_LANG=en`` or, without ANJIAN_LANG, by a locale that names English
(``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` = ``en_…``). The language is a context variable, so a server can
answer each request in its caller's language; a command line sets it once.

Everything here is translated when it is shown, never when a module is imported: constants are marked with
`N_` and passed through `_` at the moment they are printed.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import os
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
DOMAIN = "anjian"
LOCALE_DIR = Path(__file__).parent

_current: ContextVar[str | None] = ContextVar("anjian_lang", default=None)


def normalize(text: str | None) -> str | None:
    """'zh_CN.UTF-8' -> 'zh', 'en-US' -> 'en', 'C' -> None; a language we do not have -> None."""
    if not text:
        return None
    head = text.strip().split(".")[0].replace("-", "_").split("_")[0].lower()
    aliases = {"zh": "zh", "chinese": "zh", "中文": "zh", "cn": "zh", "en": "en", "english": "en"}
    return aliases.get(head)


def from_environment(environ: os._Environ | dict | None = None) -> str:
    """ANJIAN_LANG first, then the locale's variables (the first one set decides), else Chinese."""
    env = os.environ if environ is None else environ
    explicit = env.get("ANJIAN_LANG")
    if explicit:
        return normalize(explicit) or DEFAULT
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return normalize(value) or DEFAULT
    return DEFAULT


def current() -> str:
    """The language this command or request speaks."""
    lang = _current.get()
    return lang if lang is not None else from_environment()


def set_language(lang: str | None) -> None:
    """Fix the language for the rest of this context (None: back to the environment's)."""
    _current.set(normalize(lang) if lang else None)


@contextlib.contextmanager
def language(lang: str):
    """Speak `lang` inside the block: ``with language("en"): …``."""
    token = _current.set(normalize(lang) or DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog of `lang`; English is the message ids themselves."""
    if lang == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang], fallback=True)


def _(message: str) -> str:
    """`message` in the current language."""
    if not message:
        return message
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current language, told apart from the same English in another `context`."""
    return translations(current()).pgettext(context, message)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it now (a constant shown later through `_`)."""
    return message


def is_english() -> bool:
    return current() == "en"
