"""The early warning (预警): the forecasting core is deterministic with a seed and tells a fast county from
a stalled one, falls back to its city's pace without history of its own, and `status` carries each
county's forecasts (JSON and the 预警 column) for a campaign driven through the services."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from anjian.workflow.errors import BadInput
from anjian.workflow.outlook.pace import (
    Calendar,
    CityPace,
    Draws,
    Record,
    city_pace,
    county_pace,
    forecast,
    warned,
)
from anjian.workflow.settings import ForecastSettings, forecast_settings

TODAY = dt.date(2015, 9, 1)
DEADLINE = dt.date(2015, 12, 31)
CAL = Calendar.of(dt.date(2014, 12, 1), dt.date(2018, 12, 31), lambda d: d.weekday() < 5)
CITY = CityPace(20.5, 219 * 60, 1.0)  # 20 acceptance days in 60 working days over 219 townships

YUERYA = "130827102"  # 宽城峪耳崖镇, provincial demonstration
KUANCHENG = "130827"
GAOSITAI_COUNTY = "130821"  # 承德县: its provincial township 高寺台镇 never starts here


def steady(per_week: int, weeks: int = 12, start: dt.date = dt.date(2015, 6, 1)) -> Record:
    """A county that has accepted `per_week` townships every Monday for `weeks` weeks up to TODAY."""
    days = [TODAY - dt.timedelta(weeks=w, days=TODAY.weekday()) for w in range(weeks)]
    return Record(40, start, tuple(sorted((d, per_week) for d in days)))


def test_the_core_is_deterministic_with_a_seed():
    """The same record, city and seed give the same probabilities and dates, run after run."""
    rec = steady(1)
    a = forecast(rec, CITY, [5, 12], [DEADLINE, dt.date(2016, 6, 30)], TODAY, CAL, Draws(7))
    b = forecast(rec, CITY, [5, 12], [DEADLINE, dt.date(2016, 6, 30)], TODAY, CAL, Draws(7))
    assert a == b
    assert a[1][0].needed == 5 and a[1][1].needed == 12


def test_a_fast_county_is_likely_and_a_stalled_one_is_not():
    """A county accepting two townships a week will meet 10 more in four months; one whose acceptances
    stopped three months ago (its window empty) will not."""
    draws = Draws(1)
    pace, (fast,) = forecast(steady(2), CITY, [10], [DEADLINE], TODAY, CAL, draws)
    assert pace.basis == "county" and pace.per_week() == pytest.approx(2, rel=0.2)
    assert fast.probability > 0.95 and fast.expected is not None and fast.expected < DEADLINE
    stalled = Record(40, dt.date(2015, 1, 5), tuple((dt.date(2015, 3, 2) + dt.timedelta(weeks=w), 2) for w in range(6)))
    pace, (slow,) = forecast(stalled, CITY, [10], [DEADLINE], TODAY, CAL, draws)
    assert pace.basis == "county" and pace.per_week() < 0.5
    assert slow.probability < 0.2
    assert warned(slow, DEADLINE, DEADLINE - dt.timedelta(days=50)) and not warned(fast, DEADLINE, TODAY)


def test_a_county_without_history_takes_its_citys_rate_scaled_to_its_size():
    """No start and no acceptance: the city's per-township pace times the county's townships, basis city."""
    records = [steady(1), Record(10, None)]
    city = city_pace(records, dt.date(2014, 12, 10), TODAY, CAL)
    pace = county_pace(records[1], city, TODAY, CAL)
    assert pace.basis == "city"
    assert pace.per_week() == pytest.approx(5 * 10 * city.per_township_day() * city.batch)
    big = county_pace(Record(40, None), city, TODAY, CAL)
    assert big.per_week() == pytest.approx(4 * pace.per_week())


def test_the_milestone_that_needs_more_never_finishes_first():
    """One simulated path serves every milestone: the median day of 12 acceptances is not before that of 5."""
    _, (five, twelve) = forecast(steady(1), CITY, [5, 12], [DEADLINE, DEADLINE], TODAY, CAL, Draws(3))
    assert five.expected <= twelve.expected and five.probability >= twelve.probability


def test_forecast_settings_come_from_the_environment_and_are_checked(tmp_path):
    """Threshold and horizon default to 0.5 and 60 days, are read from ANJIAN_FORECAST_*, and a bad one is refused."""
    assert forecast_settings(tmp_path, {}) == ForecastSettings(0.5, 60)
    assert forecast_settings(tmp_path, {"ANJIAN_FORECAST_THRESHOLD": "0.3", "ANJIAN_FORECAST_HORIZON": "90"}) == \
        ForecastSettings(0.3, 90)
    (tmp_path / "config.toml").write_text("[forecast]\nthreshold = 0.7\n", encoding="utf-8")
    assert forecast_settings(tmp_path, {}).threshold == 0.7
    with pytest.raises(BadInput):
        forecast_settings(tmp_path, {"ANJIAN_FORECAST_THRESHOLD": "2"})
    with pytest.raises(BadInput):
        forecast_settings(tmp_path, {"ANJIAN_FORECAST_HORIZON": "soon"})


# -- status, on a campaign driven through the services (conftest's busy_kuancheng) -----------------------
def rows_of(cli, now: str, *more: str) -> dict[str, dict]:
    r = cli("status", "--format", "json", *more, now=now)
    assert r.exit_code == 0, r.output
    return {c["code"]: c for c in json.loads(r.stdout)["counties"]}


def test_status_json_carries_each_countys_forecast(busy_kuancheng, cli):
    """Mid-March 2015: 宽城 (its provincial township met) forecasts full coverage from its own pace; 承德县,
    whose provincial township has not started, is warned of provincial_demo on its city's pace."""
    rows = rows_of(cli, "2015-03-16T09:00")
    kc = {f["milestone"]: f for f in rows[KUANCHENG]["forecast"]}
    assert "provincial_demo" not in kc  # met: no forecast
    full = kc["full_coverage"]
    assert set(full) >= {"milestone", "deadline", "needed", "probability", "expected", "basis"}
    assert full["deadline"] == "2016-12-31" and full["needed"] == 10 and full["basis"] == "county"
    assert full["probability"] > 0.9 and not full["warning"]
    dt.date.fromisoformat(full["expected"])  # YYYY-MM-DD
    cd = {f["milestone"]: f for f in rows[GAOSITAI_COUNTY]["forecast"]}
    demo = cd["provincial_demo"]
    assert (demo["needed"], demo["deadline"], demo["basis"]) == (1, "2015-03-31", "city")
    assert demo["probability"] < 0.5 and demo["warning"] is True
    assert all(f["probability"] is not None for r in rows.values() for f in r["forecast"])


def test_the_totals_count_the_counties_warned_however_the_rows_are_grouped(busy_kuancheng, cli):
    """`counties_warned` is the same in the county rows and summed by city; a county row warns if any forecast does."""
    by_county = json.loads(cli("status", "--format", "json", now="2015-03-16T09:00").stdout)
    by_city = json.loads(cli("status", "--by", "city", "--format", "json", now="2015-03-16T09:00").stdout)
    warned_rows = sum(any(f["warning"] for f in c["forecast"]) for c in by_county["counties"])
    assert by_county["totals"]["counties_warned"] == by_city["totals"]["counties_warned"] == warned_rows >= 4


def test_status_forecasts_are_the_same_each_time(busy_kuancheng, cli):
    """Two reads at the same `now` give identical forecasts (seeded by the county's code)."""
    assert rows_of(cli, "2015-03-16T09:00") == rows_of(cli, "2015-03-16T09:00")


def test_the_table_warns_in_its_own_column(busy_kuancheng, cli, monkeypatch):
    """The 预警 column names the least likely warned milestone with its chance; the total counts the counties warned."""
    monkeypatch.setenv("COLUMNS", "250")
    r = cli("status", now="2015-03-16T09:00")
    assert r.exit_code == 0, r.output
    assert "预警" in r.output
    line = next(x for x in r.output.splitlines() if "承德县" in x)
    assert re.search(r"省定示范 \d+%$", line)
    assert "个县区预警" in r.output


def test_a_met_or_passed_milestone_has_no_forecast(busy_kuancheng, cli):
    """After 2015-03-31 nobody is forecast provincial_demo: met by 宽城, overdue for the rest."""
    rows = rows_of(cli, "2015-04-02T09:00")
    assert not any(f["milestone"] == "provincial_demo" for r in rows.values() for f in r["forecast"])


def test_the_threshold_setting_decides_the_warning(busy_kuancheng, cli, monkeypatch):
    """A lower threshold warns only of what is less likely than it; the probabilities stay the same."""
    before = rows_of(cli, "2015-03-16T09:00")
    monkeypatch.setenv("ANJIAN_FORECAST_THRESHOLD", "0.0001")
    after = rows_of(cli, "2015-03-16T09:00")
    assert any(f["warning"] for r in before.values() for f in r["forecast"])
    assert not any(f["warning"] and f["probability"] >= 0.0001 for r in after.values() for f in r["forecast"])
    assert [f["probability"] for r in before.values() for f in r["forecast"]] == \
        [f["probability"] for r in after.values() for f in r["forecast"]]
