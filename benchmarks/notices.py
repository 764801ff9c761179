"""Building and rendering 44,000 typical notices (a national pass's e-mails) both ways, to keep the
figures quoted beside `mail.message_bytes` and `render.environment` honest.

    python benchmarks/notices.py [--count 44000]

Prints the time of: the e-mail package's message (`mail.build_message(...).as_bytes()`) against the
outbox's fast path (`mail.message_bytes`), and `Template.render` with and without Jinja2's default
globals (the notice environment has none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from anjian.notifications import mail, render
from anjian.notifications.outgoing import Outgoing

TODAY = dt.date(2016, 12, 1)
NOW = dt.datetime(2016, 12, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
LINES = [render.NoticeLine("130827102", "承德市宽城满族自治县峪耳崖镇", "key_compliance", "重点乡镇全部达到规范化水平",
                           dt.date(2015, 12, 31), "o+336", "overdue", 336),
         render.NoticeLine("130827", "承德市宽城满族自治县", "full_coverage", "全部乡镇达到规范化水平",
                           dt.date(2016, 12, 31), "d-30", "reminder", 30)]
PARTS = ("subject", "text", "html")


def contexts(n: int) -> list[dict]:
    return [render.context(f"20161201-{i:016x}", "overdue", "李科长", f"承德市宽城满族自治县某镇{i}", LINES,
                           "承德市乡镇安全监管规范化建设", "承德市安全生产委员会办公室", TODAY, "zh") for i in range(n)]


def timed(label: str, fn, items) -> float:
    fn(items[0])
    start = time.perf_counter()
    for x in items:
        fn(x)
    took = time.perf_counter() - start
    print(f"{label:<48} {took:7.2f} s  ({took / len(items) * 1e6:,.0f} µs each)")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=44_000)
    n = ap.parse_args().count
    ctxs = contexts(n)
    parts = [render.render_parts(c, "zh", PARTS) for c in ctxs[:1]] * n
    messages = [Outgoing(f"20161201-{i:016x}", f"c{i}@kc.gov.cn", "李科长", p["subject"], p["text"], p["html"], p["text"],
                         "承德市安全生产委员会办公室 <anjian@localhost>", NOW) for i, p in enumerate(parts)]
    print(f"{n:,} notices")
    timed("e-mail: mail.message_bytes (fast path)", mail.message_bytes, messages)
    timed("e-mail: mail.build_message().as_bytes() (stdlib)", lambda o: mail.build_message(o).as_bytes(), messages)
    timed("render: Template.render, no default globals", lambda c: render.render_parts(c, "zh", PARTS), ctxs)
    env = render.environment()
    saved = dict(env.globals)
    env.globals.update(_jinja_defaults())
    render.template.cache_clear()  # compiled again, carrying the defaults
    try:
        timed("render: Template.render, Jinja2's default globals", lambda c: render.render_parts(c, "zh", PARTS), ctxs)
    finally:
        env.globals.clear()
        env.globals.update(saved)
        render.template.cache_clear()


def _jinja_defaults() -> dict:
    from jinja2.defaults import DEFAULT_NAMESPACE

    return dict(DEFAULT_NAMESPACE)


if __name__ == "__main__":
    main()
