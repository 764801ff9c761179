"""The file outbox: one `<notice id>.eml` file per message, each written once and atomically, readable
by its owner alone (0600, in a folder made 0700)."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from anjian.notifications.faults import NO_FAULTS, FaultPlan
from anjian.notifications.mail import message_bytes
from anjian.notifications.outgoing import Outgoing, Transient


class FileOutbox:
    """One `<notice id>.eml` file per message, written atomically: a file that exists is complete.

    `send_many` writes a chunk of messages with one flush to disk for all of them: each message goes to
    a temporary file, then one sync makes the data of all of them durable, then each is renamed to its
    name and the folder is synced once. So a name appears only over complete, durable data (also after
    a power cut), and the caller marks the notices sent only when `send_many` has returned.
    """

    name = "file"

    def __init__(self, folder: Path | str, faults: FaultPlan = NO_FAULTS):
        self.folder = Path(folder)
        self.faults = faults

    @property
    def target(self) -> str:
        """Where this outbox writes, as a claim records it: this machine and the folder's real path (the
        same folder by another spelling is the same target; a folder of the same name elsewhere is not)."""
        return f"file://{socket.gethostname()}{self.folder.resolve()}"

    def path(self, notice_id: str) -> Path:
        return self.folder / f"{notice_id}.eml"

    def delivered(self, notice_id: str) -> bool:
        return self.path(notice_id).exists()

    def send(self, o: Outgoing) -> None:
        (problem,) = self.send_many([o])
        if problem is not None:
            raise problem

    def send_many(self, messages: list[Outgoing]) -> list[Transient | None]:
        """Write each message once (a finished file, left by a pass that died before marking it, is not
        written again); the outcome per message: None when its file is in place and durable, else the
        Transient to retry it with."""
        out: list[Transient | None] = [None] * len(messages)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            return [self._problem(exc)] * len(messages)
        written: list[tuple[int, str, str]] = []
        for i, o in enumerate(messages):
            target = os.path.join(self.folder, f"{o.notice_id}.eml")
            if os.path.exists(target):  # written by a pass that died before marking it: not again
                continue
            try:
                written.append((i, self._temporary(o), target))
            except OSError as exc:
                out[i] = self._problem(exc)
            self.faults.point("before_rename")  # the message is complete in its temporary file, not yet named
        if not written:
            return out
        try:
            _sync_data(self.folder, [tmp for _, tmp, _ in written])
        except OSError as exc:
            for i, tmp, _ in written:
                Path(tmp).unlink(missing_ok=True)
                out[i] = self._problem(exc)
            return out
        named = []
        for i, tmp, target in written:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                out[i] = self._problem(exc)
                continue
            named.append(i)
            self.faults.point("after_send")  # delivered (the name is there), not yet marked
        try:
            _sync_folder(self.folder)
        except OSError as exc:  # the names may not be durable: retried, the finished files are then kept
            for i in named:
                out[i] = self._problem(exc)
        return out

    def sweep(self, older_than: float) -> list[str]:
        """Remove the temporary files a killed writer left (their messages were never named, so never
        delivered): those of a process of this machine that is gone, and any older than `older_than`
        seconds (a writer names each within seconds). A live writer's are kept. Returns the names removed."""
        removed = []
        host, oldest = socket.gethostname(), time.time() - older_than
        try:
            entries = list(os.scandir(self.folder))
        except OSError:  # no outbox yet, or one this process cannot read: nothing to clean
            return removed
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                continue
            try:
                if _writer_gone(entry.name, host) or entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:  # removed meanwhile (by a peer's sweep), or not ours to remove
                continue
        return removed

    def _temporary(self, o: Outgoing) -> str:
        """The message in a new temporary file (`.<id>.<host>-<pid>-<token>.tmp`, which readers of the
        outbox skip and `sweep` removes once its writer is gone); its data is not yet synced."""
        data = message_bytes(o)
        tmp = os.path.join(self.folder, f".{o.notice_id}.{_HOST}-{os.getpid()}-{_TOKEN}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:  # left by a dead process that had this one's token: a name of its own
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{o.notice_id}.{_HOST}-{os.getpid()}-", suffix=".tmp")
        try:
            try:
                _write_all(fd, data[: len(data) // 2])
                self.faults.point("during_write")
                _write_all(fd, data[len(data) // 2 :])
            finally:
                os.close(fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def _problem(self, exc: OSError) -> Transient:
        return Transient(f"outbox {self.folder}: {exc.strerror or exc}")


_TOKEN = secrets.token_hex(4)  # this process's part of its temporary files' names
_HOST = socket.gethostname().replace("/", "_")


def _writer_gone(name: str, host: str) -> bool:
    """Whether the temporary file `name` (`.<id>.<host>-<pid>-<token>.tmp`) was left by a process of this
    machine that no longer runs (a name of another form, or another machine's, is left to its age)."""
    _, _, rest = name[1:-len(".tmp")].partition(".")
    parts = rest.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != host.replace("/", "_") or not parts[1].isdigit():
        return False
    return not process_alive(int(parts[1]))


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine still runs: one that has ended but is not yet reaped (a
    zombie, as a killed pass's writer is for a moment) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another account's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux): os.kill's word stands
        return True
    return state not in (b"Z", b"X")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _load_syncfs() -> Callable[[int], int] | None:
    """syncfs(2): flush one file system (every file's data and metadata) in one call — on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int

    def syncfs(fd: int) -> int:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return 0

    return syncfs


_syncfs = _load_syncfs()


def _sync_data(folder: Path, paths: list[str]) -> None:
    """Make the data of these files durable: one syncfs of the outbox's file system where there is one
    (per-file fsync costs a journal commit each), otherwise an fsync of each file."""
    if _syncfs is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)
        return
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
