"""The statistical core of the early warning (预警): a county's pace of acceptances, and a Monte Carlo of
when it reaches what a coming milestone needs.

Pure: plain data in (working days, counts per day, a seed), numbers out; no database and no clock. The
product (`outlook/forecast.py`) and the backtest (`benchmarks/warning_backtest.py`) call these same
functions, so the figures the backtest prints are the product's.

The model. Acceptances arrive as a Poisson process in working days whose rate λ is uncertain: a Gamma
posterior from the county's own recent window (the last `WINDOW` working days since its first start),
shrunk a little toward its city's pace — or, when the county has too little history of its own, its city's
per-township rate scaled to the county's size. Each run draws λ, then the time to the n-th acceptance
(Gamma(n, 1) / λ working days, counted in visits of `batch` townships); milestones that need more acceptances continue the same run, so a run's
key-township date never falls after its full-coverage date. The county is assumed to accept a milestone's
townships before the others, so the forecast is the best case of its pace, never the worst.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

WINDOW = 60  # working days (12 working weeks) of recent history that set a county's pace
MIN_HISTORY = 20  # working days since a county's first start before its own pace is trusted…
MIN_ACCEPTED = 2  # …and acceptances it must have had by then; else its city's rate stands in
PRIOR_DAYS = 5  # the city's pace weighs as much as this many working days of the county's own record
RUNS = 2000
THRESHOLD = 0.5  # a warning: a coming milestone less likely than this to be met…
HORIZON = 60  # …whose deadline is at most this many calendar days ahead


@dataclass(frozen=True)
class Calendar:
    """Working days in order: counts the working days between two dates, finds the n-th after one."""

    days: tuple[dt.date, ...]

    @classmethod
    def of(cls, first: dt.date, last: dt.date, is_workday) -> Calendar:
        n = (last - first).days + 1
        return cls(tuple(d for d in (first + dt.timedelta(days=i) for i in range(max(n, 0))) if is_workday(d)))

    def between(self, after: dt.date, upto: dt.date) -> int:
        """Working days d with after < d ≤ upto (0 when upto is not after `after`)."""
        return max(0, bisect_right(self.days, upto) - bisect_right(self.days, after))

    def back(self, day: dt.date, n: int) -> dt.date:
        """The day from which `n` working days lead up to `day` (the start of a window of n)."""
        i = bisect_right(self.days, day) - n - 1
        return self.days[i] if i >= 0 else (self.days[0] - dt.timedelta(days=1) if self.days else day)

    def nth_after(self, day: dt.date, n: int) -> dt.date | None:
        """The n-th working day after `day` (`day` itself for n ≤ 0); None past the calendar's end."""
        if n <= 0:
            return day
        i = bisect_right(self.days, day) + n - 1
        return self.days[i] if i < len(self.days) else None

    def covers(self, day: dt.date) -> bool:
        return bool(self.days) and self.days[0] <= day <= self.days[-1]


@dataclass(frozen=True)
class Record:
    """What a county's audit rows say of its pace: how many townships it has, the day its first township
    started (None: none has), and its net acceptances by day (an acceptance +1, a revocation −1)."""

    townships: int
    first_start: dt.date | None
    accepted: tuple[tuple[dt.date, int], ...] = ()

    def accepted_in(self, after: dt.date, upto: dt.date) -> int:
        days = [d for d, _ in self.accepted]
        lo, hi = bisect_right(days, after), bisect_right(days, upto)
        return sum(n for _, n in self.accepted[lo:hi])

    def visits_in(self, after: dt.date, upto: dt.date) -> tuple[int, int]:
        """Days with a net acceptance, and the acceptances on them, in after < day ≤ upto."""
        days = [d for d, _ in self.accepted]
        lo, hi = bisect_right(days, after), bisect_right(days, upto)
        gained = [n for _, n in self.accepted[lo:hi] if n > 0]
        return len(gained), sum(gained)

    def accepted_by(self, upto: dt.date) -> int:
        days = [d for d, _ in self.accepted]
        return sum(n for _, n in self.accepted[: bisect_right(days, upto)])


@dataclass(frozen=True)
class CityPace:
    """A city's pace over the window: acceptance days (inspection visits) per township and working day,
    a Gamma(shape, rate), and the townships accepted on such a day on average (`batch`)."""

    shape: float
    rate: float  # township-working-days of exposure
    batch: float = 1.0

    def per_township_day(self) -> float:
        return self.shape / self.rate


@dataclass(frozen=True)
class Pace:
    """A county's pace: days with acceptances per working day as a Gamma(shape, rate) posterior, the
    townships accepted on such a day on average (`batch`: inspectors accept several in one visit, which
    makes the pace lumpier than one at a time), and what it rests on: `county` (its own record) or
    `city` (its city's rate scaled to its townships)."""

    shape: float
    rate: float
    basis: str
    batch: float = 1.0

    def per_week(self) -> float:
        """Expected acceptances per working week (five working days)."""
        return 5 * self.batch * self.shape / self.rate


@dataclass(frozen=True)
class Outlook:
    """One milestone's forecast: the chance it is met by its deadline and the median completion day
    (None when the median run does not finish within the calendar)."""

    needed: int
    probability: float
    expected: dt.date | None


def _exposure(record: Record, today: dt.date, cal: Calendar, window: int) -> tuple[dt.date, int] | None:
    """The start of the county's window and its working days; None when it has not started."""
    if record.first_start is None or record.first_start > today:
        return None
    # The day the first start happened counts: the window opens the day before it.
    start = max(cal.back(today, window), record.first_start - dt.timedelta(days=1))
    return start, cal.between(start, today)


def city_pace(records: Iterable[Record], since: dt.date, today: dt.date, cal: Calendar,
              window: int = WINDOW) -> CityPace:
    """The per-township pace of a group of counties (a city's) over the window, counted from the day
    the campaign began (`since`) for every county, started or not: days with acceptances over
    township-working-days (at least one, so that a campaign just begun is very uncertain rather than
    undefined)."""
    start = max(cal.back(today, window), since - dt.timedelta(days=1))
    days = max(1, cal.between(start, today))
    visits, accepted, townships = 0, 0, 0
    for r in records:
        v, a = r.visits_in(start, today)
        visits, accepted, townships = visits + v, accepted + a, townships + r.townships
    return CityPace(visits + 0.5, max(townships, 1) * days, accepted / visits if visits else 1.0)


def county_pace(record: Record, city: CityPace, today: dt.date, cal: Calendar, window: int = WINDOW) -> Pace:
    """The county's pace: its own window shrunk toward the city's when it has history enough, else the
    city's per-township rate scaled to its townships (with the city's own uncertainty)."""
    seen = _exposure(record, today, cal, window)
    size = max(record.townships, 1)
    if seen is not None and seen[1] >= MIN_HISTORY and record.accepted_by(today) >= MIN_ACCEPTED:
        start, days = seen
        _, total = record.visits_in(record.first_start - dt.timedelta(days=1), today)
        batch = total / max(1, record.visits_in(record.first_start - dt.timedelta(days=1), today)[0])
        k = max(0, record.accepted_in(start, today)) / batch  # the window's acceptances, in visits
        prior = PRIOR_DAYS * size * city.per_township_day() * city.batch / batch
        return Pace(k + 0.5 + prior, days + PRIOR_DAYS, "county", batch)
    return Pace(city.shape, city.rate / size, "city", city.batch)


class Draws:
    """The runs' random numbers: standard gamma variates, drawn once per (shape, use) from a generator
    seeded by the seed, the shape and the use. So a forecast depends on its inputs and the seed alone —
    never on which other counties are forecast beside it — and counties whose shapes coincide share
    the work (a national `status` forecasts some 3,000 counties). Shapes are taken on a grid of a
    quarter, far finer than the record they come from can tell apart."""

    def __init__(self, seed: int, runs: int = RUNS):
        self.seed, self.runs = seed, runs
        self._bank: dict[tuple[int, int], np.ndarray] = {}

    def gamma(self, shape: float, use: int) -> np.ndarray:
        """`runs` draws of Gamma(shape, 1); `use` tells apart the independent draws one run needs."""
        q = max(1, round(shape * 4))
        key = (q, use)
        if key not in self._bank:
            rng = np.random.default_rng([self.seed, q, use])
            self._bank[key] = rng.standard_gamma(q / 4, size=self.runs)
        return self._bank[key]


def simulate(pace: Pace, needs: Sequence[int], days_left: Sequence[int], cal: Calendar, today: dt.date,
             draws: Draws) -> list[Outlook]:
    """For each milestone (acceptances it needs, working days to its deadline), the share of runs that
    reach it in time and the median completion day. One path per run serves every milestone: visits
    arrive at a rate drawn from the pace, each accepting `batch` townships on average."""
    runs = draws.runs
    lam = draws.gamma(pace.shape, 0) / pace.rate  # visits per working day
    t = np.zeros(runs)
    done = 0
    middle = [(runs - 1) // 2, runs // 2]
    out: dict[int, Outlook] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for step, i in enumerate(sorted(range(len(needs)), key=lambda j: needs[j]), start=1):
            n = max(0, needs[i])
            if n > done:
                t = t + draws.gamma((n - done) / pace.batch, step) / lam
                done = n
            probability = int(np.count_nonzero(t <= days_left[i])) / runs
            low, high = np.partition(t, middle)[middle]  # np.median, without its overhead
            median = float((low + high) / 2)
            expected = cal.nth_after(today, math.ceil(median)) if math.isfinite(median) else None
            out[i] = Outlook(n, probability, expected)
    return [out[i] for i in range(len(needs))]


def forecast(record: Record, city: CityPace, needs: Sequence[int], deadlines: Sequence[dt.date],
             today: dt.date, cal: Calendar, draws: Draws) -> tuple[Pace, list[Outlook]]:
    """A county's pace and, for each coming milestone (acceptances needed, deadline), its outlook."""
    pace = county_pace(record, city, today, cal)
    left = [cal.between(today, d) for d in deadlines]
    return pace, simulate(pace, needs, left, cal, today, draws)


def warned(outlook: Outlook, deadline: dt.date, today: dt.date, threshold: float = THRESHOLD,
           horizon: int = HORIZON) -> bool:
    """Whether a forecast is a warning: less likely than `threshold`, with the deadline within `horizon` days."""
    return outlook.probability < threshold and 0 <= (deadline - today).days <= horizon
