"""The web's pages on the national registry (44,700 units), each timed beside an anchor taken in the same run.

    python benchmarks/pages.py [--n 30] [--registry china|chengde|FILE.csv] [--db URL]
                               [--page WHO=PATH]... [--out benchmarks/results/pages.json]

It loads the registry into a fresh SQLite file (or `--db URL`: an existing database is reused as it is,
so a second run skips the minute of loading), puts a few townships of 宽城 in building and applied (so
that the queue and the county have something to show), gives four officials a password — a township
chief (峪耳崖镇), a county official (宽城), a city inspector and the city office — serves the app
in-process (tests/support_server.serving: uvicorn on loopback, the real middleware) and signs each in
through the real /login form.

Then, `--n` rounds, each page once per round as its official, and the anchor once per round:
`GET /healthz` (the same server, middleware and connection with no page work: what any answer costs).
Per page it prints the status, the client's time p50/p95 (ms, a kept-alive connection), the app's own
time p50 from the `Server-Timing: app;dur=…` header (server/observe: the route and the template, up to
the answer's start), the HTML's size and its gzip size (level 6, what a proxy would send), and the
ratio of the page's client p50 to the anchor's p50. A page that answers 404 has not landed on this
branch yet: it is printed as such. These machines are noisy (two shared cores): quote the ratios and
medians, not one request. Writes the figures as JSON to --out.

Pages are given as `WHO=PATH` (WHO: chief, county, inspector, office, or `-` for no session); in PATH,
{township}, {county} and {city} are the officials' units. The default is every page of the web.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support (officials, a complete checklist), support_server (serving)

RESULTS = ROOT / "benchmarks" / "results" / "pages.json"
TOWNSHIP, COUNTY, CITY = "130827102", "130827", "130800"  # 宽城峪耳崖镇, 宽城满族自治县, 承德市
OFFICIALS = {  # who → (name, role, unit)
    "chief": ("chief_yuerya", "township_chief", TOWNSHIP),
    "county": ("li", "county_official", COUNTY),
    "inspector": ("wang", "city_inspector", CITY),
    "office": ("office", "city_office", CITY),
}
PAGES = ("chief=/", "county=/", "inspector=/", "office=/", "chief=/units/{township}", "county=/units/{county}",
         "office=/units/{city}", "inspector=/queue", "office=/dashboard", "office=/history", "office=/officials",
         "-=/login")
PASSWORD = "bench-password-1"
# 宽城's townships put in motion before the run: building (started, checklist complete) and applied.
BUILDING = ("130827100", "130827101", "130827103")
APPLIED = ("130827104", "130827105", "130827106", "130827107")


@dataclass
class Figures:
    who: str
    page: str
    status: list[int] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    app_ms: list[float] = field(default_factory=list)
    html_bytes: int = 0
    gzip_bytes: int = 0

    def row(self, anchor_p50: float) -> dict:
        p50 = statistics.median(self.client_ms)
        return {"who": self.who, "page": self.page, "status": sorted(set(self.status)), "n": len(self.client_ms),
                "client_p50_ms": round(p50, 1), "client_p95_ms": round(quantile(self.client_ms, 0.95), 1),
                "app_p50_ms": round(statistics.median(self.app_ms), 1) if self.app_ms else None,
                "app_p95_ms": round(quantile(self.app_ms, 0.95), 1) if self.app_ms else None,
                "html_bytes": self.html_bytes, "gzip_bytes": self.gzip_bytes,
                "ratio_to_anchor": round(p50 / anchor_p50, 1) if anchor_p50 else None}


def quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def registry_file(name: str) -> str | None:
    """The registry to load: `chengde` (built in, for a quick try), a CSV, or `china`: the national file
    in shared/data beside the checkout (or above it)."""
    if name == "chengde":
        return None
    if name != "china":
        return name
    for folder in [ROOT, *ROOT.parents]:
        candidate = folder / "shared" / "data" / "china-divisions.csv"
        if candidate.exists():
            return str(candidate)
    raise SystemExit("shared/data/china-divisions.csv not found beside the checkout: give --registry FILE.csv")


def prepare(db, registry: str | None) -> None:
    """Load the registry (unless there), add the officials and their passwords, and set a few of 宽城's
    townships in motion, all at the real clock (a live database)."""
    from sqlalchemy import func, select
    from support import add_officials, record_checklist

    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services import credentials
    from anjian.workflow.services.advance import advance
    from anjian.workflow.services.officials import os_login
    from anjian.workflow.services.registry import initialize
    from anjian.workflow.store.models import Unit

    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    initialize(db, registry, None, now, "admin")
    with db.read() as session:
        units = session.scalar(select(func.count()).select_from(Unit))
    print(f"registry ready: {units:,} units ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    add_officials(db, {name: (role, unit) for name, role, unit in OFFICIALS.values()})
    admin = Actor(os_login(), "admin", CITY)
    for name, _role, _unit in OFFICIALS.values():
        now = dt.datetime.now(dt.UTC)
        credentials.set_password(db, admin, name, PASSWORD + "-first", now)
        credentials.change_password(db, name, PASSWORD + "-first", PASSWORD, now, "127.0.0.1")
    with db.read() as session:
        states = {c: session.scalar(select(Unit.state).where(Unit.code == c)) for c in BUILDING + APPLIED}
    for code in BUILDING + APPLIED:
        if states[code] != "not_started":
            continue  # a reused database: already in motion
        now = dt.datetime.now(dt.UTC)
        advance(db, code, "start", "office", now)
        record_checklist(db, code, actor="office", now=now)
        if code in APPLIED:
            advance(db, code, "apply", "office", dt.datetime.now(dt.UTC))


def signed_in(base_url: str, name: str | None):
    """An httpx client (kept-alive connection) with `name`'s web session from the /login form."""
    import httpx

    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=120)
    if name is None:
        return client
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    if r.status_code != 303 or r.headers["location"] != "/":
        raise SystemExit(f"{name} could not sign in: {r.status_code} {r.text[:300]}")
    return client


def timed(client, path: str) -> tuple[int, float, float | None, bytes]:
    """(status, client ms, app ms from Server-Timing or None, body)."""
    start = time.perf_counter()
    r = client.get(path)
    body = r.content
    took = (time.perf_counter() - start) * 1000
    found = re.search(r"app;dur=([0-9.]+)", r.headers.get("server-timing", ""))
    return r.status_code, took, float(found.group(1)) if found else None, body


def measure(base_url: str, pages: list[tuple[str, str]], rounds: int) -> tuple[list[Figures], Figures]:
    units = {"township": TOWNSHIP, "county": COUNTY, "city": CITY}
    with ExitStack() as stack:
        clients = {who: signed_in(base_url, OFFICIALS[who][0] if who != "-" else None)
                   for who in dict.fromkeys(w for w, _p in pages)}
        anchor_client = signed_in(base_url, None)
        for client in [*clients.values(), anchor_client]:
            stack.callback(client.close)
        figures = [Figures(who, path.format(**units)) for who, path in pages]
        anchor = Figures("-", "/healthz")
        for f in figures + [anchor]:  # one warm-up each: templates compiled, caches filled
            timed(clients.get(f.who, anchor_client), f.page)
        for _ in range(rounds):
            for f in figures + [anchor]:
                status, took, app, body = timed(clients.get(f.who, anchor_client), f.page)
                f.status.append(status)
                f.client_ms.append(took)
                if app is not None:
                    f.app_ms.append(app)
                f.html_bytes, f.gzip_bytes = len(body), len(gzip.compress(body, 6))
    return figures, anchor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="rounds: each page requested this many times (default 30)")
    ap.add_argument("--registry", default="china", help="china (default), chengde (quick), or a CSV file")
    ap.add_argument("--db", help="an SQLAlchemy URL (default: a new SQLite file in a temporary folder)")
    ap.add_argument("--page", action="append", metavar="WHO=PATH", help="a page to time (repeatable); "
                    f"default: {' '.join(PAGES)}")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    pages = [tuple(p.split("=", 1)) for p in (args.page or PAGES)]
    if any(who not in OFFICIALS and who != "-" for who, _p in pages):
        raise SystemExit(f"WHO is one of {', '.join(OFFICIALS)} or -")

    from support_server import serving

    from anjian.workflow.settings import resolve
    from anjian.workflow.store.db import Database

    with tempfile.TemporaryDirectory(prefix="anjian-pages-") as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'anjian.db'}"
        db = Database(url)
        try:
            prepare(db, registry_file(args.registry))
            settings = resolve(url, env={"ANJIAN_HOME": str(Path(folder) / "home")})
            with serving(db, settings) as served:
                figures, anchor = measure(served.url, pages, args.n)
        finally:
            db.dispose()
    anchor_p50 = statistics.median(anchor.client_ms)
    rows = [f.row(anchor_p50) for f in figures]
    report(rows, anchor.row(anchor_p50), args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                    "machine": platform.platform(), "python": platform.python_version(),
                                    "registry": args.registry, "rounds": args.n, "anchor": anchor.row(anchor_p50),
                                    "pages": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nwritten to {args.out}")


def report(rows: list[dict], anchor: dict, args) -> None:
    print(f"\n{args.n} rounds on the {args.registry} registry; anchor GET /healthz: p50 {anchor['client_p50_ms']} ms, "
          f"p95 {anchor['client_p95_ms']} ms (app {anchor['app_p50_ms']} ms)\n")
    head = f"{'who':<10}{'page':<22}{'status':>7}{'p50 ms':>9}{'p95 ms':>9}{'app p50':>9}{'app p95':>9}" \
           f"{'HTML B':>9}{'gzip B':>8}{'× anchor':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        status = "/".join(map(str, r["status"]))
        if r["status"] == [404]:
            print(f"{r['who']:<10}{r['page']:<22}{'404':>7}   not on this branch yet")
            continue
        app50 = "-" if r["app_p50_ms"] is None else r["app_p50_ms"]
        app95 = "-" if r["app_p95_ms"] is None else r["app_p95_ms"]
        print(f"{r['who']:<10}{r['page']:<22}{status:>7}{r['client_p50_ms']:>9}{r['client_p95_ms']:>9}{app50:>9}"
              f"{app95:>9}{r['html_bytes']:>9,}{r['gzip_bytes']:>8,}{r['ratio_to_anchor']:>10}")


if __name__ == "__main__":
    main()
