"""The outbox writer: a helper process that renders a pass's e-mails and writes them to the file outbox
while the pass claims its next chunk."""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from anjian.i18n import _
from anjian.notifications.faults import NO_FAULTS, FaultPlan
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Outgoing, Transient

GROUP_MAX = 8  # chunks the writer writes under one sync, at most


class OutboxWriter:
    """Rendering e-mails and `FileOutbox.send_many` in a helper process, so that a pass claims its next
    chunk while this one is rendered and the disk takes it. (A thread cannot do it: the GIL would pass
    to and fro at each of a chunk's thousands of system calls.) `submit` hands it a chunk of claimed
    notices (their stored content, see `letter`), `collect` waits for that chunk's outcomes.

    The chunks go to it on its stdin and the outcomes come back on its stdout, pickled, between the two
    processes of one pass only; its first message names the outbox, the pass's process id and the
    pass's fault plan. A thread of its own takes chunks off the pipe as they come, so the pass can hand
    it the next ones (up to `DEPTH` not yet collected) without waiting for the one under way; it writes
    every chunk waiting with the one it takes (up to `GROUP_MAX`) under one sync. It ignores SIGINT and
    SIGTERM — the pass ends it by closing its stdin — and dies with the pass: PR_SET_PDEATHSIG on Linux,
    elsewhere when its stdin closes, after the chunks it holds (a file it then writes is the same, byte
    for byte, as the one the next pass would write). A fault point it reaches kills the pass too: the
    two are one pass."""

    DEPTH = 8  # chunks handed over and not yet collected, at most: a slow start of the disk is absorbed

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._greeted: bool | None = None

    @classmethod
    def start(cls, outbox: FileOutbox, env: Mapping[str, str] | None = None) -> OutboxWriter | None:
        """The writer (started with `env`, else this process's environment), or None where it cannot be
        started (the pass then writes its chunks itself)."""
        try:
            proc = subprocess.Popen([sys.executable, "-c", "from anjian.notifications.writer import _serve; _serve()"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        except OSError:
            return None
        writer = cls(proc)
        try:
            writer._put((str(outbox.folder), os.getpid(), outbox.faults.name, outbox.faults.skip))
        except RuntimeError:  # it ended already
            writer.close()
            return None
        return writer

    def _put(self, obj: object) -> None:
        try:
            pickle.dump(obj, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(self._ended()) from None

    def usable(self) -> bool:
        """Whether the writer came up (it greets once its imports are done; a Python that cannot run it,
        as in a frozen build, ends at once): if not, the pass writes its chunks itself."""
        if self._greeted is None:
            try:
                self._greeted = pickle.load(self.proc.stdout) == ("ok", "ready")
            except Exception:  # noqa: BLE001 - it ended, or what it said is not ours: not usable
                self._greeted = False
        return self._greeted

    def submit(self, letters: list[tuple]) -> None:
        """Hand over a chunk of e-mails to render and write, each as the arguments of `letter` (tuples:
        a pickled dataclass costs several times as much)."""
        self._put(letters)

    def collect(self) -> list[Transient | None]:
        try:
            kind, value = pickle.load(self.proc.stdout)
        except EOFError:
            raise RuntimeError(self._ended()) from None
        if kind != "ok":
            raise RuntimeError(_("the outbox writer process failed:\n{error}").format(error=value))
        return [None if problem is None else Transient(problem) for problem in value]

    def _ended(self) -> str:
        return _("the outbox writer process ended (exit {code}); the next pass finishes what it had claimed").format(
            code=self.proc.wait())

    def close(self) -> None:
        with suppress(OSError):
            self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()


def letter(notice_id: str, address: str, recipient_name: str, subject: str, stored: str | None, body: str | None,
           html: str | None, sender: str, sent_at: object) -> Outgoing:
    """The e-mail of a claimed notice, its text and HTML rendered from its stored content."""
    from anjian.notifications.render import body_of

    text, html = body_of(FileOutbox.name, stored, body, html)
    return Outgoing(notice_id, address, recipient_name, subject, text, html, text, sender, sent_at)


def _serve() -> None:
    """The writer process (see `OutboxWriter`): chunks in, outcomes out, until its stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the replies
    inp = sys.stdin.buffer
    try:
        folder, parent, fault, skip = pickle.load(inp)
    except EOFError:
        return
    if os.getppid() != parent:
        return  # the pass is gone already
    outbox = FileOutbox(Path(folder), FaultPlan(fault, skip, parent) if fault else NO_FAULTS)
    from anjian.notifications import render

    render.template("text", "zh")  # the templates loaded (and compiled) while the pass plans its first chunk
    pickle.dump(("ok", "ready"), out)
    out.flush()
    chunks: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read_chunks, args=(inp, chunks), daemon=True).start()
    while (group := _next_group(chunks)) is not None:
        for reply in _write(outbox, group):
            pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def _next_group(chunks: queue.SimpleQueue) -> list[list[tuple]] | None:
    """The next chunk with those waiting already, to be written under one sync: when the disk is slow the
    writer falls behind, and then it syncs less often and catches up. None once the pass closed the pipe
    and nothing is left."""
    group = [chunks.get()]
    while group[-1] is not None and len(group) < GROUP_MAX:
        try:
            group.append(chunks.get_nowait())
        except queue.Empty:
            break
    if group[-1] is None:
        chunks.put(None)  # seen again by the next call, which then ends
        group.pop()
    return group or None


def _write(outbox: FileOutbox, group: list[list[tuple]]) -> list[tuple[str, object]]:
    """Render and write a group of chunks; the reply to each chunk: ("ok", its problems) or ("error", ...)."""
    try:
        problems = outbox.send_many([letter(*row) for rows in group for row in rows])
        texts = [None if p is None else str(p) for p in problems]
        replies: list[tuple[str, object]] = []
        for rows in group:
            replies.append(("ok", texts[: len(rows)]))
            texts = texts[len(rows):]
        return replies
    except Exception:  # noqa: BLE001 - a bug, reported to the pass, which raises it
        return [("error", traceback.format_exc(limit=-3))] * len(group)


def _read_chunks(inp, chunks: queue.SimpleQueue) -> None:
    """The writer's reader thread: takes each chunk off the pipe as the pass sends it, so the pass does
    not wait, pipe-full, for the chunk before to be written (it sleeps in `read` while the writer works);
    None when the pass closes the pipe."""
    try:
        while True:
            chunks.put(pickle.load(inp))
    except Exception:  # noqa: BLE001 - EOF (the pass closed it), or a broken pipe: no more chunks
        chunks.put(None)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the pass that started it dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

