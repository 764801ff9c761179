"""Kill the reminder pass hard, restart it, and count what was lost or sent twice.

A database with contacts at every county and at the city office makes one pass at NOW send a few dozen
overdue notices. For each channel — the file outbox, and SMTP against a real aiosmtpd server on
127.0.0.1 — the sweep

- (a) kills `anjian remind` with SIGKILL at every named fault point (ANJIAN_FAULT), and
- (b) kills it after a random delay, drawn (seeded) from the measured run time of a normal pass,

then restarts an ordinary pass at the same moment and counts, against what a clean pass delivers:
lost (a due notice neither delivered nor held), duplicated (deliveries beyond one per notice id: .eml
files or SMTP messages, named by their X-Anjian-Notice header) and held (notices the restart found
begun where it cannot look, marked `ambiguous` and not sent again: `anjian notices --status ambiguous`).
After each run `PRAGMA integrity_check` (SQLite) must say ok and `anjian audit verify` must pass.

The promise: the file outbox loses, repeats and holds nothing; SMTP loses and repeats nothing, and holds
at most the one message a kill interrupted after it was marked sending (after_begin, after_send).

With `--outboxes 2` it runs the sweep across two outboxes instead (`benchmarks/outboxes.py`): passes
writing to one outbox killed at random moments, each finished by a pass writing to the other.

    python benchmarks/faults.py [--random 100] [--per-county 3] [--seed 2014] [--db URL] [--outboxes 2]

Prints a table and writes benchmarks/results/faults.json (faults-outboxes.json); exits 1 if a promise
was broken.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

NOW = "2014-12-31T08:30"  # plan_submission (2014-12-30) is one day overdue for every county
SETUP_NOW = "2014-12-15T09:00"
RESULTS = Path(__file__).parent / "results" / "faults.json"
CHANNELS = ("file", "smtp")
BEGUN_POINTS = ("after_begin", "after_send")  # a kill here leaves one SMTP message that may have gone out
INIT = ("init", "--drill")  # how the sweeps create their database (one place: a drill database once writes need it)

# The child: import the CLI, say ready, wait for the start signal, run one pass. The import happens
# before the signal so that a random delay lands in the pass itself, not in Python starting up.
CHILD = """
import os, sys
ready, go = int(sys.argv[1]), int(sys.argv[2])
from anjian.workflow.cli import main
import anjian.workflow.reminders.run, anjian.notifications.render, anjian.workflow.cli.notify, alembic.runtime.migration
try:
    import psycopg
except ImportError:
    pass
os.write(ready, b"."); os.close(ready)
os.read(go, 1); os.close(go)
sys.argv = ["anjian", *sys.argv[3:]]
main()
"""
PLAIN = "import sys; from anjian.workflow.cli import main; sys.argv[0] = 'anjian'; main()"


class Inbox:
    """An aiosmtpd handler keeping the X-Anjian-Notice header of every message it accepted."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.received.append(str(msg["X-Anjian-Notice"]))
        return "250 Message accepted for delivery"

    def take(self) -> list[str]:
        with self.lock:
            out, self.received = self.received, []
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server():
    """A real SMTP server on 127.0.0.1 in this process: it outlives the passes killed under it."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


class Pass:
    """One `anjian remind --now NOW` child, imported and held until `go()`."""

    def __init__(self, env: dict[str, str], fault: str | None = None):
        env = {**env, "ANJIAN_FAULT": fault} if fault else env
        ready_r, ready_w = os.pipe()
        go_r, self._go = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ready_w), str(go_r), "remind", "--now", NOW],
                                     env=env, pass_fds=(ready_w, go_r), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(ready_w)
        os.close(go_r)
        os.read(ready_r, 1)  # b"" if the child died while importing: go() then finds it dead
        os.close(ready_r)
        self.started = 0.0

    def go(self) -> None:
        self.started = time.perf_counter()
        os.close(self._go)

    def finish(self, timeout: float | None = None) -> tuple[int | None, float]:
        """Wait up to `timeout` seconds; return (exit code or None if still running, seconds since go)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - self.started
        return code, time.perf_counter() - self.started

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait()
        self.proc.stderr.close()
        return code

    def error(self) -> str:
        return self.proc.stderr.read().decode("utf-8", "replace").strip()[-500:]


@dataclass
class Run:
    """What one kill and restart left."""

    channel: str
    kill: str  # a fault point, or "random"
    delay_ms: float | None = None
    killed: bool = False
    left: dict[str, int] = field(default_factory=dict)  # notice statuses right after the kill
    restart_exit: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    flagged: int = 0  # held as ambiguous (not sent again, for an official to settle)
    flagged_ids: list[str] = field(default_factory=list)
    unflagged_duplicates: int = 0
    listed_flagged: list[str] = field(default_factory=list)  # `anjian notices --status ambiguous --format json`
    shown_flagged: int = 0  # rows of the `anjian notices --status ambiguous` table saying 未重发
    unfinished: int = 0  # notices not `sent` after the restart
    extra: int = 0  # notices a clean pass would not have made
    temporaries: int = 0  # partial files left in the outbox (invisible to readers)
    integrity: str = "ok"
    audit_verify: str = "ok"
    problems: list[str] = field(default_factory=list)


class Sweep:
    """The database, its settings per channel, and the measurements."""

    def __init__(self, url: str, home: Path, smtp_port: int, inbox: Inbox):
        from anjian.workflow.store.db import Database

        self.url = url
        self.home = home
        self.db = Database(url)
        self.smtp_port = smtp_port
        self.inbox = inbox
        self.runs = 0
        self.expected: dict[str, set[str]] = {}
        self.normal_seconds: dict[str, list[float]] = {}

    def env(self, channel: str, outbox: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
        env.update(ANJIAN_DB=self.url, ANJIAN_HOME=str(self.home), ANJIAN_OUTBOX=str(outbox), ANJIAN_CHANNEL=channel)
        if channel == "smtp":
            env.update(ANJIAN_SMTP_HOST="127.0.0.1", ANJIAN_SMTP_PORT=str(self.smtp_port), ANJIAN_SMTP_SECURITY="none")
        return env

    def setup(self, per_county: int) -> int:
        """Initialize, and give every county `per_county` contacts and the city office two; return the contacts."""
        env = {**self.env("file", self.home / "outbox"), "ANJIAN_NOW": SETUP_NOW}
        self.cli(env, *INIT)  # a drill: every pass runs at --now
        counties = json.loads(self.cli(env, "units", "--level", "county", "--format", "json"))
        lines = ["unit,name,email"]
        for u in counties:
            lines += [f"{u['code']},联系人{i},c{i}-{u['code']}@example.gov.cn" for i in range(1, per_county + 1)]
        lines += ["130800,市安委办,office@cd.gov.cn", "130800,市安委办值班,duty@cd.gov.cn"]
        csv = self.home / "contacts.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.cli(env, "contact", "import", str(csv))
        return len(lines) - 1

    def cli(self, env: dict[str, str], *args: str) -> str:
        r = subprocess.run([sys.executable, "-c", PLAIN, *args], env=env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"anjian {' '.join(args)} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}")
        return r.stdout

    def reset(self, channel: str) -> dict[str, str]:
        """Forget every notice (the pass writes nothing else) and give the run an empty outbox."""
        from sqlalchemy import delete

        from anjian.workflow.store.models import Notice, NoticeContent, NoticeItem

        with self.db.write() as s:
            s.execute(delete(NoticeItem))
            s.execute(delete(NoticeContent))
            s.execute(delete(Notice))
        self.inbox.take()
        self.runs += 1
        outbox = self.home / f"outbox-{self.runs:04d}"
        return self.env(channel, outbox)

    def statuses(self) -> dict[str, tuple[str, bool]]:
        """Each notice's status, and whether it is held as ambiguous."""
        from sqlalchemy import select

        from anjian.workflow.store.models import Notice

        with self.db.read() as s:
            return {i: (st, st == "ambiguous") for i, st in s.execute(select(Notice.id, Notice.status))}

    def delivered(self, channel: str, outbox: Path) -> Counter[str]:
        if channel == "smtp":
            return Counter(self.inbox.take())
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        return Counter(str(BytesHeaderParser().parsebytes(p.read_bytes())["X-Anjian-Notice"]) for p in files)

    def reference(self, channel: str, times: int = 3) -> None:
        """Clean passes: what a pass delivers (the yardstick for lost and duplicated) and how long it takes."""
        seen = []
        for _ in range(times):
            env = self.reset(channel)
            p = Pass(env)
            p.go()
            code, seconds = p.finish()
            if code != 0:
                raise RuntimeError(f"a clean {channel} pass exited {code}: {p.error()}")
            p.proc.stderr.close()
            got = self.delivered(channel, Path(env["ANJIAN_OUTBOX"]))
            if set(got.values()) != {1} or {st for st, _ in self.statuses().values()} != {"sent"}:
                raise RuntimeError(f"a clean {channel} pass did not deliver each notice once: {got}")
            seen.append(set(got))
            self.normal_seconds.setdefault(channel, []).append(seconds)
        if any(s != seen[0] for s in seen):
            raise RuntimeError("clean passes delivered different notices")
        self.expected[channel] = seen[0]

    def named(self, channel: str, point: str) -> Run:
        env = self.reset(channel)
        p = Pass(env, fault=point)
        p.go()
        code, _ = p.finish()
        p.proc.stderr.close()
        run = Run(channel, point, killed=code == -signal.SIGKILL)
        if not run.killed and code != 0:
            run.problems.append(f"the faulted pass exited {code}")
        return self.restart(run, env)

    def random_kill(self, channel: str, rng: random.Random) -> Run:
        env = self.reset(channel)
        delay = rng.uniform(0, statistics.median(self.normal_seconds[channel]))
        p = Pass(env)
        p.go()
        code, _ = p.finish(timeout=delay)  # a bounded wait, ended by the pass finishing or the delay passing
        if code is None:
            code = p.kill()
        else:
            p.proc.stderr.close()
        run = Run(channel, "random", delay_ms=round(delay * 1000, 1), killed=code == -signal.SIGKILL)
        if not run.killed and code != 0:
            run.problems.append(f"the pass exited {code} before the kill")
        return self.restart(run, env)

    def restart(self, run: Run, env: dict[str, str]) -> Run:
        """Run an ordinary pass after the kill and count what reached the recipients."""
        run.left = dict(Counter(st for st, _ in self.statuses().values()))
        r = subprocess.run([sys.executable, "-c", PLAIN, "remind", "--now", NOW], env=env, capture_output=True,
                           text=True, timeout=600)
        run.restart_exit = r.returncode
        if r.returncode != 0:
            run.problems.append(f"restart exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
        outbox = Path(env["ANJIAN_OUTBOX"])
        got = self.delivered(run.channel, outbox)
        expected = self.expected[run.channel]
        notices = self.statuses()
        held = {nid for nid, (_, ambiguous) in notices.items() if ambiguous}
        run.lost = len(expected - set(got) - held)
        dups = {nid: n - 1 for nid, n in got.items() if n > 1}
        strays = [nid for nid in got if nid not in expected]  # a delivery under another id would also be a repeat
        run.duplicated = sum(dups.values()) + sum(got[nid] for nid in strays)
        run.duplicate_ids = sorted(set(dups) | set(strays))
        run.flagged_ids = sorted(nid for nid, (_, ambiguous) in notices.items() if ambiguous)
        run.flagged = len(run.flagged_ids)
        run.unflagged_duplicates = sum(1 for nid in run.duplicate_ids if not notices.get(nid, ("", False))[1])
        run.unfinished = sum(1 for st, _ in notices.values() if st not in ("sent", "ambiguous"))
        run.extra = len(set(notices) - expected)
        run.temporaries = len([p for p in outbox.iterdir() if not p.name.endswith(".eml")]) if outbox.exists() else 0
        if run.flagged:
            listed = json.loads(self.cli(env, "notices", "--status", "ambiguous", "--format", "json"))
            run.listed_flagged = sorted(n["id"] for n in listed)
            run.shown_flagged = self.cli(env, "notices", "--status", "ambiguous").count("未重发")
        run.integrity = self.integrity()
        v = subprocess.run([sys.executable, "-c", PLAIN, "audit", "verify"], env=env, capture_output=True, text=True, timeout=600)
        run.audit_verify = "ok" if v.returncode == 0 else f"exit {v.returncode}: {(v.stderr or v.stdout).strip()[-300:]}"
        return run

    def integrity(self) -> str:
        if not self.url.startswith("sqlite:///"):
            return "n/a"
        with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.db.dispose()


def broken_promises(run: Run) -> list[str]:
    """What in this run breaks the promise of its channel (empty: kept)."""
    out = list(run.problems)
    if run.lost:
        out.append(f"{run.lost} lost")
    if run.channel == "file" and (run.duplicated or run.flagged):
        out.append(f"{run.duplicated} duplicated, {run.flagged} flagged in the file outbox")
    if run.channel != "file":
        if run.duplicated or run.flagged > 1:
            out.append(f"{run.duplicated} duplicated, {run.flagged} held by one kill")
        if run.kill not in (*BEGUN_POINTS, "random") and run.flagged:
            out.append(f"a notice held at {run.kill}, before anything was marked sending")
    if run.listed_flagged != run.flagged_ids or run.shown_flagged != run.flagged:
        out.append(f"flagged {run.flagged_ids}, but `anjian notices` lists {run.listed_flagged} and shows {run.shown_flagged}")
    if run.unfinished or run.extra:
        out.append(f"{run.unfinished} notices not sent, {run.extra} unexpected notices after the restart")
    if run.integrity not in ("ok", "n/a"):
        out.append(f"integrity_check: {run.integrity}")
    if run.audit_verify != "ok":
        out.append(f"audit verify: {run.audit_verify}")
    return out


def sweep(url: str, home: Path, random_kills: int = 100, per_county: int = 3, seed: int = 2014,
          channels: tuple[str, ...] = CHANNELS, points: tuple[str, ...] | None = None, references: int = 3) -> dict:
    """The whole sweep on one empty database; returns the figures (see `summarize`) and every run."""
    from anjian.notifications.faults import POINTS

    rng = random.Random(seed)
    with smtp_server() as (port, inbox):
        s = Sweep(url, home, port, inbox)
        try:
            contacts = s.setup(per_county)
            runs: list[Run] = []
            for channel in channels:
                s.reference(channel, references)
                runs += [s.named(channel, point) for point in (POINTS if points is None else points)]
                runs += [s.random_kill(channel, rng) for _ in range(random_kills)]
        finally:
            s.close()
    return {"contacts": contacts, "notices_per_pass": {c: len(s.expected[c]) for c in channels},
            "normal_pass_ms": {c: round(statistics.median(t) * 1000) for c, t in s.normal_seconds.items()},
            "seed": seed, "rows": summarize(runs), "runs": [{**asdict(r), "broken": broken_promises(r)} for r in runs]}


def summarize(runs: list[Run]) -> list[dict]:
    """One row per (channel, fault point) and one per channel for the random kills."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.channel, r.kill), []).append(r)
    rows = []
    for (channel, kill), rs in groups.items():
        rows.append({"channel": channel, "kill": kill, "runs": len(rs), "killed": sum(r.killed for r in rs),
                     "lost": sum(r.lost for r in rs), "duplicated": sum(r.duplicated for r in rs),
                     "max_dup_per_kill": max(r.duplicated for r in rs), "flagged": sum(r.flagged for r in rs),
                     "unflagged_dups": sum(r.unflagged_duplicates for r in rs),
                     "integrity_ok": sum(r.integrity in ("ok", "n/a") for r in rs), "verify_ok": sum(r.audit_verify == "ok" for r in rs),
                     "broken": sum(1 for r in rs if broken_promises(r))})
    return rows


HEADERS = ("channel", "kill", "runs", "killed", "lost", "duplicated", "max dup/kill", "held", "unheld dup",
           "integrity ok", "verify ok", "broken")


def table(rows: list[dict]) -> str:
    body = [[r["channel"], r["kill"], r["runs"], r["killed"], r["lost"], r["duplicated"], r["max_dup_per_kill"], r["flagged"],
             r["unflagged_dups"], f"{r['integrity_ok']}/{r['runs']}", f"{r['verify_ok']}/{r['runs']}", r["broken"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(HEADERS, *body, strict=False)]
    lines = ["  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)) for row in [HEADERS, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random", type=int, default=100, help="random kill times per channel")
    ap.add_argument("--per-county", type=int, default=3, help="e-mail contacts per county (each one notice)")
    ap.add_argument("--seed", type=int, default=2014)
    ap.add_argument("--channel", action="append", choices=CHANNELS, help="only this channel (repeatable)")
    ap.add_argument("--db", metavar="URL", help="an empty database (SQLite file or PostgreSQL); default: a temporary SQLite file")
    ap.add_argument("--outboxes", type=int, choices=(1, 2), default=1,
                    help="2: kill passes writing to one outbox, finished by another's (benchmarks/outboxes.py)")
    ap.add_argument("--chunk", type=int, default=10, help="with --outboxes 2: notices claimed at a time")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.outboxes == 2:
        return _main_outboxes(args)
    with tempfile.TemporaryDirectory(prefix="anjian-faults-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'faults.db'}"
        print(f"sweeping on {url.split('@')[-1]} …", file=sys.stderr, flush=True)
        result = sweep(url, Path(tmp) / "home", args.random, args.per_county, args.seed, tuple(args.channel or CHANNELS))
    print(f"notices per pass: {result['notices_per_pass']}; normal pass (ms): {result['normal_pass_ms']}; seed {args.seed}")
    print(table(result["rows"]))
    for r in result["runs"]:
        if r["broken"]:
            print(f"  {r['channel']} {r['kill']} delay={r['delay_ms']}ms: {'; '.join(r['broken'])}")
    _write(args.out or RESULTS, result)
    return 0 if not any(r["broken"] for r in result["rows"]) else 1


def _main_outboxes(args: argparse.Namespace) -> int:
    if not __package__:  # run as `python benchmarks/faults.py`: its sibling is imported as part of the package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.outboxes import cross_sweep, report

    results = []
    with tempfile.TemporaryDirectory(prefix="anjian-outboxes-") as tmp:
        for channel in args.channel or ("file",):
            url = args.db or f"sqlite:///{Path(tmp) / f'outboxes-{channel}.db'}"
            print(f"two {channel} outboxes on {url.split('@')[-1]} …", file=sys.stderr, flush=True)
            result = cross_sweep(url, Path(tmp) / f"home-{channel}", args.random, args.per_county, args.seed, channel, args.chunk)
            print(report(result))
            for r in result["rounds"]:
                if r["broken"]:
                    print(f"  round {r['index']} (killed on {r['killed_on']} at {r['kill']} {r['delay_ms'] or r['skip']}): "
                          f"{'; '.join(r['broken'])}")
            results.append(result)
            if args.db and len(args.channel or ()) > 1:
                raise SystemExit("--db takes one --channel at a time: each sweep needs an empty database")
    _write(args.out or RESULTS.with_name("faults-outboxes.json"), {"sweeps": results})
    return 0 if not any(r["summary"]["broken"] for r in results) else 1


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "now": NOW, **result},
                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    sys.exit(main())
