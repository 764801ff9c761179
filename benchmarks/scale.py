"""The national registry at full size, measured beside anchors taken in the same run.

    python benchmarks/scale.py [--pg URL | --no-pg] [--repeat 5] [--remind-runs 5] [--audit-rows 1000000]

For SQLite (a file in a temporary folder) and, when a server answers, PostgreSQL (a database this
script creates and drops), it loads ../shared/data/china-divisions.csv (44,700 units) and measures:

| figure                          | anchor (same run, same machine)                 | target                |
| ------------------------------- | ----------------------------------------------- | --------------------- |
| registry load (`init`)          | plain executemany of the same rows              | within 10×            |
| `anjian status`, `anjian show`  | `python -c "import sqlalchemy.orm"` (the floor) | floor +0.5 s / +0.2 s |
| `anjian --help`                 | `python -c "import click"`                      | within 1.5×           |
| batch advance of 10,000         | executemany of the same UPDATEs and INSERTs     | ≥ 2,000 transitions/s |
| reminder pass, every township   | writing the same number of files, plain Python  | ≤ 10 s, < 300 MB      |
| `anjian audit verify`, 1M rows  | a plain scan of the rows hashing each one       | ≤ 30 s                |

Command-line figures are medians of `--repeat` runs, each run of anjian interleaved with its anchor;
the reminder pass is run `--remind-runs` times, each on its own copy of the same database with an
outbox of its own (nothing is deleted until the end), each run and each of its anchors once
PostgreSQL has checkpointed and the disk has been idle for two seconds, so that none pays for the
work of the one before; peak memory is the child's own max RSS (wait4), the largest of the runs. Prints a table and writes benchmarks/results/scale.json.
Exits 1 when a target is missed. Not part of the test suite: these machines are noisy; the ratios and
medians are what to quote.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT.parent / "shared" / "data" / "china-divisions.csv"
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
ANJIAN = str(Path(sys.executable).with_name("anjian"))
DEFAULT_PG = os.environ.get("ANJIAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
INIT_AT = "2014-12-15T09:00"
ADVANCE_AT = "2015-01-05T10:00"
REMIND_AT = "2016-12-01T09:00"  # d-30 of full_coverage (2016-12-31), a Thursday: every township owes it
SHOW_UNIT = "130821106"  # 承德县高寺台镇
SHOW_COUNTY = "130821"


@dataclass
class Row:
    engine: str
    figure: str
    value: float
    unit: str
    anchor: float | None
    anchor_what: str
    target: str
    ok: bool
    note: str = ""


# Starts the command from a small process of its own and reports its wall time and peak memory. Linux
# counts in a child's peak memory the pages of the process it was forked from, up to its exec: run
# straight from this script, after it had built a million audit rows, a 111 MB `audit verify` was
# reported at 586 MB.
TRAMPOLINE = """
import os, sys, time
out = int(sys.argv[1])
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(out)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(out, f"{time.perf_counter() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""


def run(args: list[str], env: dict | None = None, stdout=subprocess.DEVNULL) -> tuple[float, int, int]:
    """Run a child; (wall seconds, its own max RSS in MB, exit status)."""
    read_end, write_end = os.pipe()
    try:
        p = subprocess.Popen([sys.executable, "-c", TRAMPOLINE, str(write_end), *args], stdout=stdout,
                             stderr=subprocess.PIPE, env=env, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    err = p.stderr.read().decode("utf-8", "replace") if p.stderr else ""
    p.wait()
    p.stderr.close()
    with os.fdopen(read_end, "rb") as fh:
        wall, rss, code = fh.read().decode().split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{err[-2000:]}")
    return float(wall), int(rss) // 1024, int(code)


def medians(pairs: list[tuple[list[str], list[str]]], repeat: int, env: dict) -> list[tuple[float, float]]:
    """Median wall time of each command and of its anchor, run interleaved."""
    out = []
    for cmd, anchor in pairs:
        a, b = [], []
        for _ in range(repeat):
            a.append(run(cmd, env)[0])
            b.append(run(anchor, env)[0])
        out.append((statistics.median(a), statistics.median(b)))
    return out


def national_rows() -> list[dict]:
    with open(REGISTRY, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# -- anchors -----------------------------------------------------------------------------------------
def anchor_load(engine: str, url: str, rows: list[dict]) -> float:
    """Read the CSV and executemany the same rows into a table of the same shape, plain driver."""
    t = time.perf_counter()
    rows = national_rows()
    data = [(r["code"], r["name"], r["name"], r["level"], r["parent_code"] or None, "not_started", 1, "t", "b") for r in rows]
    conn = _raw(engine, url)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS anchor_units")
    cur.execute("CREATE TABLE anchor_units (code VARCHAR(12) PRIMARY KEY, name VARCHAR(64), short_name VARCHAR(64), "
                "level VARCHAR(10), parent_code VARCHAR(12), state VARCHAR(20), version INTEGER, changed_at VARCHAR(32), "
                "changed_by VARCHAR(128))")
    ph = ",".join([_ph(engine)] * 9)
    cur.executemany(f"INSERT INTO anchor_units VALUES ({ph})", data)
    conn.commit()
    took = time.perf_counter() - t
    cur.execute("DROP TABLE anchor_units")
    conn.commit()
    conn.close()
    return took


def anchor_advance(engine: str, url: str, codes: list[str]) -> float:
    """The same 10,000 UPDATEs and audit-sized INSERTs as one executemany each, plain driver."""
    conn = _raw(engine, url)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS anchor_audit")
    cur.execute("CREATE TABLE anchor_audit (seq INTEGER PRIMARY KEY, at VARCHAR(32), actor VARCHAR(128), unit_code VARCHAR(12), "
                "action VARCHAR(32), from_state VARCHAR(20), to_state VARCHAR(20), hash VARCHAR(64))")
    conn.commit()
    ph = _ph(engine)
    t = time.perf_counter()
    cur.executemany(f"UPDATE unit_states SET version = version WHERE unit_code = {ph}", [(c,) for c in codes])
    cur.executemany(f"INSERT INTO anchor_audit VALUES ({','.join([ph] * 8)})",
                    [(i, "2015-01-05T02:00:00Z", "bench", c, "start", "not_started", "building",
                      hashlib.sha256(c.encode()).hexdigest()) for i, c in enumerate(codes)])
    conn.commit()
    took = time.perf_counter() - t
    cur.execute("DROP TABLE anchor_audit")
    conn.commit()
    conn.close()
    return took


def anchor_files(folder: Path, count: int, size: int, remove: bool = True) -> float:
    """Write `count` files of `size` bytes, one sync at the end: what any outbox must do at least."""
    folder.mkdir(parents=True, exist_ok=True)
    body = b"x" * size
    t = time.perf_counter()
    for i in range(count):
        with open(folder / f"{i}.eml", "wb") as f:
            f.write(body)
    os.sync()
    took = time.perf_counter() - t
    if remove:
        shutil.rmtree(folder)
    return took


def anchor_scan(engine: str, url: str) -> float:
    """Read every audit row with the plain driver and hash it: the floor of any verification."""
    conn = _raw(engine, url)
    cur = conn.cursor()
    t = time.perf_counter()
    cur.execute("SELECT seq, at, actor, unit_code, action, from_state, to_state, note, evidence, detail, prev_hash, hash "
                "FROM audit_log ORDER BY seq")
    n = 0
    while True:
        chunk = cur.fetchmany(20000)
        if not chunk:
            break
        for r in chunk:
            hashlib.sha256(json.dumps(list(r), ensure_ascii=False).encode("utf-8")).hexdigest()
            n += 1
    took = time.perf_counter() - t
    conn.close()
    return took


def _raw(engine: str, url: str):
    if engine == "sqlite":
        import sqlite3

        return sqlite3.connect(url.split(":///", 1)[1])
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def _ph(engine: str) -> str:
    return "?" if engine == "sqlite" else "%s"


# -- the data ----------------------------------------------------------------------------------------
def add_contacts(db) -> int:
    """One contact at every township and county (the pass then has all of them to write to)."""
    from sqlalchemy import insert, select

    from anjian.workflow.clock import from_utc_text
    from anjian.workflow.store import audit
    from anjian.workflow.store.models import Contact, Unit

    with db.write() as session:
        codes = list(session.scalars(select(Unit.code).where(Unit.level.in_(("township", "county")))))
        # stamped as `append` will stamp the audit rows that say so (never before the log's last row)
        stamp = max("2014-12-15T01:00:00.000000Z", audit.last_at(session) or "")
        session.connection().execute(insert(Contact.__table__), [
            {"unit_code": c, "name": f"安监站{c}", "email": f"u{c}@example.gov.cn", "webhook": None,
             "created_at": stamp} for c in codes])
        # and audited as `contact add` audits them: `audit verify` rebuilds the contacts from the log
        added = session.execute(select(Contact.id, Contact.unit_code, Contact.name, Contact.email)).all()
        audit.append(session, [audit.Entry(from_utc_text(stamp), "bench", "contact_add", unit, detail={
            "name": name, "email": email, "webhook": None, "id": cid}) for cid, unit, name, email in added])
    return len(codes)


def grow_audit(db, engine: str, url: str, total: int) -> int:
    """Append checklist-record rows, properly chained, until the log holds `total` rows."""
    from anjian.workflow.store.audit import canonical, head, row_hash

    with db.read() as session:
        seq, prev = head(session)
    codes = []
    with db.read() as session:
        from sqlalchemy import select

        from anjian.workflow.store.models import Unit

        codes = list(session.scalars(select(Unit.code).where(Unit.level == "township")))
    items = ("six.office", "six.vehicle", "six.equipment", "staff.count")
    conn = _raw(engine, url)
    cur = conn.cursor()
    ph = ",".join([_ph(engine)] * 12)
    sql = f"INSERT INTO audit_log (seq, at, actor, unit_code, action, from_state, to_state, note, evidence, detail, prev_hash, hash) VALUES ({ph})"
    batch = []
    start = seq
    with db.read() as session:  # never before the log's last row, in the stored form (utc_text)
        from anjian.workflow.store.audit import last_at

        at = max("2015-01-05T02:00:00.000000Z", last_at(session) or "")
    while seq < total:
        seq += 1
        code = codes[seq % len(codes)]
        detail = canonical({"item": items[seq % 4], "value": "是", "previous": None})
        evidence = canonical([])
        h = row_hash(prev, seq, at, "bench", code, "record", None, None, None, evidence, detail)
        batch.append((seq, at, "bench", code, "record", None, None, None, evidence, detail, prev, h))
        prev = h
        if len(batch) == 50000:
            cur.executemany(sql, batch)
            batch.clear()
    if batch:
        cur.executemany(sql, batch)
    # the tables the log determines, as `record` would have left them: each row set a value and bumped a version
    bumps = Counter(codes[s % len(codes)] for s in range(start + 1, seq + 1))
    values = {(codes[s % len(codes)], items[s % 4]) for s in range(start + 1, seq + 1)}
    p = _ph(engine)
    cur.executemany(f"UPDATE unit_states SET version = version + {p} WHERE unit_code = {p}", [(n, c) for c, n in bumps.items()])
    cur.executemany(f"DELETE FROM checklist_values WHERE unit_code = {p} AND item = {p}", list(values))
    cur.executemany(f"INSERT INTO checklist_values (unit_code, item, value, recorded_at, recorded_by) VALUES ({p}, {p}, {p}, {p}, {p})",
                    [(c, i, "是", at, "bench") for c, i in values])
    conn.commit()
    conn.close()
    return seq - start


# -- one engine --------------------------------------------------------------------------------------
def bench_engine(engine: str, url: str, folder: Path, repeat: int, audit_rows: int, skip: set[str],
                 runs: int = 5) -> list[Row]:
    import anjian.workflow.services.registry as registry
    from anjian.workflow.clock import SHANGHAI
    from anjian.workflow.services.advance import BatchRow, advance_batch
    from anjian.workflow.store.db import Database

    rows: list[Row] = []
    reg = national_rows()
    env = {**os.environ, "ANJIAN_HOME": str(folder / "home"), "ANJIAN_DB": url, "ANJIAN_OUTBOX": str(folder / "outbox")}

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)

    # 1. the registry
    anchor = anchor_load(engine, url if engine != "sqlite" else f"sqlite:///{folder / 'anchor.db'}", reg)
    db = Database(url)
    t = time.perf_counter()
    res = registry.initialize(db, str(REGISTRY), None, at(INIT_AT), "bench", drill=True)  # remind --now: a drill
    took = time.perf_counter() - t
    assert sum(res.units.values()) == len(reg) == 44700, res.units
    rows.append(Row(engine, "registry load: init, 44,700 units", took, "s", anchor, "executemany of the same rows",
                    "≤ 10× anchor", took <= 10 * anchor, f"{took / anchor:.1f}×"))

    # 2. the commands an official types
    cli = [ANJIAN, "--now", "2015-04-01T09:00"]
    # The floor: Python and SQLAlchemy's ORM — and, on PostgreSQL, its driver, which any client must load.
    floor = [sys.executable, "-c", "import sqlalchemy.orm" + (", psycopg" if engine == "postgresql" else "")]
    what = "python + import sqlalchemy.orm" + (", psycopg" if engine == "postgresql" else "")
    (st, f1), (sh, f2), (sc, f3) = medians([(cli + ["status"], floor), (cli + ["show", SHOW_UNIT], floor),
                                           (cli + ["show", SHOW_COUNTY], floor)], repeat, env)
    rows.append(Row(engine, "anjian status (2,975 counties + 77 cities)", st, "s", f1, what,
                    "≤ floor + 0.5 s", st <= f1 + 0.5, f"+{st - f1:.2f} s"))
    rows.append(Row(engine, "anjian show TOWNSHIP", sh, "s", f2, what, "≤ floor + 0.2 s",
                    sh <= f2 + 0.2, f"+{sh - f2:.2f} s"))
    rows.append(Row(engine, "anjian show COUNTY", sc, "s", f3, what, "≤ floor + 0.2 s",
                    sc <= f3 + 0.2, f"+{sc - f3:.2f} s"))
    (sp, f4), = medians([(cli + ["status", "--by", "province"], floor)], repeat, env)
    rows.append(Row(engine, "anjian status --by province", sp, "s", f4, what,
                    "≤ floor + 0.5 s", sp <= f4 + 0.5, f"+{sp - f4:.2f} s"))
    if engine == "sqlite":
        (hp, ck), = medians([([ANJIAN, "--help"], [sys.executable, "-c", "import click"])], repeat, env)
        rows.append(Row(engine, "anjian --help", hp, "s", ck, "python -c 'import click'", "≤ 1.5× anchor",
                        hp <= 1.5 * ck, f"{hp / ck:.2f}×"))

    # 3. a batch advance of 10,000 townships, in one transaction with its audit rows
    codes = sorted(r["code"] for r in reg if r["level"] == "township")[:10000]
    anchor = anchor_advance(engine, url, codes)
    batch = [BatchRow(i + 2, c, "start") for i, c in enumerate(codes)]
    t = time.perf_counter()
    out = advance_batch(db, batch, "bench", at(ADVANCE_AT))
    took = time.perf_counter() - t
    assert len(out.applied) == 10000 and not out.problems, out.problems[:3]
    rate = 10000 / took
    rows.append(Row(engine, "batch advance, 10,000 townships", rate, "transitions/s", 10000 / anchor,
                    "executemany of the same UPDATEs + INSERTs (rows/s)", "≥ 2,000/s" if engine == "sqlite" else "—",
                    rate >= 2000 or engine != "sqlite", f"{took:.2f} s"))
    # The same as an official whose role and jurisdiction are checked on every row: the townships not
    # yet moved of the city with most of them, by a city_office official registered at that city (a city
    # role is posted at a city only).
    from collections import Counter

    from sqlalchemy import select

    from anjian.workflow.services.officials import add as add_official
    from anjian.workflow.services.officials import identify
    from anjian.workflow.store.models import Unit

    with db.read() as session:
        upper = {c: (p, lv) for c, p, lv in session.execute(
            select(Unit.code, Unit.parent_code, Unit.level).where(Unit.level != "township"))}
        city = {}
        for c in upper:
            p = c
            while p in upper and upper[p][1] != "city":
                p = upper[p][0]
            city[c] = p
        idle = [(c, city.get(p)) for c, p in session.execute(
            select(Unit.code, Unit.parent_code).where(Unit.level == "township", Unit.state == "not_started"))]
    top = Counter(p for _, p in idle if p is not None).most_common(1)[0][0]
    towns = [c for c, p in idle if p == top]
    add_official(db, "市安委办", "city_office", top, "bench-official", "bench", at(ADVANCE_AT))
    with db.read() as session:
        official = identify(session, "bench-official")
    t = time.perf_counter()
    out = advance_batch(db, [BatchRow(i + 2, c, "start") for i, c in enumerate(towns)], official, at(ADVANCE_AT))
    took = time.perf_counter() - t
    assert len(out.applied) == len(towns) and not out.problems, out.problems[:3]
    rate = len(towns) / took
    rows.append(Row(engine, f"batch advance as an official, {len(towns):,} townships", rate, "transitions/s", None,
                    "role and jurisdiction checked per row", "≥ 2,000/s" if engine == "sqlite" else "—",
                    rate >= 2000 or engine != "sqlite", f"{took:.2f} s"))

    if "remind" in skip:
        db.dispose()
    # 4. a reminder pass with every township due; 5. the audit log at a million rows
    if "remind" not in skip:
        rows += bench_remind(engine, db, env, folder, runs)
    if "audit" not in skip:
        rows += bench_audit(engine, url, env, audit_rows)
    return rows


def bench_remind(engine: str, db, env: dict, folder: Path, runs: int) -> list[Row]:
    """The dry run and the real pass, each `runs` times from the same database: each real pass on a copy
    of its own with an outbox of its own, on an idle disk; medians, and the largest peak memory. Nothing
    is deleted until the end: here, for a minute after 44,000 files were deleted, creating one cost the
    kernel 280 µs instead of 12 µs, and a pass after a deleted outbox took 14 s instead of 9."""
    rows = []
    contacts = add_contacts(db)
    db.dispose()
    remind = [ANJIAN, "--now", REMIND_AT, "remind", "--format", "json"]
    dry = [run(remind + ["--dry-run"], env) for _ in range(runs)]
    wall, rss = statistics.median(w for w, _, _ in dry), max(r for _, r, _ in dry)
    rows.append(Row(engine, f"remind --dry-run ({contacts:,} contacts)", wall, "s", None, "", "≤ 10 s, < 300 MB",
                    wall <= 10 and rss < 300, f"{rss} MB"))
    url = env["ANJIAN_DB"]
    if engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file itself, to be copied
        conn.close()
    walls, rsss, anchors, copies, sent = [], [], [], [], 0
    try:
        for i in range(runs):
            copies.append(_copy(engine, url, folder, i))
            outbox = folder / f"outbox-{i}"
            _settle(engine, url)
            wall, rss, _ = run(remind, {**env, "ANJIAN_DB": copies[-1], "ANJIAN_OUTBOX": str(outbox)})
            walls.append(wall)
            rsss.append(rss)
            files = list(outbox.glob("*.eml"))
            sent = len(files)
            size = statistics.median(p.stat().st_size for p in files[:500]) if files else 1000
            _settle(engine, url)
            anchors.append(anchor_files(folder / f"anchor-{i}", sent or contacts, int(size), remove=False))
    finally:
        for copy in copies:
            _drop_copy(engine, copy)
        for i in range(runs):
            shutil.rmtree(folder / f"outbox-{i}", ignore_errors=True)
            shutil.rmtree(folder / f"anchor-{i}", ignore_errors=True)
    wall, rss, anchor = statistics.median(walls), max(rsss), statistics.median(anchors)
    rows.append(Row(engine, f"remind, file outbox ({sent:,} notices)", wall, "s", anchor,
                    "writing as many files, one sync", "≤ 10 s, < 300 MB", wall <= 10 and rss < 300 and sent > 40000,
                    f"{rss} MB; runs {', '.join(f'{w:.1f}' for w in walls)} s"))
    return rows


def _copy(engine: str, url: str, folder: Path, i: int) -> str:
    """A copy of the database as it is (no client connected), as a URL: a file, or a database made from
    it as a template."""
    if engine == "sqlite":
        target = folder / f"remind-{i}.db"
        shutil.copyfile(url.split(":///", 1)[1], target)
        return f"sqlite:///{target}"
    server, name = url.rsplit("/", 1)
    with _admin(url) as admin:
        admin.execute(f'CREATE DATABASE "{name}_{i}" TEMPLATE "{name}"')
    return f"{server}/{name}_{i}"


def _drop_copy(engine: str, url: str) -> None:
    if engine == "sqlite":
        path = url.split(":///", 1)[1]
        for extra in ("", "-wal", "-shm"):
            Path(path + extra).unlink(missing_ok=True)
        return
    with _admin(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _settle(engine: str, url: str, quiet: float = 2.0, limit: float = 120.0) -> float:
    """Let the disk take what is waiting (PostgreSQL's dirty buffers, then the OS's) and wait until it has
    done nothing for `quiet` seconds, so that a run does not pay for the writes and deletions of the one
    before it. (Here, after a run's outbox was deleted, creating a file took 280 µs instead of 12 µs for
    most of a minute.) Returns the seconds waited."""
    started = time.monotonic()
    if engine == "postgresql":
        with _admin(url) as admin:
            admin.execute("CHECKPOINT")
    os.sync()
    still_since, last = time.monotonic(), _disk_activity()
    while time.monotonic() - still_since < quiet and time.monotonic() - started < limit:
        time.sleep(0.25)
        now = _disk_activity()
        if now != last:
            still_since, last = time.monotonic(), now
    return time.monotonic() - started


def _disk_activity() -> tuple[int, ...]:
    """Every counter of each disk (/proc/diskstats: reads, writes, discards, I/Os in flight, time busy);
    they all stand still only while the disk does nothing. () where there is none."""
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return ()
    out = []
    for line in lines:
        f = line.split()
        if len(f) > 11 and not f[2].startswith(("loop", "ram")):
            out += [int(x) for x in f[3:]]
    return tuple(out)


def _admin(url: str):
    import psycopg

    server = url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(server + "/postgres", autocommit=True)


def bench_audit(engine: str, url: str, env: dict, audit_rows: int) -> list[Row]:
    """The audit log at a million rows."""
    from anjian.workflow.store.db import Database

    rows = []
    db = Database(url)
    grow_audit(db, engine, url, audit_rows)
    db.dispose()
    anchor = anchor_scan(engine, url)
    wall, rss, _ = run([ANJIAN, "audit", "verify"], env)
    rows.append(Row(engine, f"audit verify, {audit_rows:,} rows", wall, "s", anchor, "plain scan hashing each row",
                    "≤ 30 s", wall <= 30, f"{rss} MB, {wall / anchor:.1f}× anchor"))
    return rows


# -- databases -----------------------------------------------------------------------------------------
def pg_database(server: str) -> str | None:
    """A fresh database on the server (None when no server answers)."""
    try:
        import psycopg

        admin = psycopg.connect(server.replace("postgresql+psycopg://", "postgresql://").rstrip("/") + "/postgres",
                                autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL rows are left out, and said so
        print(f"PostgreSQL not measured: {exc}", file=sys.stderr)
        return None
    name = f"anjian_scale_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return server.rstrip("/") + "/" + name


def drop_pg(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(server.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL (default: %(default)s)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--repeat", type=int, default=5, help="runs per command-line figure (median)")
    ap.add_argument("--remind-runs", type=int, default=5, help="real reminder passes per engine (median)")
    ap.add_argument("--audit-rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--skip", action="append", choices=("remind", "audit"), default=[], help="leave a part out")
    args = ap.parse_args()

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="anjian-scale-") as tmp:
        folder = Path(tmp) / "sqlite"
        folder.mkdir()
        rows += bench_engine("sqlite", f"sqlite:///{folder / 'national.db'}", folder, args.repeat, args.audit_rows, set(args.skip),
                             args.remind_runs)
        if not args.no_pg:
            url = pg_database(args.pg)
            if url:
                try:
                    folder = Path(tmp) / "pg"
                    folder.mkdir()
                    rows += bench_engine("postgresql", url, folder, args.repeat, args.audit_rows, set(args.skip),
                             args.remind_runs)
                finally:
                    drop_pg(url)

    headers = ("engine", "figure", "anjian", "anchor", "", "target", "ok")
    table = [(r.engine, r.figure, f"{r.value:,.2f} {r.unit}", f"{r.anchor:,.2f}" if r.anchor is not None else "—",
              r.note, r.target, "yes" if r.ok else "NO") for r in rows]
    widths = [max(_width(str(x)) for x in col) for col in zip(headers, *table, strict=True)]
    for line in [headers, tuple("-" * w for w in widths), *table]:
        print("  ".join(str(x) + " " * (w - _width(str(x))) for x, w in zip(line, widths, strict=True)).rstrip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
        "machine": platform.platform(), "cpus": os.cpu_count(), "repeat": args.repeat,
        "rows": [asdict(r) for r in rows]}, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwritten: {args.out}")
    return 0 if all(r.ok for r in rows) else 1


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


if __name__ == "__main__":
    sys.exit(main())
