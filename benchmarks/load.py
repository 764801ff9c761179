"""Fifty officials at once on one `anjian serve`, for a minute, on SQLite and on PostgreSQL.

The officials are 25 township station chiefs and 25 city inspectors, in pairs, each pair on a township of
its own (started, its checklist complete). Through the JSON API with their own tokens, each chief loops
`show` → `record` (one text item, a new value each time) → `advance` (apply, or resubmit after a rejection)
and each inspector loops `show` → `advance reject` (with an opinion) when the township waits for them.
So every request is a real read or a real write of the campaign, and none is refused by design.

Per engine it prints requests per second, the p50/p95/p99 latency of `show`, `record` and `advance`,
the errors (any answer that is not 2xx, or a transport error: target 0), and `anjian audit verify`
afterwards (intact). Beside them, the anchor measured in the same run: one chief and one inspector alone,
one request at a time, for 10 s — the same operations unloaded. Quote the ratio of the loaded median to
the anchor's median; these machines are noisy.

    python benchmarks/load.py [--officials 50] [--seconds 60] [--peers 1] [--db URL]...

`--db` may be repeated; by default an SQLite file in a temporary folder, plus PostgreSQL when
ANJIAN_TEST_PG (or --pg) names a server (a scratch database is created and dropped). The service is the
real `anjian serve --no-scheduler` as a subprocess on a free loopback port. Writes
benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "load.json"
OPS = ("show", "record", "advance")


@dataclass
class Tally:
    """Latencies (seconds) per operation, and errors, of one phase."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.seconds.values())

    def quantiles(self, op: str) -> dict[str, float | None]:
        xs = sorted(self.seconds[op])
        if not xs:
            return {"n": 0, "p50": None, "p95": None, "p99": None}

        def q(p: float) -> float:
            return round(1000 * xs[min(len(xs) - 1, int(p * len(xs)))], 1)

        return {"n": len(xs), "p50": round(1000 * statistics.median(xs), 1), "p95": q(0.95), "p99": q(0.99)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def anjian(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["anjian", *args], env=env, capture_output=True, text=True, input=input)


def prepare(url: str, home: Path, pairs: int) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """A live database with `pairs` townships started and complete, a chief and an inspector for each,
    and a token for every one of them. Returns the environment and (township, chief token, inspector token)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sqlalchemy import select
    from support import add_officials, record_checklist

    from anjian.workflow.services import credentials
    from anjian.workflow.services.advance import advance
    from anjian.workflow.services.registry import initialize
    from anjian.workflow.store.db import Database
    from anjian.workflow.store.models import Unit, UnitCohort

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJIAN_")}
    env.update({"ANJIAN_DB": url, "ANJIAN_HOME": str(home), "ANJIAN_LANG": "zh"})
    now = dt.datetime.now(dt.UTC)
    db = Database(url)
    initialize(db, None, None, now, "admin")
    with db.read() as session:
        towns = list(session.scalars(select(Unit.code).where(Unit.level == "township").order_by(Unit.code)))[:pairs]
        cohorts = {c: frozenset(session.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == c)))
                   for c in towns}
    add_officials(db, {f"chief{i:02d}": ("township_chief", code) for i, code in enumerate(towns)}
                  | {f"inspector{i:02d}": ("city_inspector", "130800") for i in range(len(towns))})
    out = []
    for i, code in enumerate(towns):
        chief, inspector = f"chief{i:02d}", f"inspector{i:02d}"
        now = dt.datetime.now(dt.UTC)
        advance(db, code, "start", chief, now)
        record_checklist(db, code, cohorts[code], actor=chief, now=now)
        out.append((code, credentials.issue(db, chief, "admin", now).secret,
                    credentials.issue(db, inspector, "admin", now).secret))
    db.dispose()
    return env, out


@contextmanager
def serving(env: dict[str, str]):
    """`anjian serve --no-scheduler` on a free loopback port, until the block ends (SIGTERM)."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["anjian", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                                env=env, stdout=log, stderr=log)
        yield from _until_ready(proc, log, f"http://127.0.0.1:{port}")


def _until_ready(proc, log, base: str):
    import httpx

    try:
        for _ in range(600):
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"anjian serve exited {proc.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def chief(client, code: str, token: str, until: float, tally: Tally, n: list[int]) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        state = await op(client, tally, "show", "GET", "/api/v1/show", auth, params={"unit": code})
        if state is None:
            continue
        n[0] += 1
        await op(client, tally, "record", "POST", "/api/v1/record", auth,
                 json={"unit": code, "value": [f"ledger.documents=经办人{n[0]}"]})
        trigger = {"building": "apply", "rectifying": "resubmit"}.get(state.get("state"))
        if trigger:
            await op(client, tally, "advance", "POST", "/api/v1/advance", auth, json={"unit": code, "trigger": trigger})


async def inspector(client, code: str, token: str, until: float, tally: Tally) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        state = await op(client, tally, "show", "GET", "/api/v1/show", auth, params={"unit": code})
        if state is not None and state.get("state") == "applied":
            await op(client, tally, "advance", "POST", "/api/v1/advance", auth,
                     json={"unit": code, "trigger": "reject", "note": "台账不全，请补充后重新申请"})
        else:
            await asyncio.sleep(0.05)  # the chief's turn: an inspector does not poll in a tight loop


async def op(client, tally: Tally, name: str, method: str, path: str, headers: dict, **kw) -> dict | None:
    import httpx

    t = time.perf_counter()
    try:
        r = await client.request(method, path, headers=headers, **kw)
    except httpx.HTTPError as exc:
        tally.errors.append(f"{name}: {exc.__class__.__name__}: {exc}")
        return None
    tally.seconds[name].append(time.perf_counter() - t)
    if r.status_code // 100 != 2:
        tally.errors.append(f"{name}: HTTP {r.status_code} {r.text[:200]}")
        return None
    return r.json() if name == "show" else {}


async def phase(bases: list[str], pairs: list[tuple[str, str, str]], seconds: float) -> Tally:
    """Each pair of officials on one service of `bases` (round robin: peers share the officials)."""
    import httpx

    tally = Tally()
    limits = httpx.Limits(max_connections=2 * len(pairs) + 10, max_keepalive_connections=2 * len(pairs) + 10)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=b, timeout=120, limits=limits))
                   for b in bases]
        start = time.monotonic()
        until = start + seconds
        tasks = []
        for i, (code, chief_token, inspector_token) in enumerate(pairs):
            client = clients[i % len(clients)]
            tasks.append(chief(client, code, chief_token, until, tally, [0]))
            tasks.append(inspector(client, code, inspector_token, until, tally))
        await asyncio.gather(*tasks)
        tally.wall = time.monotonic() - start
    return tally


def run_engine(url: str, officials: int, seconds: float, folder: Path, peers: int = 1) -> dict:
    pairs = officials // 2
    env, towns = prepare(url, folder / "home", pairs + 1)
    with ExitStack() as stack:
        bases = [stack.enter_context(serving(env)) for _ in range(peers)]
        anchor = asyncio.run(phase(bases[:1], towns[-1:], 10.0))
        loaded = asyncio.run(phase(bases, towns[:pairs], seconds))
    verify = anjian(env, "audit", "verify")
    return {
        "engine": url.split(":", 1)[0].split("+")[0],
        "peers": peers,
        "officials": 2 * pairs,
        "seconds": round(loaded.wall, 1),
        "requests": loaded.requests,
        "rps": round(loaded.requests / loaded.wall, 1),
        "ops": {op: loaded.quantiles(op) for op in OPS},
        "errors": len(loaded.errors),
        "error_samples": loaded.errors[:5],
        "anchor": {"rps": round(anchor.requests / anchor.wall, 1), "ops": {op: anchor.quantiles(op) for op in OPS},
                   "errors": len(anchor.errors)},
        "audit_verify": {"exit": verify.returncode, "output": (verify.stdout + verify.stderr).strip()[-400:]},
    }


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        served = f", {r['peers']} serve processes (peers)" if r.get("peers", 1) > 1 else ""
        lines.append(f"== {r['engine']}{served}: {r['officials']} officials for {r['seconds']} s: {r['requests']} requests, "
                     f"{r['rps']} per second, errors {r['errors']}")
        lines.append(f"   {'op':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   anchor p50 ms  loaded/anchor p50")
        for op_name in OPS:
            q, a = r["ops"][op_name], r["anchor"]["ops"][op_name]
            ratio = f"{q['p50'] / a['p50']:.1f}x" if q["p50"] and a["p50"] else "—"
            lines.append(f"   {op_name:<8} {q['n']:>6} {q['p50'] or '—':>8} {q['p95'] or '—':>8} {q['p99'] or '—':>8}"
                         f"   {a['p50'] or '—':>13}  {ratio:>17}")
        lines.append(f"   anchor: one chief and one inspector alone, {r['anchor']['rps']} requests per second")
        intact = "intact" if r["audit_verify"]["exit"] == 0 else f"FAILED (exit {r['audit_verify']['exit']})"
        lines.append(f"   audit verify afterwards: {intact}")
        for e in r["error_samples"]:
            lines.append(f"   error: {e}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officials", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--peers", type=int, default=1, help="serve processes on the database, officials shared "
                                                             "among them (on 2 cores, try 2)")
    parser.add_argument("--db", action="append", default=[])
    parser.add_argument("--pg", default=os.environ.get("ANJIAN_TEST_PG"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    results = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = list(args.db) or [f"sqlite:///{folder / 'sqlite' / 'anjian.db'}"]
        if not args.db and args.pg:
            from benchmarks.pg import scratch_database

            urls.append(stack.enter_context(scratch_database(args.pg, prefix="anjian_load")))
        for i, url in enumerate(urls):
            sub = folder / f"e{i}"
            sub.mkdir()
            if url.startswith("sqlite:///"):
                Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            results.append(run_engine(url, args.officials, args.seconds, sub, args.peers))
            print(report(results[-1:]), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "results": results},
                                  ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    bad = any(r["errors"] or r["audit_verify"]["exit"] != 0 for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
