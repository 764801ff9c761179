"""A pass over thousands of townships, each due and each with a contact: every notice goes out once in
chunks (claimed, written, synced and marked a chunk at a time, the outbox by a writer process), a second
pass sends nothing, and a pass killed in the middle of a later chunk — at each fault point — is finished
by the next with every notice sent once and every file in the outbox once. Functional, not timing:
the national figures are measured with `every_township_due` (see its docstring)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select
from support import new_database_url

from anjian.notifications.writer import OutboxWriter
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.services.registry import initialize
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Contact, Notice, NoticeContent, NoticeItem, Unit

pytestmark = pytest.mark.slow  # passes over 3,000 townships, killed in the middle

# 2016-12-01 is d-30 of full_coverage (2016-12-31), which every township owes, and key_compliance
# (2015-12-31) is overdue for every township that has not started: every township has a rung due, and
# its overdue items also go to its county.
DUE_NOW = dt.datetime(2016, 12, 1, 8, 30, tzinfo=SHANGHAI)
SETUP_TIME = dt.datetime(2014, 12, 15, 9, 0, tzinfo=SHANGHAI)
COUNTIES, PER_COUNTY = 12, 250  # 3,000 townships
CHUNK = 250  # notices per chunk in these tests: the pass has a dozen chunks, and a writer process writes them
CHILD = "import sys; from anjian.workflow.cli import main; sys.argv[0] = 'anjian'; main()"
HANG_GUARD = 60.0  # seconds before a condition that does not come fails the test instead of hanging it


def every_township_due(db: Database, registry: str | Path | None, counties_too: bool = False) -> dt.datetime:
    """Initialize `db` with `registry` (a registry CSV such as /work/shared/data/china-divisions.csv, the
    41,352 townships of the national registry) and give every township one e-mail contact (and every
    county one, with `counties_too`), by bulk insert; return a moment at which every township has a
    rung due (DUE_NOW). For a benchmark:

        db = Database("sqlite:////tmp/national.db")
        now = every_township_due(db, "/work/shared/data/china-divisions.csv")
        # then: ANJIAN_DB=sqlite:////tmp/national.db anjian remind --now 2016-12-01T08:30 [--dry-run]
    """
    initialize(db, str(registry) if registry else None, None, SETUP_TIME, "bench", drill=True)  # remind --now: a drill
    levels = ("township", "county") if counties_too else ("township",)
    with db.write() as session:
        units = session.execute(select(Unit.code, Unit.level).where(Unit.level.in_(levels))).all()
        session.execute(insert(Contact.__table__), [
            {"unit_code": code, "name": "安监站" if level == "township" else "安监局",
             "email": f"{'t' if level == 'township' else 'c'}{code}@example.gov.cn", "webhook": None,
             "created_at": "2014-12-15T01:00:00.000000Z"} for code, level in units])
    return DUE_NOW


def generated_registry(path: Path, counties: int = COUNTIES, per_county: int = PER_COUNTY) -> Path:
    """A registry of one province, one city, `counties` counties of `per_county` townships each."""
    rows = ["code,name,level,parent_code", "990000,试验省,province,", "990100,试验市,city,990000"]
    for c in range(1, counties + 1):
        county = f"9901{c:02d}"
        rows.append(f"{county},试验{c}县,county,990100")
        rows += [f"{county}{t:03d},第{t}镇,township,{county}" for t in range(1, per_county + 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """The generated registry, every township and county with a contact (built once for the module)."""
    folder = tmp_path_factory.mktemp("large")
    with new_database_url(folder) as url:
        db = Database(url)
        every_township_due(db, generated_registry(folder / "registry.csv"), counties_too=True)
        yield db
        db.dispose()


@pytest.fixture
def fresh(large, tmp_path, monkeypatch):
    """The large database with no notice yet, this test's outbox, and chunks of CHUNK notices."""
    with large.write() as session:
        session.execute(delete(NoticeItem))
        session.execute(delete(NoticeContent))
        session.execute(delete(Notice))
    monkeypatch.setenv("ANJIAN_REMIND_CHUNK", str(CHUNK))
    for var in ("ANJIAN_FAULT", "ANJIAN_FAULT_SKIP", "ANJIAN_PASS_PID"):
        monkeypatch.delenv(var, raising=False)
    return large


def planned(db: Database, outbox: Path) -> dict[str, str]:
    """What a pass at DUE_NOW would send: notice id -> recipient (a dry run)."""
    result = run_pass(db, DUE_NOW, NotifySettings(), outbox, dry_run=True)
    assert result.sent and {s.status for s in result.sent} == {"planned"}
    return {s.notice_id: s.recipient for s in result.sent}


def stored(db: Database) -> dict[str, tuple[str, str, int, int]]:
    with db.read() as s:
        return {n.id: (n.status, n.recipient, n.attempts, n.ambiguous)
                for n in s.execute(select(Notice.id, Notice.status, Notice.recipient, Notice.attempts, Notice.ambiguous))}


def messages(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.iterdir() if p.name.endswith(".eml")) if outbox.exists() else []


def temporaries(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.iterdir() if not p.name.endswith(".eml")) if outbox.exists() else []


def assert_each_sent_once(db: Database, outbox: Path, expected: dict[str, str]) -> None:
    """Every planned notice is stored once, sent at the first attempt, unflagged, with exactly one
    complete file named by its id and addressed to its recipient; no other file, no item twice (a county's
    milestone may have its reminder and its early warning)."""
    notices = stored(db)
    assert set(notices) == set(expected)
    assert Counter(status for status, *_ in notices.values()) == Counter({"sent": len(expected)})
    assert all(attempts == 1 and not ambiguous for _, _, attempts, ambiguous in notices.values())
    assert messages(outbox) == sorted(f"{nid}.eml" for nid in expected)
    parser = BytesHeaderParser()
    for nid, recipient in expected.items():
        head = parser.parsebytes((outbox / f"{nid}.eml").read_bytes())
        assert head["X-Anjian-Notice"] == nid
        assert f"<{recipient}>" in head["To"]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in temporaries(outbox))
    with db.read() as s:  # one rung of the ladder per (recipient, unit, milestone), and one early warning (w-…)
        items = [(*item, rung.startswith("w-")) for *item, rung in s.execute(
            select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone, NoticeItem.rung))]
    assert len(items) == len(set(items))


def test_every_township_is_due_and_has_its_own_notice(fresh, tmp_path):
    """At DUE_NOW the dry run plans one notice per contact: one to each of the 3,000 townships (about itself
    only) and one to each county (about itself and its townships' overdue items)."""
    result = run_pass(fresh, DUE_NOW, NotifySettings(), tmp_path / "outbox", dry_run=True)
    by_recipient = {s.recipient: s for s in result.sent}
    assert len(result.sent) == len(by_recipient) == COUNTIES * PER_COUNTY + COUNTIES
    for c in range(1, COUNTIES + 1):
        county = f"9901{c:02d}"
        assert by_recipient[f"c{county}@example.gov.cn"].units == [county] + [f"{county}{t:03d}" for t in range(1, PER_COUNTY + 1)]
        for t in (1, PER_COUNTY):
            town = by_recipient[f"t{county}{t:03d}@example.gov.cn"]
            assert town.units == [f"{county}{t:03d}"]
            assert town.milestones == ["full_coverage", "key_compliance"]
    assert stored(fresh) == {}


def test_a_large_pass_sends_each_notice_once_and_a_second_pass_nothing(fresh, tmp_path, monkeypatch):
    """In chunks of 250, written by the writer process while the next is claimed, every planned notice goes
    out once; a second pass at the same time sends nothing and writes no row or file."""
    started = []
    start = OutboxWriter.start
    monkeypatch.setattr(OutboxWriter, "start", classmethod(lambda cls, *a: started.append(1) or start(*a)))
    outbox = tmp_path / "outbox"
    expected = planned(fresh, outbox)
    result = run_pass(fresh, DUE_NOW, NotifySettings(), outbox)
    assert started == [1]
    assert (result.deferred, result.failed) == ([], [])
    assert sorted(s.notice_id for s in result.sent) == sorted(expected)
    assert_each_sent_once(fresh, outbox, expected)

    again = run_pass(fresh, DUE_NOW, NotifySettings(), outbox)
    assert (again.sent, again.deferred, again.failed) == ([], [], [])
    assert_each_sent_once(fresh, outbox, expected)


def test_without_the_writer_process_the_pass_writes_the_chunks_itself(fresh, tmp_path, monkeypatch):
    """Where the writer cannot be started, the pass writes and marks each chunk itself, with the same result."""
    monkeypatch.setattr(OutboxWriter, "start", classmethod(lambda cls, *a: None))
    outbox = tmp_path / "outbox"
    expected = planned(fresh, outbox)
    result = run_pass(fresh, DUE_NOW, NotifySettings(), outbox)
    assert sorted(s.notice_id for s in result.sent) == sorted(expected)
    assert_each_sent_once(fresh, outbox, expected)


def remind_process(db: Database, outbox: Path, home: Path, **extra: str) -> subprocess.CompletedProcess:
    """`anjian remind --now DUE_NOW` in a child process (with ANJIAN_FAULT and the like in `extra`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
    env.update(ANJIAN_DB=db.url, ANJIAN_HOME=str(home), ANJIAN_OUTBOX=str(outbox), ANJIAN_REMIND_CHUNK=str(CHUNK),
               **extra)
    return subprocess.run([sys.executable, "-c", CHILD, "remind", "--now", "2016-12-01T08:30"], env=env,
                          capture_output=True, text=True, timeout=600)


# Where each kill lands: the pass claims chunks of 250 (notices 1-250, 251-500, 501-750, ...) and hands
# each to the writer, which writes them in turn; once more than DEPTH are handed over and not collected,
# the pass waits for the oldest, so chunk k is marked (its files all synced) in the transaction that
# claims chunk k + DEPTH + 1.
DEPTH = OutboxWriter.DEPTH
KILLS = {
    "after_claim": DEPTH + 1,  # after claiming chunk DEPTH + 2, whose claim marked the first chunk
    "during_write": 2 * CHUNK + CHUNK // 2,  # in the middle of the third chunk's files
    "before_rename": 2 * CHUNK + CHUNK // 2,  # that file complete, not yet named
    "after_send": 2 * CHUNK + CHUNK // 2,  # that file named, its chunk not yet marked
}


def test_the_kills_land_inside_the_pass():
    """The fault points above fall in the middle of the pass: it has more chunks than they need."""
    assert (DEPTH + 2) * CHUNK < COUNTIES * (PER_COUNTY + 1)


@pytest.mark.parametrize("fault", sorted(KILLS))
def test_a_pass_killed_in_a_later_chunk_is_finished_by_the_next(fresh, tmp_path, fault):
    """Killed with SIGKILL at the fault point in the middle of the pass, it leaves at most its first chunks
    sent and the rest claimed; the next pass sends every notice once and writes every file once."""
    outbox, home = tmp_path / "outbox", tmp_path / "home"
    expected = planned(fresh, outbox)
    killed = remind_process(fresh, outbox, home, ANJIAN_FAULT=fault, ANJIAN_FAULT_SKIP=str(KILLS[fault]))
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    left = stored(fresh)
    statuses = Counter(status for status, *_ in left.values())
    # handed to the writer (`sending`: marked so before it is handed over), or not yet (`claimed`)
    assert set(statuses) <= {"sent", "sending", "claimed"} and statuses["claimed"] + statuses["sending"] > 0
    assert set(left) <= set(expected)
    files = messages(outbox)
    assert {f[:-4] for f in files} <= set(left)  # nothing is written before it is claimed
    assert all(f"{nid}.eml" in files for nid, (status, *_) in left.items() if status == "sent")  # nor marked before written
    if fault == "after_claim":
        assert len(left) == (DEPTH + 2) * CHUNK  # the last claim was made, and with it the first chunk marked
        assert statuses["sent"] == CHUNK
    else:
        # The writer died in its third chunk, having written two: each of those is marked if the pass had
        # claimed DEPTH more chunks after it by then (the pass is killed as the writer is: a race).
        assert statuses["sent"] in (0, CHUNK, 2 * CHUNK)
        if fault == "after_send":  # files are named one by one: the one it was killed after was
            assert len(files) == KILLS[fault] + 1
        else:
            # The first chunk is written alone (nothing else is waiting when it comes); the second is named
            # already unless the writer took it together with the third, under one sync.
            assert len(files) in (CHUNK, 2 * CHUNK)

    again = remind_process(fresh, outbox, home)
    assert again.returncode == 0, again.stderr
    assert_each_sent_once(fresh, outbox, expected)
    third = remind_process(fresh, outbox, home)
    assert third.returncode == 0, third.stderr
    assert "已发送" not in third.stdout
    assert_each_sent_once(fresh, outbox, expected)


def test_the_writer_process_ends_with_the_pass(fresh, tmp_path):
    """A pass killed while its writer process writes a chunk takes the writer with it (no process is left
    writing beside the next pass), and the next pass finishes every notice once."""
    outbox, home = tmp_path / "outbox", tmp_path / "home"
    expected = planned(fresh, outbox)
    # The pass is killed once it has claimed the third chunk; its writer is then writing one of the first two.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
    env.update(ANJIAN_DB=fresh.url, ANJIAN_HOME=str(home), ANJIAN_OUTBOX=str(outbox), ANJIAN_REMIND_CHUNK=str(CHUNK),
               ANJIAN_FAULT="after_claim", ANJIAN_FAULT_SKIP="2")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "remind", "--now", "2016-12-01T08:30"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=600) == -signal.SIGKILL
    give_up = time.monotonic() + HANG_GUARD
    while writers_of(proc.pid):  # killed by the kernel as its parent died: gone at once, but not in no time
        assert time.monotonic() < give_up, f"the writer of pass {proc.pid} outlived it"
        time.sleep(0.01)
    assert remind_process(fresh, outbox, home).returncode == 0
    assert_each_sent_once(fresh, outbox, expected)


def writers_of(pid: int) -> list[int]:
    """Live processes started as the outbox writer of pass `pid` (they carry ANJIAN_PASS_PID=pid)."""
    marker = f"ANJIAN_PASS_PID={pid}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def test_a_writer_that_cannot_run_leaves_the_pass_to_write_itself(fresh, tmp_path, monkeypatch):
    """A writer process that ends at once (a Python that cannot run it) is noticed before the first chunk
    is handed to it; the pass then writes every chunk itself, each notice once."""
    real = subprocess.Popen

    def broken(args, **kwargs):
        if "_serve" in " ".join(map(str, args)):
            args = [sys.executable, "-c", "raise SystemExit(3)"]
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", broken)
    outbox = tmp_path / "outbox"
    expected = planned(fresh, outbox)
    result = run_pass(fresh, DUE_NOW, NotifySettings(), outbox)
    assert sorted(s.notice_id for s in result.sent) == sorted(expected)
    assert_each_sent_once(fresh, outbox, expected)
