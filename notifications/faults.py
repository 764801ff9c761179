"""Named fault points: a test asks (ANJIAN_FAULT, read by the settings at the command's edge) for the
process to be killed hard at one of them, to prove that a restart neither loses nor repeats a message.

The plan is handed down explicitly: the pass gives it to its outbox and to the outbox writer process (in
that process's first message). `skip` lets the point pass that many times and kills at the next, so a pass
that works in chunks can be killed in the middle of a later chunk; a point reached in the writer process
kills the pass too (`owner`): they are one pass. Unarmed, a point costs one comparison.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

POINTS = ("after_claim", "after_begin", "after_send", "during_write", "before_rename")
_passed: dict[str, int] = {}  # per process, as the kill is: how often each point has been passed


@dataclass(frozen=True)
class FaultPlan:
    """Where this process is to be killed: at point `name`, once it has passed it `skip` times."""

    name: str | None = None
    skip: int = 0
    owner: int | None = None  # the pass's process id, killed first when this is its writer process

    def point(self, name: str) -> None:
        """A named point: kill the process (and its pass) here if the plan says so."""
        if self.name != name:
            return
        seen = _passed.get(name, 0)
        if seen >= self.skip:
            if self.owner and self.owner != os.getpid():
                os.kill(self.owner, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        _passed[name] = seen + 1


NO_FAULTS = FaultPlan()
