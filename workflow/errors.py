"""Domain errors. The CLI maps each class to an exit code of the contract in one table."""

from __future__ import annotations


class AnjianError(Exception):
    """Base of every error an official may see; its message says what and where."""

    def __init__(self, message: str, details: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.details = list(details)

    def with_details(self, details: list[str] | tuple[str, ...]) -> AnjianError:
        self.details = list(details)
        return self


class BadInput(AnjianError):
    """Usage, unknown or ambiguous unit, bad date, bad file: nothing was written."""


class NotInitialized(BadInput):
    """The database has no registry or campaign yet: run `anjian init`."""


class Refused(AnjianError):
    """The transition is not allowed now: wrong state or an unmet guard; `details` lists each reason."""


class NotPermitted(AnjianError):
    """Role, jurisdiction or separation of duties forbid the action."""


class Conflict(AnjianError):
    """Someone changed the unit meanwhile; nothing was written."""


class AuditBroken(AnjianError):
    """The audit log failed verification; the message names the first bad row."""


class DatabaseUnavailable(BadInput):
    """The database cannot be used as asked: missing, read-only for this account, or locked by another; nothing was written."""


class StorageFull(BadInput):
    """The disk holding the database or a file anjian writes is full; nothing was written."""
