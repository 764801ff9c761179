"""What a channel declares (see `anjian.notifications.channels`, where each is registered)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from anjian.notifications.outbox import FileOutbox
    from anjian.notifications.outgoing import Sender


class Values(Protocol):
    """Settings as a channel reads them: by the names its `Setting`s declare."""

    def value(self, name: str) -> object: ...


@dataclass(frozen=True)
class Setting:
    """One setting of a channel: its name, its place in the config file ([table] key), its variable."""

    name: str
    table: str
    key: str
    env: str | None = None
    default: object = None
    kind: type = str  # str, int, float or tuple (a TOML list, or a comma-separated variable)
    allowed: tuple[str, ...] = ()  # the values it may take (empty: any)
    check: Callable[[object], object] | None = None  # the value checked (ValueError says why) and kept


@dataclass(frozen=True)
class Channel:
    """One way a notice reaches a contact."""

    name: str
    contact_field: str  # the contact's column that holds its address for this channel
    templates: Mapping[str, str]  # part -> template file, "{}" standing for the language
    body: str  # the part sent as the message's text
    html: str | None  # the part sent beside it as HTML (None: none)
    senders: Mapping[str, Callable[[Values, FileOutbox], Sender]]  # transport -> its sender
    transport: Callable[[Values], str]  # which sender this pass's settings choose
    settings: tuple[Setting, ...] = ()
    limit: int | None = None  # bytes the body may have, where the recipient refuses longer
    fit: Callable[[str, int, str], str] | None = field(default=None, repr=False)  # cut to `limit`

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.templates)
