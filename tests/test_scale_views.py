"""Issue 5 (scale): the set-based `status`, `units` and `units --by` agree with the per-unit truth, and
they add up on the national registry.

The per-unit truth is worked out here the slow way, one unit at a time: `FactsLoader.facts(code)` and
`progress.milestones(...)`, which are what `show` and the transitions use. The views under test instead
count townships in one GROUP BY and work milestones out once per (state, cohorts); on a seeded random mix
of states and cohorts, at times on both sides of every deadline, both must say the same thing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict
from types import SimpleNamespace

import pytest
from click.testing import Result
from sqlalchemy import delete, select, update
from support import T0, TEST_OFFICIALS, add_officials, checklist_values

from anjian.states.milestones import milestones
from anjian.workflow.clock import local_date, parse_time
from anjian.workflow.engine.facts import FactsLoader
from anjian.workflow.services.advance import BatchRow, advance_batch
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import ChecklistValue, Unit, UnitCohort, UnitState
from anjian.workflow.views.status import CountyStatus, status
from anjian.workflow.views.units import tally, units

CITY = "130800"  # 承德市
KUANCHENG = "130827"  # 宽城满族自治县
COHORTS = ("provincial_demo", "county_demo", "key", "heavy_task")
TOWNSHIP_STATES = ("not_started", "building", "applied", "rectifying", "accepted")
COUNTY_STATES = ("mobilization", "demonstration", "key_compliance", "full_coverage", "standardized")

# Around every deadline of chengde-2014 (2014-12-30, 2015-03-31, 2015-06-30, 2015-07-31, 2015-12-31,
# 2016-12-31): the last minute of the day (still in time) and the first of the next (late). Two are
# written in UTC, where the Shanghai day has already turned: the day that counts is Shanghai's.
NOWS = [
    "2014-12-15T09:00",
    "2014-12-30T23:59", "2014-12-31T00:00",
    "2015-03-31T23:59", "2015-03-31T16:30Z",
    "2015-06-30T23:59", "2015-07-01T00:00",
    "2015-07-31T15:59Z", "2015-08-01T00:00",
    "2015-12-31T23:59", "2016-01-01T00:01",
    "2016-12-31T23:59", "2017-01-01T00:00",
    "2018-06-01T12:00",
]


# -- a seeded random mix of states and cohorts, written straight into the tables --------------------
def scramble(db: Database, seed: int) -> None:
    """Give every county and township of the loaded registry a random state, and every township random
    cohorts. Each county follows a profile, so that besides plain mixes there are counties whose key
    townships are all accepted, counties with everything accepted, idle ones, and 0–5 county demos."""
    rng = random.Random(seed)
    with db.write() as s:
        towns = defaultdict(list)
        for code, parent in s.execute(select(Unit.code, Unit.parent_code).where(Unit.level == "township")
                                      .order_by(Unit.code)):
            towns[parent].append(code)
        provincial = set(s.scalars(select(UnitCohort.unit_code).where(UnitCohort.cohort == "provincial_demo")))
        s.execute(delete(UnitCohort))
        for county in sorted(towns):
            profile = rng.choice(("idle", "mixed", "mixed", "keys_done", "all_done", "nearly_done"))
            kids = towns[county]
            demos = set(rng.sample(kids, min(len(kids), rng.choice((0, 1, 2, 3, 3, 5)))))
            for code in kids:
                cohorts = set()
                if code in provincial and rng.random() < 0.8 or rng.random() < 0.02:
                    cohorts.add("provincial_demo")
                if code in demos:
                    cohorts |= {"county_demo", "key"}
                if rng.random() < 0.25:
                    cohorts.add("key")
                if rng.random() < 0.2:
                    cohorts.add("heavy_task")
                if profile == "idle":
                    state = "not_started"
                elif profile == "all_done":
                    state = "accepted"
                elif profile == "keys_done":
                    state = "accepted" if "key" in cohorts else rng.choice(TOWNSHIP_STATES[1:])
                elif profile == "nearly_done":
                    state = "accepted" if rng.random() < 0.9 else rng.choice(TOWNSHIP_STATES[:4])
                else:
                    state = rng.choice(TOWNSHIP_STATES)
                s.execute(update(UnitState).where(UnitState.unit_code == code).values(state=state))
                s.add_all(UnitCohort(unit_code=code, cohort=c) for c in sorted(cohorts))
        for county in s.scalars(select(Unit.code).where(Unit.level == "county")).all():
            s.execute(update(UnitState).where(UnitState.unit_code == county).values(state=rng.choice(COUNTY_STATES)))


# -- the slow, per-unit truth -----------------------------------------------------------------------
def reference(db: Database, now: dt.datetime) -> SimpleNamespace:
    """Per unit, its milestones from its own facts; per county, its row of `status` counted by hand."""
    today = local_date(now)
    with db.read() as s:
        campaign = campaign_in_force(s)
        rows = s.execute(select(Unit.code, Unit.level, Unit.parent_code, Unit.state)).all()
        cohorts = defaultdict(set)
        for code, cohort in s.execute(select(UnitCohort.unit_code, UnitCohort.cohort)):
            cohorts[code].add(cohort)
        loader = FactsLoader(s, campaign, now)
        owing = [code for code, level, _, _ in rows if level in ("county", "township")]
        loader.prefetch(owing)  # a few queries for them all; facts() is then per unit, as `show` has it
        ms = {code: milestones(loader.facts(code), campaign, today) for code in owing}
    late = {code: [m.id for m in m_list if m.status == "overdue"] for code, m_list in ms.items()}
    counties = {}
    for code, level, parent, state in rows:
        if level != "county":
            continue
        kids = [(k, st) for k, lvl, p, st in rows if p == code and lvl == "township"]
        by = {c: [sum(1 for k, st in kids if c in cohorts[k] and st == "accepted"),
                  sum(1 for k, _ in kids if c in cohorts[k])] for c in COHORTS}
        pending = [m for m in ms[code] if m.status == "pending"]
        counties[code] = {
            "state": state, "level": "county", "parent": parent,
            "townships": len(kids),
            "accepted": sum(1 for _, st in kids if st == "accepted"),
            "started": sum(1 for _, st in kids if st != "not_started"),
            "cohorts": by,
            "overdue": late[code],
            "overdue_townships": sum(1 for k, _ in kids if late[k]),
            "next_milestone": asdict(pending[0]) if pending else None,
            "counties": 1, "counties_overdue": int(bool(late[code])),
            "states": {s: sum(1 for _, st in kids if st == s) for s in TOWNSHIP_STATES},
        }
    levels = {code: level for code, level, _, _ in rows}
    return SimpleNamespace(counties=counties, late=late, levels=levels, milestones=ms,
                           states={code: st for code, _, _, st in rows},
                           parents={code: p for code, _, p, _ in rows})


def row_of(c: CountyStatus) -> dict:
    d = asdict(c)
    return {k: d[k] for k in ("state", "level", "parent", "townships", "accepted", "started", "cohorts", "overdue",
                              "overdue_townships", "next_milestone", "counties", "counties_overdue", "states")}


def assert_same_as_reference(db: Database, now: dt.datetime, what: str) -> SimpleNamespace:
    """`status` (per county, scoped, per city), `units` (all and --overdue) and `tally` against the truth."""
    ref = reference(db, now)
    res = status(db, now)
    got = {c.code: row_of(c) for c in res.counties}
    assert set(got) == set(ref.counties), f"{what}: status rows are not the counties"
    for code in sorted(ref.counties):
        assert got[code] == ref.counties[code], f"{what}: status row of {code} differs from the per-unit truth"
    assert [c.code for c in res.counties] == sorted(ref.counties), f"{what}: rows not in code order"
    totals = {k: sum(r[k] for r in ref.counties.values()) for k in ("townships", "accepted", "started", "overdue_townships")}
    totals |= {"counties": len(ref.counties), "counties_overdue": sum(bool(r["overdue"]) for r in ref.counties.values()),
               "states": {s: sum(r["states"][s] for r in ref.counties.values()) for s in TOWNSHIP_STATES}}
    counted = {k: v for k, v in asdict(res.totals).items() if k != "counties_warned"}  # a forecast's: test_forecast
    assert counted == totals, f"{what}: totals"

    one = status(db, now, county=KUANCHENG)
    assert [row_of(c) for c in one.counties] == [ref.counties[KUANCHENG]], f"{what}: status --county {KUANCHENG}"
    assert status(db, now, county="承德市").counties == res.counties, f"{what}: status --county 承德市"

    city = status(db, now, by="city").counties
    assert len(city) == 1 and city[0].code == CITY, f"{what}: status --by city"
    summed = {k: sum(r[k] for r in ref.counties.values())
              for k in ("townships", "accepted", "started", "overdue_townships", "counties", "counties_overdue")}
    assert {k: getattr(city[0], k) for k in summed} == summed, f"{what}: status --by city sums"
    assert city[0].cohorts == {c: [sum(r["cohorts"][c][i] for r in ref.counties.values()) for i in (0, 1)]
                               for c in COHORTS}, f"{what}: status --by city cohort sums"
    order = ["plan_submission", "provincial_demo", "county_demo", "demo_review", "key_compliance", "full_coverage"]
    union = {m for r in ref.counties.values() for m in r["overdue"]}
    assert city[0].overdue == [m for m in order if m in union], f"{what}: status --by city overdue milestones"

    listed = units(db, now)
    assert {u.code for u in listed} == set(ref.levels), f"{what}: units lists every unit"
    for u in listed:
        want = ref.late[u.code] if u.level in ("county", "township") else None
        assert u.overdue == want, f"{what}: units row {u.code} overdue {u.overdue} != {want}"
        assert u.state == ref.states[u.code] and u.parent == ref.parents[u.code], f"{what}: units row {u.code}"
    overdue = {u.code: u.overdue for u in units(db, now, overdue=True)}
    assert overdue == {c: m for c, m in ref.late.items() if m}, f"{what}: units --overdue"

    townships = units(db, now, level="township")
    tallied = {t.code: (t.units, t.states, t.overdue) for t in tally(db, townships, "county")}
    want_tally = {}
    for code in ref.counties:
        kids = [k for k, p in ref.parents.items() if p == code and ref.levels[k] == "township"]
        want_tally[code] = (len(kids), dict(Counter(ref.states[k] for k in kids)), sum(bool(ref.late[k]) for k in kids))
    assert tallied == want_tally, f"{what}: units --level township --by county"
    return ref


@pytest.mark.parametrize("seed", [1, pytest.param(2014, marks=pytest.mark.slow), pytest.param(31337, marks=pytest.mark.slow)])
def test_status_and_units_equal_the_per_unit_truth(chengde, seed):
    """On a seeded random mix of township/county states and cohorts, at 14 times around every deadline,
    `status` (per county, scoped to a county and a city, summed per city), `units` (every row's overdue
    milestones, and `--overdue`) and the per-county tally equal what each unit's own facts say."""
    scramble(chengde, seed)
    for text in NOWS:
        assert_same_as_reference(chengde, parse_time(text), f"seed {seed}, now {text}")


def test_truth_is_not_vacuous(chengde):
    """The random mix really reaches met, pending and overdue milestones for townships and counties
    alike, so the equivalence above compares something."""
    scramble(chengde, 2014)
    seen = set()
    for text in NOWS:
        ref = reference(chengde, parse_time(text))
        seen.update((ref.levels[code], m.id, m.status) for code, ms in ref.milestones.items() for m in ms)
    for level, ids in (("township", ("provincial_demo", "county_demo", "key_compliance", "full_coverage")),
                       ("county", ("plan_submission", "provincial_demo", "county_demo", "demo_review",
                                   "key_compliance", "full_coverage"))):
        for m in ids:
            for st in ("met", "pending", "overdue"):
                assert (level, m, st) in seen, f"the mix never makes {level} milestone {m} {st}"


def test_the_shanghai_day_decides_lateness(chengde):
    """On the untouched registry, 2015-03-31T15:59Z (23:59 in Shanghai) has the five provincial demos
    still in time; 16:30Z (00:30 on 1 April in Shanghai) has them and their five counties late."""
    before = status(chengde, parse_time("2015-03-31T15:59Z"))
    after = status(chengde, parse_time("2015-03-31T16:30Z"))
    assert before.totals.overdue_townships == 0
    assert after.totals.overdue_townships == 5
    late = {c.code for c in after.counties if "provincial_demo" in c.overdue}
    assert late == {"130821", "130824", "130826", "130827", "130881"}
    assert all(c.overdue == ["plan_submission"] for c in before.counties)


@pytest.mark.slow  # 219 townships' checklists, at two moments
def test_a_campaign_whose_township_milestones_read_the_checklist(fresh_db, tmp_path):
    """With a campaign whose township `full_coverage` is met by a complete checklist (not by a state), the
    views cannot group by (state, cohorts): they still agree with the per-unit truth."""
    from anjian.states.campaign import builtin_text
    from anjian.workflow.services.registry import initialize

    text = builtin_text("chengde-2014")
    plain = '{ level = "township", states = ["accepted"] },'
    assert text.count(plain) == 1
    path = tmp_path / "checklist-campaign.toml"
    path.write_text(text.replace(plain, '{ level = "township", guards = ["checklist_complete"] },'), "utf-8")
    initialize(fresh_db, None, str(path), T0, "admin")
    add_officials(fresh_db, TEST_OFFICIALS)
    scramble(fresh_db, 7)
    rng = random.Random(7)
    with fresh_db.write() as s:
        cohorts = defaultdict(set)
        for code, cohort in s.execute(select(UnitCohort.unit_code, UnitCohort.cohort)):
            cohorts[code].add(cohort)
        for code in s.scalars(select(Unit.code).where(Unit.level == "township").order_by(Unit.code)).all():
            if rng.random() < 0.4:
                s.add_all(ChecklistValue(unit_code=code, item=item, value=value, recorded_at="2014-12-15T01:00:00.000000Z",
                                         recorded_by="chief")
                          for item, value in checklist_values(frozenset(cohorts[code])).items())
    for text in ("2016-12-31T23:59", "2017-01-01T00:00"):
        ref = assert_same_as_reference(fresh_db, parse_time(text), f"checklist campaign, now {text}")
    late = {c for c, m in ref.late.items() if "full_coverage" in m and ref.levels[c] == "township"}
    assert 0 < len(late) < 219, "the checklist decides for some townships and not for others"


# -- the national registry ---------------------------------------------------------------------------
NATIONAL_NOW = "2014-12-16T09:00"  # the moment of every command this module runs on the national registry


def divisions() -> SimpleNamespace:
    """The national CSV shipped with anjian, read with the csv module: each township's county (or city), city
    and province."""
    from anjian.workflow.services.registry import national_text

    rows = list(csv.DictReader(io.StringIO(national_text(), newline="")))
    unit = {r["code"]: r for r in rows}

    def up(code: str, level: str) -> str:
        while unit[code]["level"] != level:
            code = unit[code]["parent_code"]
        return code

    towns = [r for r in rows if r["level"] == "township"]
    return SimpleNamespace(
        unit=unit, towns=towns, up=up,
        per_county=Counter(r["parent_code"] for r in towns),
        per_city=Counter(up(r["parent_code"], "city") for r in towns),
        per_province=Counter(up(r["parent_code"], "province") for r in towns),
        counties=[r["code"] for r in rows if r["level"] == "county"],
        direct=sorted({r["parent_code"] for r in towns if unit[r["parent_code"]]["level"] == "city"}))


@pytest.fixture(scope="module")
def china() -> SimpleNamespace:
    return divisions()


def at_our_time(registry: SimpleNamespace) -> SimpleNamespace:
    """The national registry fixture, its `run` at NATIONAL_NOW."""
    return SimpleNamespace(url=registry.url, home=registry.home, db=registry.db,
                           run=lambda *args: registry.run(*args, now=NATIONAL_NOW))


@pytest.fixture
def national(national_registry, china) -> SimpleNamespace:
    """The national registry (44,700 units), loaded once a session and only read by these tests."""
    return at_our_time(national_registry)


def as_json(r: Result):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_csv_facts_this_module_relies_on(china):
    """The CSV has 41,352 townships, and 东莞市 and 中山市 hold townships with no county between."""
    assert len(china.towns) == 41_352
    assert {"441900", "442000"} <= set(china.direct)
    assert all(china.unit[c]["level"] == "city" for c in china.direct)


def test_status_by_province_counts_the_csv(national, china):
    """`status --by province --format json`: 31 provinces, each with the townships, counties (and cities
    holding townships directly) the CSV gives it; the totals are the whole country."""
    data = as_json(national.run("status", "--by", "province", "--format", "json"))
    assert data["by"] == "province"
    rows = data["counties"]
    assert len(rows) == 31
    assert all(r["level"] == "province" for r in rows)
    assert {r["code"]: r["townships"] for r in rows} == dict(china.per_province)
    county_rows = Counter(china.up(c, "province") for c in [*china.counties, *china.direct])
    assert {r["code"]: r["counties"] for r in rows} == dict(county_rows)
    assert data["totals"]["townships"] == 41_352
    assert data["totals"]["counties"] == len(china.counties) + len(china.direct)
    assert sum(r["townships"] for r in rows) == 41_352


def test_status_by_city_sums_to_every_township(national, china):
    """`status --by city`: one row per city with townships, each the CSV's count; together 41,352."""
    rows = as_json(national.run("status", "--by", "city", "--format", "json"))["counties"]
    assert sum(r["townships"] for r in rows) == 41_352
    assert {r["code"]: r["townships"] for r in rows} == dict(china.per_city)
    assert all(r["level"] == "city" for r in rows)
    assert {r["code"]: r["parent"] for r in rows} == {c: china.unit[c]["parent_code"] for c in china.per_city}


def test_status_by_county_has_the_cities_without_counties(national, china):
    """`status --by county` has a row per county and one per city holding townships directly (东莞市,
    中山市…), level city with no stage, each with the CSV's townships."""
    rows = {r["code"]: r for r in as_json(national.run("status", "--format", "json"))["counties"]}
    assert set(rows) == set(china.counties) | set(china.direct)
    for code in ("441900", "442000"):
        assert rows[code]["name"] == china.unit[code]["name"]
        assert (rows[code]["level"], rows[code]["state"], rows[code]["next_milestone"]) == ("city", None, None)
        assert rows[code]["townships"] == china.per_county[code] > 0
    assert {c: r["townships"] for c, r in rows.items()} == {c: china.per_county[c] for c in rows}


def test_status_scoped_to_a_province(national, china):
    """`status --county 河北省` lists Hebei's counties only, with Hebei's townships in the totals;
    `--county 东莞市` is its own single row."""
    data = as_json(national.run("status", "--county", "河北省", "--format", "json"))
    hebei = {c for c in china.counties if china.up(c, "province") == "130000"}
    hebei |= {c for c in china.direct if china.up(c, "province") == "130000"}
    assert {r["code"] for r in data["counties"]} == hebei
    assert data["totals"]["townships"] == china.per_province["130000"]
    assert data["totals"]["counties"] == len(hebei)
    by_city = as_json(national.run("status", "--county", "河北省", "--by", "city", "--format", "json"))["counties"]
    assert {r["code"]: r["townships"] for r in by_city} == {c: n for c, n in china.per_city.items()
                                                            if china.up(c, "province") == "130000"}
    dongguan = as_json(national.run("status", "--county", "东莞市", "--format", "json"))["counties"]
    assert [(r["code"], r["townships"]) for r in dongguan] == [("441900", china.per_county["441900"])]


def test_units_by_county_within_a_city(national, china):
    """`units --level township --county 承德市 --by county --format json` counts each of its counties'
    townships as the CSV does."""
    data = as_json(national.run("units", "--level", "township", "--county", "承德市", "--by", "county",
                                "--format", "json"))
    want = {c: n for c, n in china.per_county.items() if china.up(c, "city") == "130800"}
    assert {g["code"]: g["units"] for g in data} == want
    assert all(g["level"] == "county" for g in data)
    assert all(sum(g["states"].values()) == g["units"] for g in data)


def test_units_by_province_and_city_count_the_csv(national, china):
    """`units --level township --by province` and `--by city` (Guangdong) count the CSV's townships,
    the cities without counties included."""
    data = as_json(national.run("units", "--level", "township", "--by", "province", "--format", "json"))
    assert {g["code"]: g["units"] for g in data} == dict(china.per_province)
    data = as_json(national.run("units", "--level", "township", "--county", "广东省", "--by", "city",
                                "--format", "json"))
    assert {g["code"]: g["units"] for g in data} == {c: n for c, n in china.per_city.items()
                                                     if china.up(c, "province") == "440000"}


@pytest.mark.parametrize("command", ["status", "units"])
def test_by_nonsense_exits_2(national, command):
    """`--by nonsense` is bad input: exit 2, naming the choices, no traceback."""
    r = national.run(command, "--by", "nonsense")
    assert r.exit_code == 2, r.output
    assert "province" in r.output and "Traceback" not in r.output


def test_by_nonsense_refused_by_the_services(national):
    """The services refuse an unknown grouping too (BadInput), not just the CLI's choice."""
    from anjian.workflow.errors import BadInput

    with pytest.raises(BadInput):
        status(national.db, T0, by="nonsense")
    with pytest.raises(BadInput):
        tally(national.db, [], "nonsense")


def test_table_headers_are_chinese(national):
    """The table of `status --by province` heads its name column 省, `--by city` 市, `--by county` 县区."""
    for by, word in (("province", "省"), ("city", "市"), ("county", "县区")):
        r = national.run("status", "--by", by)
        assert r.exit_code == 0, r.output
        header = r.output.splitlines()[2].split()
        assert header[:2] == ["代码", word], (by, header)
        assert "全部达标" in header and "已开展" in header
    r = national.run("units", "--level", "township", "--by", "province")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].split()[:3] == ["代码", "省", "单位数"]
    assert "共 41352 个单位，31 个省" in r.output


def test_csv_output_parses(national, china):
    """`status --by province --format csv` and `units --by city --format csv` parse with the csv
    module: a header, then one row per province or city, with the CSV's township counts."""
    r = national.run("status", "--by", "province", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:2] == ["代码", "省"]
    assert len(rows) == 32 and all(len(row) == len(rows[0]) for row in rows)
    col = rows[0].index("全部达标")
    assert {row[0]: int(row[col].split("/")[1]) for row in rows[1:]} == dict(china.per_province)
    r = national.run("units", "--level", "township", "--by", "city", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["代码"]: int(row["单位数"]) for row in rows} == dict(china.per_city)


def test_moves_show_in_the_province_totals(national_registry_copy, china):
    """After `advance_batch` starts some townships (actor "bench") and others are set accepted directly,
    `status --by province` started/accepted move by exactly those, province by province — and so do the
    per-city rows and `units --state building --by province`."""
    national = at_our_time(national_registry_copy)
    rng = random.Random(5)
    pool = [r["code"] for r in china.towns]
    picked = rng.sample(pool, 300)
    start, accept = picked[:200], picked[200:]
    before = {r["code"]: r for r in as_json(national.run("status", "--by", "province", "--format", "json"))["counties"]}
    with national.db.read() as s:
        states = dict(s.execute(select(Unit.code, Unit.state).where(Unit.code.in_(picked))).all())
    assert set(states.values()) == {"not_started"}, "the module's other tests move no township"
    res = advance_batch(national.db, [BatchRow(i, code, "start") for i, code in enumerate(start, 2)], "bench",
                        parse_time("2014-12-16T09:00"))
    assert not res.problems and len(res.applied) == 200
    with national.db.write() as s:
        s.execute(update(UnitState).where(UnitState.unit_code.in_(accept)).values(state="accepted"))
    after = {r["code"]: r for r in as_json(national.run("status", "--by", "province", "--format", "json"))["counties"]}
    prov = {c: china.up(china.unit[c]["parent_code"], "province") for c in picked}
    started = Counter(prov[c] for c in picked)
    accepted = Counter(prov[c] for c in accept)
    for code in before:
        assert after[code]["started"] - before[code]["started"] == started[code], code
        assert after[code]["accepted"] - before[code]["accepted"] == accepted[code], code
        assert after[code]["townships"] == before[code]["townships"], code
    building = as_json(national.run("units", "--level", "township", "--state", "building", "--by", "province",
                                    "--format", "json"))
    assert {g["code"]: g["units"] for g in building} == dict(Counter(prov[c] for c in start))
    cities = {r["code"]: r for r in as_json(national.run("status", "--by", "city", "--format", "json"))["counties"]}
    city_of = {c: china.up(china.unit[c]["parent_code"], "city") for c in picked}
    for code, r in cities.items():
        assert r["accepted"] == sum(1 for c in accept if city_of[c] == code), code
