"""The reports' Jinja2 environment: the notices' setup (strict, HTML autoescaped) plus `jinja2.ext.i18n`,
so the documents' fixed words come from the catalog — Chinese by default, English with ANJIAN_LANG=en.

Templates write `{{ _("Progress report") }}`, or `{{ _("{n} townships").format(n=…) }}` where a figure goes
in: newstyle gettext returns Markup under autoescape, so `.format` escapes what it inserts.
"""

from __future__ import annotations

from functools import cache

from anjian.i18n import _, ngettext, pgettext

TEMPLATE_OPTIONS = {"extensions": "jinja2.ext.i18n"}  # what the catalog's extraction reads them with


@cache
def environment():
    """One environment per process; the language is looked up when each word is shown."""
    from anjian.notifications.render import environment as notice_environment

    env = notice_environment()
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext=_, ngettext=ngettext, pgettext=pgettext, newstyle=True)
    return env


def render_template(name: str, **context: object) -> str:
    return environment().get_template(name).render(context)
