"""What every sender takes and raises: one rendered notice on its way, and the two kinds of failure.

A sender raises `Transient` for a failure worth retrying (a server down, a 4xx SMTP reply, HTTP 5xx/429)
and `Permanent` for one that retrying cannot fix (an address refused, HTTP 4xx, a bad robot key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


class Transient(Exception):
    """Delivery failed for now; try again later."""


class Permanent(Exception):
    """Delivery cannot succeed; mark the notice failed."""


@dataclass(frozen=True)
class Outgoing:
    """One rendered notice on its way to one recipient."""

    notice_id: str
    address: str
    recipient_name: str
    subject: str
    text: str
    html: str | None
    markdown: str
    sender: str
    sent_at: dt.datetime


class Sender(Protocol):
    """Something that delivers one message (`name` is what a notice sent by it records as its channel)."""

    name: str
    target: str  # where it delivers, as a claim records it (file://host/folder, smtp:host:port, webhook)

    def send(self, o: Outgoing) -> None: ...
