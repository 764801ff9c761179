"""Eight officials fire the same trigger on the same township at the same instant, round after round.

Each round starts `--procs` OS processes of the real CLI, `anjian --as racerK advance TOWNSHIP start`.
Every process imports the CLI first, says it is ready, and then blocks on a shared pipe; closing the
pipe releases them all at once, so they reach the database together. Per engine it checks:

- exactly one process wins each round (exit 0); every loser exits 3 (refused now) or 5 (conflict),
  never 1, and no output anywhere mentions "database is locked";
- the township moved once (state `building`, version 2) and has exactly one `start` audit row;
- `anjian audit verify` is clean at the end.

A second, smaller part checks that concurrent writers on *different* townships all succeed
(`anjian record`), i.e. that SQLite's single writer lock queues them instead of failing one.

    python benchmarks/race.py [--rounds 200] [--procs 8] [--db URL]...

`--db` may be repeated; by default SQLite in a temporary folder, plus PostgreSQL when ANJIAN_TEST_PG
names a server. A PostgreSQL URL names a database that this script creates and drops (one that
already exists is refused); a server URL without a database gets a fresh `anjian_race_<hex>`.
Prints a table and writes benchmarks/results/race.json; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

NOW = "2014-12-15T09:00"
TRIGGER = "start"
ITEM = "six.vehicle"  # a township checklist flag, recorded by the distinct-unit writers
RESULTS = Path(__file__).parent / "results" / "race.json"

# The child: import the CLI (the slow part), say ready, wait for the start signal, then run it.
CHILD = """
import os, sys
ready, go = int(sys.argv[1]), int(sys.argv[2])
from anjian.workflow.cli import main
import alembic.runtime.migration, anjian.workflow.services.advance, anjian.workflow.services.checklist, anjian.workflow.services.officials
try:
    import psycopg
except ImportError:
    pass
os.write(ready, b"."); os.close(ready)
os.read(go, 1); os.close(go)
sys.argv = ["anjian", *sys.argv[3:]]
main()
"""


@dataclass
class Outcome:
    """How one released process ended."""

    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def locked(self) -> bool:
        return "locked" in (self.out + self.err).lower()


def child_env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ANJIAN_USER", "ANJIAN_FAULT", "ANJIAN_NOW")}
    return {**env, "ANJIAN_DB": url, "ANJIAN_HOME": str(home), "ANJIAN_NOW": NOW}


def anjian(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """One ordinary run of the CLI (setup and verification)."""
    cmd = [sys.executable, "-c", "import sys; from anjian.workflow.cli import main; sys.argv[0] = 'anjian'; main()", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def fire_together(env: dict[str, str], argvs: list[list[str]]) -> list[Outcome]:
    """Start one CLI process per argv, wait until all have imported, release them at once, collect."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ready_w), str(go_r), *argv], env=env,
                              pass_fds=(ready_w, go_r), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    os.close(ready_w)
    os.close(go_r)
    ready = 0
    while ready < len(procs):
        chunk = os.read(ready_r, 64)
        if not chunk:  # a child died before it was ready; the others still run and report
            break
        ready += len(chunk)
    os.close(ready_r)
    results: list[Outcome | None] = [None] * len(procs)

    def collect(i: int, p: subprocess.Popen) -> None:
        out, err = p.communicate(timeout=600)
        results[i] = Outcome(argvs[i], p.returncode, out, err, time.perf_counter() - t0)

    t0 = time.perf_counter()
    os.close(go_w)
    threads = [threading.Thread(target=collect, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def setup(env: dict[str, str], procs: int) -> list[str]:
    """Initialize the database (a drill: every write runs at ANJIAN_NOW), register the racing officials;
    return the townships not started yet."""
    steps = [("init", "--drill")] + [("user", "add", f"racer{k}", "--role", "city_office", "--unit", "承德市") for k in range(1, procs + 1)]
    for args in steps:
        r = anjian(env, *args)
        if r.returncode != 0:
            raise SystemExit(f"anjian {' '.join(args)} failed ({r.returncode}): {r.stderr or r.stdout}")
    r = anjian(env, "units", "--level", "township", "--state", "not_started", "--format", "json")
    if r.returncode != 0:
        raise SystemExit(f"anjian units failed: {r.stderr}")
    return [u["code"] for u in json.loads(r.stdout)]


def audit_rows(db, code: str, action: str) -> int:
    from sqlalchemy import func, select

    from anjian.workflow.store.models import AuditRow

    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.unit_code == code, AuditRow.action == action))


def unit_state(db, code: str) -> tuple[str, int]:
    from anjian.workflow.store.models import Unit

    with db.read() as s:
        u = s.get(Unit, code)
        return u.state, u.version


@dataclass
class EngineReport:
    """The figures of one engine."""

    engine: str
    rounds: int
    procs: int
    one_winner: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    unexpected_exits: int = 0
    locked_messages: int = 0
    one_audit_row: int = 0
    state_ok: int = 0
    losers_naming_winner: int = 0
    audit_verify: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    writers: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        w = self.writers
        return (self.one_winner == self.rounds == self.one_audit_row == self.state_ok and not self.unexpected_exits
                and not self.locked_messages and self.audit_verify == "ok"
                and (not w or (w["exit0"] == w["processes"] and not w["locked_messages"] and w["audit_rows_ok"] == w["rounds"])))


def race(url: str, home: Path, rounds: int, procs: int, writer_rounds: int = 0) -> EngineReport:
    """The whole measurement on one empty database: setup, the same-unit rounds, the distinct-unit writers."""
    from anjian.workflow.store.db import Database

    env = child_env(url, home)
    townships = setup(env, procs)
    if rounds + procs > len(townships):
        raise SystemExit(f"only {len(townships)} townships: at most {len(townships) - procs} rounds")
    db = Database(url)
    rep = EngineReport(db.dialect, rounds, procs)
    exits: Counter[int] = Counter()
    latencies: list[float] = []
    started = time.perf_counter()
    try:
        for code in townships[:rounds]:
            outs = fire_together(env, [["--as", f"racer{k}", "advance", code, TRIGGER] for k in range(1, procs + 1)])
            judge_round(rep, db, code, outs, procs)
            exits.update(o.code for o in outs)
            latencies += [o.seconds * 1000 for o in outs]
        if writer_rounds:
            rep.writers = distinct_writers(env, db, townships[-procs:], writer_rounds)
    finally:
        db.dispose()
    rep.seconds = round(time.perf_counter() - started, 1)
    rep.exits = {str(k): v for k, v in sorted(exits.items())}
    if latencies:
        q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
        rep.latency_ms = {"p50": round(statistics.median(latencies)), "p95": round(q[18]), "max": round(max(latencies))}
    v = anjian(env, "audit", "verify")
    rep.audit_verify = "ok" if v.returncode == 0 else f"exit {v.returncode}: {(v.stderr or v.stdout).strip()[:300]}"
    return rep


def judge_round(rep: EngineReport, db, code: str, outs: list[Outcome], procs: int) -> None:
    winners = [o for o in outs if o.code == 0]
    losers = [o for o in outs if o.code != 0]
    bad = [o for o in losers if o.code not in (3, 5)]
    if len(outs) == procs and len(winners) == 1:
        rep.one_winner += 1
        name = winners[0].argv[1]
        rep.losers_naming_winner += sum(1 for o in losers if name in o.err)
    else:
        rep.failures.append(f"{code}: exits {sorted(o.code for o in outs)}")
    rep.unexpected_exits += len(bad) + (procs - len(outs))
    rep.locked_messages += sum(1 for o in outs if o.locked)
    for o in bad[:2]:
        rep.failures.append(f"{code}: exit {o.code}: {(o.err or o.out).strip()[:300]}")
    if audit_rows(db, code, TRIGGER) == 1:
        rep.one_audit_row += 1
    else:
        rep.failures.append(f"{code}: {audit_rows(db, code, TRIGGER)} `{TRIGGER}` audit rows")
    if unit_state(db, code) == ("building", 2):
        rep.state_ok += 1
    else:
        rep.failures.append(f"{code}: state/version {unit_state(db, code)}")


def distinct_writers(env: dict[str, str], db, codes: list[str], rounds: int) -> dict:
    """Each round, every process records a fact on its own township at the same instant: all must succeed."""
    from sqlalchemy import func, select

    from anjian.workflow.store.models import AuditRow

    def total() -> int:
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(AuditRow))

    exit0 = locked = rows_ok = 0
    failures: list[str] = []
    for r in range(rounds):
        value = "是" if r % 2 == 0 else "否"  # a change every round, so every record writes a row
        before = total()
        outs = fire_together(env, [["--as", f"racer{k + 1}", "record", code, ITEM, value] for k, code in enumerate(codes)])
        exit0 += sum(1 for o in outs if o.code == 0)
        locked += sum(1 for o in outs if o.locked)
        failures += [f"record {o.argv[4]}: exit {o.code}: {(o.err or o.out).strip()[:200]}" for o in outs if o.code != 0][:2]
        if total() - before == len(codes):
            rows_ok += 1
    return {"rounds": rounds, "processes": rounds * len(codes), "exit0": exit0, "locked_messages": locked,
            "audit_rows_ok": rows_ok, "failures": failures[:10]}


HEADERS = ["engine", "rounds", "procs", "one winner", "exit 0", "exit 3", "exit 5", "other exits", "'locked'",
           "1 audit row", "state ok", "verify", "p50 ms", "p95 ms", "max ms", "writers ok", "seconds"]


def table(reports: list[EngineReport]) -> str:
    rows = []
    for r in reports:
        w = r.writers
        writers = f"{w['exit0']}/{w['processes']}" + (f" ({w['locked_messages']} locked)" if w.get("locked_messages") else "") if w else "-"
        rows.append([r.engine, r.rounds, r.procs, f"{r.one_winner}/{r.rounds}", r.exits.get("0", 0), r.exits.get("3", 0),
                     r.exits.get("5", 0), r.unexpected_exits, r.locked_messages, f"{r.one_audit_row}/{r.rounds}",
                     f"{r.state_ok}/{r.rounds}", r.audit_verify if r.audit_verify == "ok" else "FAILED",
                     r.latency_ms.get("p50", "-"), r.latency_ms.get("p95", "-"), r.latency_ms.get("max", "-"), writers, r.seconds])
    widths = [max(len(str(x)) for x in col) for col in zip(HEADERS, *rows, strict=False)]
    lines = ["  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)) for row in [HEADERS, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fresh_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """Create the database the URL names (or a fresh one on the server); return its URL and a dropper."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = u.database or f"anjian_race_{uuid.uuid4().hex[:10]}"
    server = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            raise SystemExit(f"database {name} already exists; name a fresh one (it is dropped afterwards)")
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()

    return u.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--writer-rounds", type=int, default=10, help="rounds of the distinct-township writers (0: skip)")
    ap.add_argument("--db", action="append", metavar="URL", help="sqlite:///FILE (not existing yet) or a PostgreSQL URL")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    urls = args.db or [None] + ([os.environ["ANJIAN_TEST_PG"]] if os.environ.get("ANJIAN_TEST_PG") else [])
    reports = []
    with tempfile.TemporaryDirectory(prefix="anjian-race-") as tmp:
        for i, url in enumerate(urls):
            home = Path(tmp) / f"home{i}"
            drop = None
            if url is None:
                url = f"sqlite:///{Path(tmp) / f'race{i}.db'}"
            elif url.startswith("sqlite"):
                if Path(url.split(":///", 1)[1]).exists():
                    raise SystemExit(f"{url} exists; name a new file")
            else:
                url, drop = fresh_postgres(url)
            print(f"racing on {url.split('@')[-1]} …", file=sys.stderr, flush=True)
            try:
                reports.append(race(url, home, args.rounds, args.procs, args.writer_rounds))
            finally:
                if drop:
                    drop()
    print(table(reports))
    for r in reports:
        for f in r.failures[:10] + r.writers.get("failures", []):
            print(f"  {r.engine}: {f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "what": "N processes fire the same trigger on the same township at once, per round",
        "python": platform.python_version(), "cpus": os.cpu_count(), "now": NOW, "trigger": TRIGGER,
        "engines": [{**asdict(r), "ok": r.ok} for r in reports]}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
