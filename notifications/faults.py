"""Named fault points: a test sets ANJIAN_FAULT to one of them and the process is killed hard there,
to prove that a restart neither loses nor repeats a message. Unset, each point costs a dict lookup."""

from __future__ import annotations

import os
import signal

POINTS = ("after_claim", "after_send", "during_write", "before_rename")


def point(name: str) -> None:
    if os.environ.get("ANJIAN_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
