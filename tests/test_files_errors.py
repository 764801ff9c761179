"""Files and errors (issue 12, item 8): what anjian creates is private; a command that only reads creates
nothing; a missing, read-only, locked or full database and a NUL byte each end in a Chinese message,
exit 2, with nothing written. The read-only account is a real second OS account."""

from __future__ import annotations

import grp
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from support import PG, T0, snapshot

from anjian.workflow.store.db import Database

sqlite_only = pytest.mark.skipif(bool(PG), reason="file modes and SQLite's own files: SQLite only")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to create OS accounts, groups or a small tmpfs")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 1. private files -----------------------------------------------------------------------------------
@sqlite_only
def test_init_creates_the_database_its_folder_and_its_wal_files_private(cli, tmp_path, monkeypatch):
    """init makes the database 0600 in a new folder 0700, and SQLite's -wal/-shm beside it are 0600 too."""
    path = tmp_path / "new" / "deeper" / "anjian.db"
    monkeypatch.setenv("ANJIAN_DB", str(path))
    assert cli("init", user=None).exit_code == 0
    assert mode(path) == 0o600
    assert mode(path.parent) == mode(path.parent.parent) == 0o700
    held = sqlite3.connect(path)  # a connection open makes SQLite create the -wal and -shm
    held.execute("SELECT count(*) FROM units").fetchone()
    try:
        assert mode(Path(f"{path}-wal")) == mode(Path(f"{path}-shm")) == 0o600
    finally:
        held.close()


@sqlite_only
def test_an_export_is_private(cli, tmp_path):
    """A file written with --out is readable by this account alone (the command runs under umask 077,
    and the caller's umask is back afterwards)."""
    assert cli("init", user=None).exit_code == 0
    out = tmp_path / "进度.csv"
    mask = os.umask(0o022)
    try:
        assert cli("status", "--format", "csv", "--out", str(out)).exit_code == 0
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(mask)
    assert mode(out) == 0o600


@pytest.fixture
def share_group() -> str:
    """An OS group other than this process's own, created when missing (root only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a group and give files to it")
    name = "anjian-share"
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)
    return name


@sqlite_only
def test_with_a_file_group_files_are_the_groups_and_0660(cli, tmp_path, monkeypatch, share_group):
    """With ANJIAN_FILE_GROUP the database is 0660 and the group's, its new folder 2770 (so SQLite's
    -wal/-shm inherit the group) and an export 0660."""
    gid = grp.getgrnam(share_group).gr_gid
    path = tmp_path / "shared" / "anjian.db"
    monkeypatch.setenv("ANJIAN_DB", str(path))
    monkeypatch.setenv("ANJIAN_FILE_GROUP", share_group)
    assert cli("init", user=None).exit_code == 0
    assert (mode(path), path.stat().st_gid) == (0o660, gid)
    assert (mode(path.parent), path.parent.stat().st_gid) == (0o2770, gid)
    held = sqlite3.connect(path)
    held.execute("SELECT count(*) FROM units").fetchone()
    try:
        for end in ("-wal", "-shm"):
            assert (mode(Path(f"{path}{end}")), Path(f"{path}{end}").stat().st_gid) == (0o660, gid)
    finally:
        held.close()
    out = path.parent / "units.csv"
    assert cli("units", "--format", "csv", "--out", str(out)).exit_code == 0
    assert mode(out) == 0o660


def test_an_unknown_file_group_is_refused(cli, monkeypatch):
    """ANJIAN_FILE_GROUP naming no group exits 2 naming it."""
    monkeypatch.setenv("ANJIAN_FILE_GROUP", "no-such-group-anjian")
    res = cli("init", user=None)
    assert res.exit_code == 2, res.output
    assert "no-such-group-anjian" in res.output


# -- 2. a command that only reads creates nothing ---------------------------------------------------------
@pytest.mark.parametrize("args", [("status",), ("units",), ("history",), ("user", "list"), ("audit", "verify"),
                                  ("user", "add", "x", "--role", "city_office", "--unit", "130800")])
def test_a_missing_database_is_refused_and_not_created(cli, tmp_path, args):
    """Any command but init on a database file that does not exist exits 2 saying so; neither the file
    nor its folder is created."""
    path = tmp_path / "nowhere" / "anjian.db"
    res = cli("--db", str(path), *args, user=None)
    assert res.exit_code == 2, res.output
    assert f"数据库文件 {path} 不存在：先运行 anjian init" in res.output
    assert not path.parent.exists()


# -- 3. errors: locked, full, NUL -----------------------------------------------------------------------
@sqlite_only
def test_a_lock_held_past_the_busy_timeout_exits_2_writing_nothing(cli, chengde, db_url, monkeypatch):
    """A writer that waits ANJIAN_BUSY_TIMEOUT for another's write lock in vain exits 2 saying so."""
    monkeypatch.setenv("ANJIAN_BUSY_TIMEOUT", "0.2")
    before = snapshot(chengde)
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        res = cli("user", "add", "newcomer", "--role", "city_office", "--unit", "130800", user=None)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert res.exit_code == 2, res.output
    assert "被另一个写入者占用" in res.output and "内部错误" not in res.output
    assert snapshot(chengde) == before


def test_a_bad_busy_timeout_is_refused(cli, chengde, monkeypatch):
    """ANJIAN_BUSY_TIMEOUT that is not a number of seconds exits 2 naming it."""
    monkeypatch.setenv("ANJIAN_BUSY_TIMEOUT", "soon")
    res = cli("status")
    assert res.exit_code == 2 and "ANJIAN_BUSY_TIMEOUT" in res.output


@pytest.mark.parametrize("args, flag", [
    (("advance", "130827102", "start", "--note", "开始\x00"), "--note"),
    (("record", "130827102", "staff.villages", "1\x002"), "VALUE"),
    (("contact", "add", "130827102", "--name", "张\x00三", "--email", "z@example.com"), "--name"),
    (("contact", "add", "130827", "--name", "李科长", "--email", "a@b.cn\x00"), "--email"),
    (("status", "--county", "1308\x0027"), "--county"),
])
def test_a_nul_byte_in_an_argument_exits_2_naming_it(cli, chengde, args, flag):
    """A NUL byte in any text argument exits 2 naming the option, on SQLite and PostgreSQL alike."""
    before = snapshot(chengde)
    res = cli(*args)
    assert res.exit_code == 2, res.output
    assert f"{flag}: 文本含 NUL 字节" in res.output
    assert snapshot(chengde) == before


def test_a_nul_byte_in_a_batch_file_exits_2_naming_the_line(cli, chengde, tmp_path):
    """A CSV batch with a NUL byte in a cell is refused whole, naming its line; nothing is written."""
    batch = tmp_path / "batch.csv"
    batch.write_bytes("unit,trigger,note\n130827102,start,好\n130827100,start,坏\x00\n".encode())
    before = snapshot(chengde)
    res = cli("advance", "--file", str(batch))
    assert res.exit_code == 2, res.output
    assert "第 3 行：含 NUL 字节" in res.output
    assert snapshot(chengde) == before


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 2 MB tmpfs: a disk that really fills up (root only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write a file in `folder` until the disk is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


@sqlite_only
def test_a_full_disk_exits_2_writing_nothing(cli, small_disk, monkeypatch):
    """A write when the database's disk is full exits 2 saying the disk is full; the database is as it was;
    an export to the full disk exits 2 and leaves no part of a file."""
    from anjian.workflow.services.registry import initialize

    url = f"sqlite:///{small_disk / 'anjian.db'}"
    monkeypatch.setenv("ANJIAN_DB", url)
    db = Database(url)
    initialize(db, None, None, T0, "admin")
    held = sqlite3.connect(small_disk / "anjian.db")  # keeps the -wal growing instead of restarting
    held.execute("SELECT count(*) FROM units").fetchone()
    before = snapshot(db)
    fill(small_disk)
    try:
        res = cli("user", "add", "newcomer", "--role", "city_office", "--unit", "130800", user=None)
        assert res.exit_code == 2, res.output
        assert "磁盘已满" in res.output and "内部错误" not in res.output
        (small_disk / "filler").unlink()
        assert snapshot(db) == before
        fill(small_disk)
        res = cli("units", "--format", "csv", "--out", str(small_disk / "units.csv"))
        assert res.exit_code == 2, res.output
        assert "No space left on device" in res.output
        assert sorted(p.name for p in small_disk.iterdir() if "units" in p.name) == []
    finally:
        held.close()
        db.dispose()


# -- 2 again: the read-only OS account ---------------------------------------------------------------------
ADMIN, READER = "anjian-admin", "anjian-reader"


def _account(name: str) -> tuple[int, int]:
    try:
        import pwd

        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        import pwd

        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _python_for(uid: int, gid: int) -> str | None:
    """An interpreter the account can run that imports this anjian (the venv's may live under /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, os.path.realpath(sys.executable), f"/usr/bin/python{version}",
                      shutil.which(f"python{version}")):
        if not candidate:
            continue
        probe = _as(uid, gid, candidate, [], {"HOME": "/"}, code="import anjian.workflow.cli")
        if probe.returncode == 0:
            return candidate
    return None


_RUN = ("import site, sys; site.addsitedir({site!r}); sys.argv[0] = 'anjian'; "
        "from anjian.workflow.cli import main; main()")


def _as(uid: int, gid: int, python: str, args: list[str], env: dict, code: str | None = None):
    site = sysconfig.get_paths()["purelib"]
    source = f"import site; site.addsitedir({site!r}); {code}" if code else _RUN.format(site=site)
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c", source, *args]
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, cwd="/")


@pytest.fixture(scope="session")
def accounts():
    """Two real OS accounts (an admin who owns the database, a reader who may only read it) and an
    interpreter both can run; skipped with the reason when that cannot be had."""
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("needs root, setpriv and useradd to act as two other OS accounts")
    admin, reader = _account(ADMIN), _account(READER)
    python = _python_for(*reader)
    if python is None:
        pytest.skip(f"no Python interpreter that {READER} may run imports anjian (is the venv under /root?)")
    return admin, reader, python


@sqlite_only
@pytest.mark.slow
def test_a_read_only_account_leaves_nothing_the_admin_cannot_write(accounts):
    """A reader who cannot write the database: status is refused (creating no -wal/-shm) when no writer
    has it open and works through the writer's files when one has; its writes exit 2 as read-only;
    the admin's writes keep working. Raw SQLite, by contrast, leaves the reader's files and breaks them."""
    (auid, agid), (ruid, rgid), python = accounts
    shared = Path(tempfile.mkdtemp(prefix="anjian-shared-", dir="/tmp"))
    try:
        shared.chmod(0o1777)  # a folder every account may write, like /tmp: the attack's setting
        homes = {}
        for who, (uid, gid) in (("admin", (auid, agid)), ("reader", (ruid, rgid))):
            homes[who] = shared / f"home-{who}"
            homes[who].mkdir()
            os.chown(homes[who], uid, gid)
        path = shared / "anjian.db"

        def run(who: str, *args: str):
            uid, gid = (auid, agid) if who == "admin" else (ruid, rgid)
            env = {"HOME": str(homes[who]), "ANJIAN_HOME": str(homes[who]), "ANJIAN_DB": str(path)}
            return _as(uid, gid, python, list(args), env)

        def leftovers() -> list[str]:
            return sorted(p.name for p in shared.iterdir() if p.name.startswith("anjian.db-"))

        res = run("admin", "init")
        assert res.returncode == 0, res.stderr
        assert (mode(path), path.stat().st_uid) == (0o600, auid)
        denied = run("reader", "status")
        assert denied.returncode == 2 and "不能读" in denied.stderr, denied.stderr
        path.chmod(0o644)  # the admin lets the reader read

        res = run("reader", "status")
        assert res.returncode == 2, res.stdout + res.stderr
        assert "只能读" in res.stderr and "内部错误" not in res.stderr
        assert leftovers() == []

        held = sqlite3.connect(path)  # the admin's daemon, say: root's -wal/-shm go to the file's owner
        held.execute("SELECT count(*) FROM units").fetchone()
        try:
            assert {Path(f"{path}{e}").stat().st_uid for e in ("-wal", "-shm")} == {auid}
            res = run("reader", "status")
            assert res.returncode == 0, res.stderr
            assert "宽城" in res.stdout
            wrote = run("reader", "user", "add", "mole", "--role", "admin", "--unit", "130800")
            assert wrote.returncode == 2, wrote.stdout + wrote.stderr
            assert "只读" in wrote.stderr and "内部错误" not in wrote.stderr
        finally:
            held.close()
        assert leftovers() == []
        res = run("admin", "user", "add", "zhou", "--role", "city_office", "--unit", "130800")
        assert res.returncode == 0, res.stderr

        # What SQLite alone does (mode=ro or not): the reader's own -wal/-shm, which stop the admin.
        raw = _as(ruid, rgid, python, [], {"HOME": "/"},
                  code=f"import sqlite3; sqlite3.connect('file:{path}?mode=ro', uri=True).execute('SELECT 1 FROM units')")
        assert raw.returncode == 0, raw.stderr
        assert {Path(f"{path}{e}").stat().st_uid for e in ("-wal", "-shm")} == {ruid}
        res = run("admin", "user", "add", "qian", "--role", "city_office", "--unit", "130800")
        assert res.returncode == 2, res.stdout + res.stderr
        assert "只读" in res.stderr and "内部错误" not in res.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)
