"""Files anjian creates are private: 0600 and folders 0700, or, with a configured group
(ANJIAN_FILE_GROUP), 0660 and 0770 owned by that group, the folders set-group-ID so that what is made
in them later (SQLite's -wal and -shm, evidence, outbox files) belongs to the group as well.

The CLI sets the matching umask for the whole command (`private_umask`); the database file is also
created here with its mode set explicitly, so that a caller without that umask gets the same file,
and SQLite gives the -wal and -shm files the mode of the database file."""

from __future__ import annotations

import grp
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from anjian.i18n import _
from anjian.workflow.errors import BadInput


def file_mode(group: str | None) -> int:
    return 0o660 if group else 0o600


def folder_mode(group: str | None) -> int:
    return 0o2770 if group else 0o700


def group_id(group: str | None) -> int:
    """The id of the configured group (a name or a number); -1 (leave as is) when none is."""
    if not group:
        return -1
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise BadInput(_("ANJIAN_FILE_GROUP: the system has no group named {group}").format(group=group)) from None


@contextmanager
def private_umask(group: str | None) -> Iterator[None]:
    """While the block runs, whatever the process creates is private to its account (and the group)."""
    old = os.umask(0o007 if group else 0o077)
    try:
        yield
    finally:
        os.umask(old)


def make_folders(folder: Path, group: str | None) -> None:
    """Create `folder` and its missing parents, each private (or the group's), whatever the umask."""
    missing = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        missing.append(p)
    gid = group_id(group)
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its maker's
        if gid != -1:
            os.chown(p, -1, gid)
        os.chmod(p, folder_mode(group))


def create_file(path: Path, group: str | None) -> bool:
    """Create the empty file `path` private (or the group's); False when it exists already."""
    gid = group_id(group)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    try:
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, file_mode(group))
    finally:
        os.close(fd)
    return True


def replace_whole(out: Path, content: bytes) -> None:
    """`content` as the file `out`, whole or not at all: a temporary file beside it, renamed over it, with
    the mode a new file gets. Raises OSError (nothing left behind)."""
    import tempfile

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        mask = os.umask(0o077)  # read back (mkstemp made the file 0600): the mode any new file gets
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, out)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
