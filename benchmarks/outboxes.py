"""Exactly once across outboxes: a pass writing to one outbox is killed (SIGKILL) at a seeded random
moment, then a pass writing to the other outbox finishes what it left — two outbox folders, as two
machines would have, or two SMTP servers — and then a pass of the first outbox again. Rounds alternate
which outbox is killed. Each kill is at a seeded random moment (`draw_kill`): a delay within a clean pass's run time, or a
fault point after a random number of passes through it. Counted across both outboxes by notice id (the X-Anjian-Notice header):

- duplicated: deliveries beyond one per notice id (the promise: 0, after either pass);
- held: notices the other outbox's pass found begun in the killed one and marked ambiguous, not sent;
- lost: planned notices neither delivered nor held (the promise: 0);
- held after own: what is still held once the killed outbox's own pass has run (a file outbox can look
  in its folder, so 0 for files; SMTP cannot, so those wait for `anjian notices settle`).

Run by `python benchmarks/faults.py --outboxes 2 [--random 100] [--channel file|smtp] [--db URL]`.
"""

from __future__ import annotations

import json
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.faults import NOW, PLAIN, Pass, Sweep, smtp_server


@dataclass
class Round:
    """One kill on one outbox, finished by the other, then by its own."""

    index: int
    killed_on: str
    kill: str  # "delay" (after delay_ms), or the fault point it was killed at, after passing it `skip` times
    delay_ms: float | None = None
    skip: int = 0
    killed: bool = False
    planned: int = 0
    left: dict[str, int] = field(default_factory=dict)  # statuses right after the kill
    sent_by_other: int = 0
    held: int = 0  # ambiguous after the other outbox's pass
    listed: int = 0  # of those, listed by `anjian notices --status ambiguous`
    duplicated: int = 0  # across both outboxes, after either pass
    lost: int = 0
    held_after_own: int = 0
    unfinished: int = 0  # neither sent nor held after both passes
    temporaries: int = 0  # temporary files left in either folder after both passes
    problems: list[str] = field(default_factory=list)


class Machines:
    """Two outboxes ("a" and "b") on one database: two folders, or two SMTP servers."""

    def __init__(self, sweep: Sweep, channel: str, inboxes: dict, chunk: int):
        self.s, self.channel, self.inboxes, self.chunk = sweep, channel, inboxes, chunk
        self.round = 0
        from anjian.workflow.clock import parse_time

        self.now = parse_time(NOW)
        self.received: Counter[str] = Counter()  # SMTP messages this round, across both servers

    def folder(self, name: str) -> Path:
        return self.s.home / f"round-{self.round:04d}" / f"outbox-{name}"

    def env(self, name: str) -> dict[str, str]:
        env = {**self.s.env(self.channel, self.folder(name)), "ANJIAN_REMIND_CHUNK": str(self.chunk)}
        if self.channel == "smtp":
            env["ANJIAN_SMTP_PORT"] = str(self.inboxes[name][0])
        return env

    def reset(self) -> None:
        """Forget every notice; the next round writes to new folders."""
        self.s.reset(self.channel)
        for _, inbox in self.inboxes.values():
            inbox.take()
        self.received = Counter()
        self.round += 1

    def delivered(self) -> Counter[str]:
        """Deliveries per notice id so far this round, across both outboxes."""
        if self.channel == "smtp":
            for _, inbox in self.inboxes.values():
                self.received.update(inbox.take())
            return Counter(self.received)
        got: Counter[str] = Counter()
        for name in self.inboxes:
            got.update(self.s.delivered("file", self.folder(name)))
        return got

    def remind(self, name: str) -> None:
        """An ordinary pass on outbox `name`, in this process (what a process of its own would do, without
        a loaded machine's seconds of starting Python: only the killed passes need processes of their own)."""
        from anjian.workflow.reminders.run import run_pass
        from anjian.workflow.settings import NotifySettings, PassTuning

        smtp = {"channel": "smtp", "smtp_host": "127.0.0.1", "smtp_port": self.inboxes[name][0]} if self.channel == "smtp" else {}
        settings = NotifySettings(**smtp, tuning=PassTuning(str(self.chunk)))
        run_pass(self.s.db, self.now, settings, self.folder(name))

    def clean_pass(self) -> tuple[set[str], float]:
        """What a clean pass delivers, and how long it takes."""
        self.reset()
        p = Pass(self.env("a"))
        p.go()
        code, seconds = p.finish()
        p.proc.stderr.close()
        got = self.delivered()
        if code != 0 or set(got.values()) != {1}:
            raise RuntimeError(f"a clean pass exited {code} and delivered {got}")
        return set(got), seconds


PER_NOTICE = ("during_write", "before_rename", "after_send")  # fault points passed once per file written


def draw_kill(rng: random.Random, normal: float, notices: int, chunk: int) -> tuple[str, float | None, int]:
    """A seeded random moment: half the time a delay within a clean pass's run time, half the time a
    fault point after a random number of passes through it (a moment in the pass's progress, which
    a loaded machine's timing cannot push past the writing)."""
    if rng.random() < 0.5:
        return "delay", rng.uniform(0, normal), 0
    point = rng.choice(("after_claim", "after_begin", *PER_NOTICE))
    times = notices if point in PER_NOTICE else -(-notices // chunk)
    return point, None, rng.randrange(times)


def one_round(m: Machines, index: int, expected: set[str], kill: tuple[str, float | None, int]) -> Round:
    """Kill a pass on one outbox at `kill` (see `draw_kill`), finish with the other's, then with its own."""
    m.reset()
    mine, other = ("a", "b") if index % 2 == 0 else ("b", "a")
    how, delay, skip = kill
    r = Round(index, mine, how, None if delay is None else round(delay * 1000, 1), skip, planned=len(expected))
    if how == "delay":
        p = Pass(m.env(mine))
    else:
        p = Pass({**m.env(mine), "ANJIAN_FAULT_SKIP": str(skip)}, fault=how)
    p.go()
    code, _ = p.finish(timeout=delay)
    if code is None:
        code = p.kill()
    else:
        p.proc.stderr.close()
    r.killed = code == -signal.SIGKILL
    if not r.killed and code != 0:
        r.problems.append(f"the pass exited {code} before the kill")
    r.left = dict(Counter(st for st, _ in m.s.statuses().values()))
    m.remind(other)
    got = m.delivered()
    statuses = m.s.statuses()
    held = {nid for nid, (st, _) in statuses.items() if st == "ambiguous"}
    r.held = len(held)
    r.sent_by_other = sum(1 for st, _ in statuses.values() if st == "sent") - r.left.get("sent", 0)
    if held:
        listed = json.loads(m.s.cli(m.env(other), "notices", "--status", "ambiguous", "--format", "json"))
        r.listed = len({n["id"] for n in listed} & held)
    m.remind(mine)
    got = m.delivered()
    statuses = m.s.statuses()
    held = {nid for nid, (st, _) in statuses.items() if st == "ambiguous"}
    r.duplicated = sum(n - 1 for n in got.values() if n > 1) + sum(got[nid] for nid in got if nid not in expected)
    r.lost = len(expected - set(got) - held)
    r.held_after_own = len(held)
    r.unfinished = sum(1 for st, _ in statuses.values() if st not in ("sent", "ambiguous"))
    r.temporaries = sum(len(list(m.folder(n).glob(".*.tmp"))) for n in ("a", "b") if m.folder(n).exists())
    return r


def broken(r: Round, channel: str) -> list[str]:
    out = list(r.problems)
    if r.duplicated or r.lost or r.unfinished:
        out.append(f"{r.duplicated} duplicated, {r.lost} lost, {r.unfinished} unfinished")
    if r.listed != r.held:
        out.append(f"{r.held} held but {r.listed} listed by `anjian notices --status ambiguous`")
    if channel == "file" and (r.held_after_own or r.temporaries):
        out.append(f"{r.held_after_own} still held and {r.temporaries} temporary files after the outbox's own pass")
    return out


def cross_sweep(url: str, home: Path, kills: int = 100, per_county: int = 3, seed: int = 2014, channel: str = "file",
                chunk: int = 10) -> dict:
    """The sweep across two outboxes on one empty database (`chunk` notices claimed at a time, so that a
    pass hands several batches to its writer); returns the figures and every round."""
    rng = random.Random(seed)
    started = time.perf_counter()
    with ExitStack() as stack:
        inboxes = {name: stack.enter_context(smtp_server()) for name in ("a", "b")}
        s = Sweep(url, home, inboxes["a"][0], inboxes["a"][1])
        stack.callback(s.close)
        contacts = s.setup(per_county)
        m = Machines(s, channel, inboxes, chunk)
        expected, seconds = set(), []
        for _ in range(3):
            expected, took = m.clean_pass()
            seconds.append(took)
        normal = statistics.median(seconds)
        rounds = [one_round(m, i, expected, draw_kill(rng, normal, len(expected), chunk)) for i in range(kills)]
        verify = subprocess.run([sys.executable, "-c", PLAIN, "audit", "verify"], env=m.env("a"), capture_output=True,
                                text=True, timeout=600)
    summary = {"channel": channel, "kills": kills, "killed": sum(r.killed for r in rounds), "notices": len(expected),
               "at_points": sum(r.kill != "delay" for r in rounds),
               "planned": sum(r.planned for r in rounds), "left_sending": sum(r.left.get("sending", 0) for r in rounds),
               "sent_by_other": sum(r.sent_by_other for r in rounds), "held": sum(r.held for r in rounds),
               "duplicated": sum(r.duplicated for r in rounds), "lost": sum(r.lost for r in rounds),
               "held_after_own": sum(r.held_after_own for r in rounds), "broken": sum(1 for r in rounds if broken(r, channel)),
               "normal_pass_ms": round(normal * 1000), "seconds": round(time.perf_counter() - started, 1),
               "audit_verify": "ok" if verify.returncode == 0 else (verify.stderr or verify.stdout).strip()[-300:]}
    return {"contacts": contacts, "seed": seed, "chunk": chunk, "summary": summary,
            "rounds": [{**asdict(r), "broken": broken(r, channel)} for r in rounds]}


def report(result: dict) -> str:
    s = result["summary"]
    return "\n".join([
        f"two {s['channel']} outboxes, seed {result['seed']}, {s['notices']} notices a pass, claimed {result['chunk']} at a time;"
        f" a clean pass {s['normal_pass_ms']} ms",
        f"kills: {s['kills']} (SIGKILL landed in {s['killed']}; the rest finished first), "
        f"{s['at_points']} of them at a fault point after a random count",
        f"notices planned: {s['planned']}; left sending at the kill: {s['left_sending']}; "
        f"sent by the other outbox's pass: {s['sent_by_other']}",
        f"duplicates (sent twice across both outboxes): {s['duplicated']}",
        f"ambiguous (held by the other outbox's pass, not resent): {s['held']}; "
        f"still held after the killed outbox's own pass: {s['held_after_own']}",
        f"lost: {s['lost']}; rounds breaking a promise: {s['broken']}; audit verify: {s['audit_verify']}",
        f"time: {s['seconds']} s",
    ])
