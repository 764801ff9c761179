"""The audit trail as `anjian history` lists it: rows oldest first (or newest first, a page at a time),
filtered by unit (or a unit and everything under it), time, actor and action."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anjian.i18n import _
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting
from anjian.workflow.engine.names import Resolver
from anjian.workflow.engine.tree import descendants
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database


@dataclass(frozen=True)
class HistoryEntry:
    """One audit row as the history shows it; `by` is the admin who acted as `actor`, if one did. `at`
    is the time the row counts from, `recorded_at` when it was written: the same but for a late entry
    (补录), whose `at` is 00:00 of the `effective` date its paper record says."""

    seq: int
    at: str
    recorded_at: str
    actor: str
    by: str | None
    unit: str | None
    trigger: str
    from_state: str | None
    to_state: str | None
    note: str | None
    evidence: list[dict]
    unit_name: str | None
    detail: dict
    effective: str | None = None  # a late entry (补录): the date attested
    hash: str = ""  # the row's hash in the audit log's chain, and the one before it
    prev_hash: str = ""

    @property
    def late(self) -> bool:
        return self.effective is not None

    @property
    def shown_actor(self) -> str:
        return _("{by} acting as {name}").format(by=self.by, name=self.actor) if self.by else self.actor


def history(db: Database, unit: str | None = None, since: dt.datetime | None = None, actor: str | None = None,
            children: bool = False, *, until: dt.datetime | None = None, actions: list[str] | None = None,
            newest_first: bool = False, limit: int | None = None, offset: int = 0,
            viewer: Acting | None = None) -> list[HistoryEntry]:
    """The audit rows of a unit (with `children`, of it and every unit under it), or of everything;
    by time (`since` ≤ written < `until`), actor and action; a page of them with `limit` and `offset`.
    A `viewer` whose role sees only its own files (a station chief) is refused another unit and, asking
    for everything, gets the rows of its own unit."""
    with db.read() as session:
        codes = None
        if unit:
            ref = Resolver(session).resolve(unit)
            if viewer is not None:
                authz.may_see(session, viewer, ref.code, ref.name)
            codes = sorted(descendants(session, ref.code)) if children else [ref.code]
        elif (own := authz.seen_within(viewer)) is not None and actions != ["checkpoint"]:
            # (the checkpoints are the whole chain's, not a unit's: every official may verify the log)
            codes = sorted(descendants(session, own))
        rows = audit.history(session, codes, since, actor, limit, until=until, actions=actions,
                             newest_first=newest_first, offset=offset)
    return [HistoryEntry(r.seq, r.effective_at, r.at, r.actor, r.detail.get("by"), r.unit, r.trigger, r.from_state,
                         r.to_state, r.note, r.evidence, r.unit_name, r.detail, r.detail.get("effective"), r.hash,
                         r.prev_hash) for r in rows]
