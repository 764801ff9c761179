"""The channels a notice can go by, registered here and only here: one module each beside this one.

A channel (`spec.Channel`) declares the contact field it reads, the settings it takes, the template of
each part it sends, the length its body may have, and its senders (the name a sender records on a
notice is its transport: the e-mail channel goes by the file outbox or by SMTP). Reminders, rendering
and the settings read this registry; no other module names a channel.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from anjian.notifications.channels import email, webhook
from anjian.notifications.channels.spec import Channel, Setting, Values

if TYPE_CHECKING:
    from anjian.notifications.outbox import FileOutbox
    from anjian.notifications.outgoing import Sender

REGISTRY: tuple[Channel, ...] = (email.CHANNEL, webhook.CHANNEL)  # the order a contact's addresses are planned in


@cache
def by_transport() -> dict[str, Channel]:
    """The channel of each transport (the `channel` a notice records: file, smtp, webhook)."""
    return {t: c for c in REGISTRY for t in c.senders}


def channel_of(transport: str) -> Channel:
    """The channel a notice sent by `transport` belongs to."""
    return by_transport()[transport]


@cache
def template_files() -> dict[str, str]:
    """Every part a channel sends -> its template file ("{}": the language); parts are shared by name."""
    out: dict[str, str] = {}
    for c in REGISTRY:
        for part, pattern in c.templates.items():
            if out.setdefault(part, pattern) != pattern:
                raise ValueError(f"part {part!r} of channel {c.name} has a template of its own: {pattern}")
    return out


def declared_settings() -> tuple[Setting, ...]:
    """The settings every channel declares, channel by channel."""
    return tuple(s for c in REGISTRY for s in c.settings)


def senders(values: Values, outbox: FileOutbox) -> dict[str, Sender]:
    """The sender of each transport, made from the settings (all of them: a leftover notice may have
    been claimed under other settings)."""
    return {t: make(values, outbox) for c in REGISTRY for t, make in c.senders.items()}
