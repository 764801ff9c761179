"""Named fault points: a test sets ANJIAN_FAULT to one of them and the process is killed hard there,
to prove that a restart neither loses nor repeats a message. Unset, each point costs a dict lookup.

ANJIAN_FAULT_SKIP=N lets the point pass N times and kills at the next: a pass that works in chunks can
so be killed in the middle of a later chunk, not only at the first notice. A point reached in the
writer process of a pass (`OutboxWriter`) kills the pass too (ANJIAN_PASS_PID): they are one pass.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_claim", "after_send", "during_write", "before_rename")
_passed: dict[str, int] = {}


def point(name: str) -> None:
    if os.environ.get("ANJIAN_FAULT") == name:
        skip = int(os.environ.get("ANJIAN_FAULT_SKIP") or 0)
        seen = _passed.get(name, 0)
        if seen >= skip:
            owner = os.environ.get("ANJIAN_PASS_PID")
            if owner and owner != str(os.getpid()):
                os.kill(int(owner), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        _passed[name] = seen + 1
