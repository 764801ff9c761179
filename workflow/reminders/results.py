"""What a reminder pass reports: each notice it planned, sent, deferred or failed, and what it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SentView:
    """One notice as the pass reports it (the `remind` JSON's entries)."""

    notice_id: str
    recipient: str
    channel: str
    units: list[str]
    milestones: list[str]
    kind: str
    status: str = "sent"
    error: str | None = None

    def as_json(self) -> dict:
        return {"notice_id": self.notice_id, "recipient": self.recipient, "channel": self.channel,
                "units": list(self.units), "milestones": list(self.milestones), "kind": self.kind,
                "status": self.status, "error": self.error}


@dataclass
class PassResult:
    """One pass: its day and calendar, and its notices by outcome (filled in as the pass goes)."""

    now: str
    today: str
    workday: bool
    calendar: str
    dry_run: bool
    sent: list[SentView] = field(default_factory=list)
    failed: list[SentView] = field(default_factory=list)
    deferred: list[SentView] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    # left unfinished by another pass where this one cannot look: marked ambiguous now, not sent again
    ambiguous: list[SentView] = field(default_factory=list)
    unsettled: int = 0  # notices ambiguous after the pass, these and earlier ones: for an official to settle
    swept: int = 0  # temporary files of killed writers removed from the outbox
    campaigns: list[str] = field(default_factory=list)  # the campaigns whose passes this is, where several ran

    @classmethod
    def merged(cls, passes: list[tuple[str, PassResult]]) -> PassResult:
        """The passes of several campaigns run in turn (`remind` on a database of several) as one: their
        notices one after another, the ambiguous count as the last pass left it."""
        if len(passes) == 1:
            return passes[0][1]
        first, last = passes[0][1], passes[-1][1]
        out = cls(first.now, first.today, first.workday, first.calendar, first.dry_run, unsettled=last.unsettled,
                  campaigns=[cid for cid, _res in passes])
        for _cid, res in passes:
            out.sent += res.sent
            out.failed += res.failed
            out.deferred += res.deferred
            out.skipped += res.skipped
            out.ambiguous += res.ambiguous
            out.swept += res.swept
        return out

    def as_json(self) -> dict:
        # by hand: dataclasses.asdict deep-copies every one of a national pass's ~100,000 entries
        return {"now": self.now, "today": self.today, "workday": self.workday, "calendar": self.calendar,
                "dry_run": self.dry_run, "sent": [s.as_json() for s in self.sent],
                "failed": [s.as_json() for s in self.failed], "deferred": [s.as_json() for s in self.deferred],
                "skipped": [dict(s) for s in self.skipped], "ambiguous": [s.as_json() for s in self.ambiguous],
                "unsettled": self.unsettled, "swept": self.swept, **({"campaigns": self.campaigns} if self.campaigns else {})}
