"""The early warning (预警) backtested on simulated campaigns whose outcomes are known, beside a naive
baseline measured the same way in the same run.

    python benchmarks/warning_backtest.py [--seed 2014] [--cities 20] [--counties 20] [--runs 2000]
                                          [--threshold 0.5] [--horizon 60]

The world (seeded): cities, each a campaign of its own with a start and three deadlines (demonstration
townships at 20–30 weeks, key townships at 45–60, every township at 90–110); counties of 5–40 townships,
1–3 of them demonstration and 30–50 % key. Each county has a latent pace that the forecaster never sees:
a per-township rate drawn log-normally (a tenfold spread), a late first start and a building lag before
any acceptance, a weekly trend, stalls and surges that come and go, a rush before a deadline it is
behind on, acceptances in batches (an inspection team accepts several townships in one visit), and a
priority for the townships of the nearest deadline that it keeps only most of the time.

Every Friday from each campaign's start to its last deadline, the product's own forecaster
(`anjian.workflow.outlook.pace`: `city_pace`, `forecast` with its `Draws`, `warned`) reads each county's record so far —
its first start and its acceptances by day, nothing else — and warns when a coming milestone within the
horizon is less likely than the threshold. The baseline warns when the county's acceptances so far, over
the days elapsed since the campaign began, drawn straight on to the deadline fall short of what the
milestone still needs — within the same horizon. For both it prints: the share of misses warned at least
30 days ahead, the share of warnings that were false alarms (the milestone was met), and the median lead
time (days from the first warning to the deadline) over the warned misses — at most the horizon, since
neither method warns earlier. Then the calibration of every forecast made (Brier score; per band of
probability, the share actually met), the seeds, the counts and the time taken. Writes
benchmarks/results/warning_backtest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from anjian.workflow.outlook.pace import RUNS, Calendar, Draws, Record, city_pace, forecast, warned

RESULTS = Path(__file__).parent / "results" / "warning_backtest.json"
EARLY = 30  # days ahead a miss must be warned to count as warned in time
MILESTONES = ("demo", "key", "full")


# -- the simulated world -----------------------------------------------------------------------------
@dataclass
class County:
    city: int
    townships: int
    cohort: list[str]  # per township: its earliest milestone ("demo", "key" or "full")
    first_start: dt.date
    rushes: bool = False  # speeds up before a deadline it is behind on
    accepted_on: list[dt.date] = field(default_factory=list)  # one entry per acceptance, in order
    order: list[str] = field(default_factory=list)  # the cohort of each acceptance, in the same order
    done_on: dict[str, dt.date | None] = field(default_factory=dict)  # milestone -> day its last township was accepted

    def needs(self) -> dict[str, int]:
        return {"demo": self.cohort.count("demo"), "key": sum(c != "full" for c in self.cohort),
                "full": self.townships}


@dataclass
class City:
    start: dt.date
    deadlines: dict[str, dt.date]
    counties: list[County] = field(default_factory=list)


def weekdays(first: dt.date, last: dt.date) -> Calendar:
    """The simulation's working days: Monday to Friday, less a Spring Festival week each February."""
    def work(d: dt.date) -> bool:
        return d.weekday() < 5 and not (d.month == 2 and 8 <= d.day <= 14)

    return Calendar.of(first, last, work)


def make_world(seed: int, cities: int, per_city: int, cal: Calendar) -> list[City]:
    """Cities with their campaigns, counties with their latent pace, and every acceptance day by day."""
    rng = np.random.default_rng(seed)
    world = []
    for c in range(cities):
        start = dt.date(2015, 1, 5) + dt.timedelta(weeks=int(rng.integers(0, 26)))
        deadlines = {"demo": start + dt.timedelta(weeks=int(rng.integers(20, 31))),
                     "key": start + dt.timedelta(weeks=int(rng.integers(45, 61))),
                     "full": start + dt.timedelta(weeks=int(rng.integers(90, 111)))}
        city = City(start, deadlines)
        city_mood = rng.lognormal(0.0, 0.3)  # a city's counties share some of their pace
        for _ in range(per_city):
            city.counties.append(_county(rng, c, city, city_mood, cal))
        world.append(city)
    return world


def _county(rng: np.random.Generator, index: int, city: City, mood: float, cal: Calendar) -> County:
    n = int(rng.integers(5, 41))
    demos = int(rng.integers(1, 4))
    keys = max(demos, int(round(n * rng.uniform(0.3, 0.5))))
    cohort = ["demo"] * demos + ["key"] * (keys - demos) + ["full"] * (n - keys)
    first_start = city.start + dt.timedelta(days=int(rng.integers(0, 57)))
    county = County(index, n, cohort, first_start, rushes=bool(rng.random() < 0.5))
    # Latent pace: acceptances per working day per township, with a tenfold spread between counties.
    per_township = mood * rng.lognormal(np.log(1 / 350), 0.55)
    trend = rng.normal(0.0, 0.012)  # per week, multiplicative
    lag = int(rng.integers(30, 81))  # working days from the first start to the first possible acceptance
    batch = rng.uniform(1.0, 3.0)  # townships an inspection visit accepts, on average
    keeps_order = rng.uniform(0.7, 0.97)  # how often the next township is one of the nearest deadline
    remaining = list(range(n))
    shock_until, shock = -1, 1.0
    days = [d for d in cal.days if d >= first_start]
    for i, day in enumerate(days):
        if not remaining:
            break
        if i < lag:
            continue
        week = i // 5
        if i % 5 == 0 and week > shock_until:  # a stall or a surge begins, or the pace returns
            roll = rng.random()
            if roll < 0.025:
                shock, shock_until = rng.uniform(0.0, 0.3), week + int(rng.integers(3, 13))
            elif roll < 0.035:
                shock, shock_until = rng.uniform(1.8, 3.0), week + int(rng.integers(2, 7))
            else:
                shock = 1.0
        rate = n * per_township * np.exp(trend * week) * shock
        rate *= _rush(county, city, day, remaining)
        visits = rng.poisson(rate / batch)
        for _ in range(visits):
            for _ in range(min(len(remaining), 1 + rng.poisson(batch - 1))):
                j = _pick(county, remaining, keeps_order, rng)
                remaining.remove(j)
                county.accepted_on.append(day)
                county.order.append(county.cohort[j])
        for m in MILESTONES:  # the day the milestone's last township was accepted
            if m not in county.done_on and not any(_owes(county.cohort[j], m) for j in remaining):
                county.done_on[m] = day
    for m in MILESTONES:
        county.done_on.setdefault(m, None)
    return county


def _owes(cohort: str, milestone: str) -> bool:
    return {"demo": cohort == "demo", "key": cohort != "full", "full": True}[milestone]


def _rush(county: County, city: City, day: dt.date, remaining: list[int]) -> float:
    """A county that rushes works 80 % faster in the six weeks before a deadline it is behind on."""
    if not county.rushes:
        return 1.0
    for m in MILESTONES:
        left = (city.deadlines[m] - day).days
        if 0 <= left <= 42 and any(_owes(county.cohort[j], m) for j in remaining):
            return 1.8
    return 1.0


def _pick(county: County, remaining: list[int], keeps_order: float, rng: np.random.Generator) -> int:
    if rng.random() < keeps_order:
        rank = {"demo": 0, "key": 1, "full": 2}
        return min(remaining, key=lambda j: rank[county.cohort[j]])
    return remaining[int(rng.integers(0, len(remaining)))]


# -- the checkpoints ---------------------------------------------------------------------------------
@dataclass
class Tally:
    """Per county-milestone, the first day each method warned (None: never)."""

    first: dict[tuple[int, int, str], dt.date | None] = field(default_factory=dict)
    calibration: list[tuple[float, tuple[int, int, str]]] = field(default_factory=list)  # (probability, which)

    def note(self, key: tuple[int, int, str], day: dt.date) -> None:
        if self.first.get(key) is None:
            self.first[key] = day


def record_of(county: County, today: dt.date) -> Record:
    """What the county's audit rows would say at `today`: its first start and acceptances by day."""
    upto = county.accepted_on[: bisect_right(county.accepted_on, today)]
    by_day: dict[dt.date, int] = {}
    for d in upto:
        by_day[d] = by_day.get(d, 0) + 1
    started = county.first_start if county.first_start <= today else None
    return Record(county.townships, started, tuple(sorted(by_day.items())))


def remaining_need(county: County, accepted: int, milestone: str) -> int:
    """Townships the milestone still needs at a moment when the first `accepted` have been accepted."""
    return county.needs()[milestone] - sum(_owes(c, milestone) for c in county.order[:accepted])


def run_checkpoints(world: list[City], cal: Calendar, seed: int, runs: int, threshold: float,
                    horizon: int) -> tuple[Tally, Tally, int]:
    draws = Draws(seed + 1, runs)
    model, naive, forecasts = Tally(), Tally(), 0
    calibration = model.calibration
    for ci, city in enumerate(world):
        last = max(city.deadlines.values())
        today = city.start + dt.timedelta(days=(4 - city.start.weekday()) % 7)  # the first Friday
        while today <= last:
            records = [record_of(c, today) for c in city.counties]
            pace = city_pace(records, city.start, today, cal)
            for ki, (county, rec) in enumerate(zip(city.counties, records, strict=True)):
                accepted = rec.accepted_by(today)
                coming = [m for m in MILESTONES if 0 <= (city.deadlines[m] - today).days <= horizon
                          and remaining_need(county, accepted, m) > 0]
                if not coming:
                    continue
                needs = [remaining_need(county, accepted, m) for m in coming]
                deadlines = [city.deadlines[m] for m in coming]
                _, outlooks = forecast(rec, pace, needs, deadlines, today, cal, draws)
                forecasts += len(coming)
                elapsed = (today - city.start).days
                for m, need, deadline, o in zip(coming, needs, deadlines, outlooks, strict=True):
                    calibration.append((o.probability, (ci, ki, m)))
                    if warned(o, deadline, today, threshold, horizon):
                        model.note((ci, ki, m), today)
                    if (accepted / elapsed if elapsed > 0 else 0.0) * (deadline - today).days < need:
                        naive.note((ci, ki, m), today)
            today += dt.timedelta(days=7)
    return model, naive, forecasts


@dataclass
class Figures:
    method: str
    misses: int
    met: int
    warned_misses_30d: float  # share of misses first warned at least 30 days ahead
    false_alarm_share: float  # share of warned county-milestones that were met
    median_lead_days: float | None  # over warned misses
    warnings: int
    misses_never_warned: int


def score(method: str, tally: Tally, world: list[City]) -> Figures:
    misses = met = early = false = warnings = never = 0
    leads = []
    for ci, city in enumerate(world):
        for ki, county in enumerate(city.counties):
            for m in MILESTONES:
                done = county.done_on[m]
                missed = done is None or done > city.deadlines[m]
                first = tally.first.get((ci, ki, m))
                misses += missed
                met += not missed
                if first is not None:
                    warnings += 1
                    false += not missed
                if missed and first is not None:
                    lead = (city.deadlines[m] - first).days
                    leads.append(lead)
                    early += lead >= EARLY
                never += missed and first is None
    return Figures(method, misses, met, early / misses if misses else 0.0, false / warnings if warnings else 0.0,
                   statistics.median(leads) if leads else None, warnings, never)


def reliability(tally: Tally, world: list[City]) -> tuple[float, list[tuple[str, int, float, float]]]:
    """The Brier score of every forecast made, and per band of probability: how many, the mean forecast
    and the share actually met."""
    def met(key: tuple[int, int, str]) -> bool:
        ci, ki, m = key
        done = world[ci].counties[ki].done_on[m]
        return done is not None and done <= world[ci].deadlines[m]

    pairs = [(p, met(k)) for p, k in tally.calibration]
    brier = sum((p - o) ** 2 for p, o in pairs) / len(pairs) if pairs else 0.0
    bands = []
    for lo, hi in ((0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        inside = [(p, o) for p, o in pairs if lo <= p < hi]
        if inside:
            bands.append((f"{lo:.1f}–{min(hi, 1):.1f}", len(inside), sum(p for p, _ in inside) / len(inside),
                          sum(o for _, o in inside) / len(inside)))
    return brier, bands


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2014)
    ap.add_argument("--cities", type=int, default=20)
    ap.add_argument("--counties", type=int, default=20, help="counties per city")
    ap.add_argument("--runs", type=int, default=RUNS, help="Monte Carlo runs per forecast")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--horizon", type=int, default=60, help="days")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    cal = weekdays(dt.date(2014, 6, 1), dt.date(2020, 12, 31))
    world = make_world(args.seed, args.cities, args.counties, cal)
    built = time.perf_counter() - began
    model, naive, forecasts = run_checkpoints(world, cal, args.seed, args.runs, args.threshold, args.horizon)
    took = time.perf_counter() - began
    pairs = sum(len(c.counties) for c in world) * len(MILESTONES)
    figures = [score("forecast (Monte Carlo)", model, world), score("baseline (straight line)", naive, world)]
    print(f"seed {args.seed} (world), {args.seed + 1} (forecasts); {args.cities} cities × {args.counties} counties; "
          f"{pairs:,} county-milestones, {figures[0].misses:,} missed and {figures[0].met:,} met; "
          f"threshold {args.threshold:g}, horizon {args.horizon} days, {args.runs:,} runs per forecast, "
          f"{forecasts:,} forecasts at weekly checkpoints")
    print(f"{'method':<26} {'misses warned ≥30 d':>20} {'false alarms':>13} {'median lead (d)':>16} "
          f"{'warned':>7} {'misses unwarned':>16}")
    for f in figures:
        lead = "—" if f.median_lead_days is None else f"{f.median_lead_days:g}"
        print(f"{f.method:<26} {f.warned_misses_30d:>20.1%} {f.false_alarm_share:>13.1%} {lead:>16} "
              f"{f.warnings:>7,} {f.misses_never_warned:>16,}")
    brier, bands = reliability(model, world)
    print(f"calibration of the forecasts (Brier {brier:.3f}): " + "; ".join(
        f"{band}: {n:,} said {said:.0%}, met {got:.0%}" for band, n, said, got in bands))
    print(f"time: {took:.1f} s ({built:.1f} s building the world); {platform.platform()}, Python {platform.python_version()}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(), "seed": args.seed,
        "cities": args.cities, "counties_per_city": args.counties, "county_milestones": pairs,
        "runs": args.runs, "threshold": args.threshold, "horizon_days": args.horizon, "forecasts": forecasts,
        "seconds": round(took, 1), "brier": round(brier, 4), "figures": [asdict(f) for f in figures]}, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
