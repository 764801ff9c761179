"""The whole campaign replayed day by day, 2014-12-01 to 2017-01-31, on a small registry: the exact set of
notices the rules call for (working-day shifts, escalations to the supervising level), each sent once,
none on a day off, none for what was met in time; the early warnings once a week to a county and its city
office while a milestone is at risk; the city moved by the scheduler on the stage dates; and, after
downtime, only the latest missed rung."""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import cache

import chinese_calendar
import pytest
from sqlalchemy import select
from support import PG, record_checklist

from anjian.workflow.clock import SHANGHAI, from_utc_text, local_date, utc_text
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.reminders.warnings import week_rung
from anjian.workflow.services import contacts
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.services.registry import initialize
from anjian.workflow.services.stages import tick_city
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Notice, NoticeItem

pytestmark = pytest.mark.slow  # a whole campaign replayed day by day, a few hundred passes

D = dt.date.fromisoformat
FIRST, LAST = D("2014-12-01"), D("2017-01-31")
CITY, A, B = "130800", "130821", "130827"  # 承德市, 承德县, 宽城满族自治县
T1, T2 = "130821106", "130821100"  # 高寺台镇 (provincial + county demonstration, key), 下板城镇 (ordinary)
T3, T4, T5 = "130827100", "130827103", "130827101"  # 宽城镇 (key, made county demo), 板城镇 (key), 龙须门镇 (ordinary)

REGISTRY = f"""code,name,level,parent_code,cohorts
{CITY},承德市,city,,
{A},承德县,county,{CITY},
{T1},高寺台镇,township,{A},provincial_demo;county_demo;key
{T2},下板城镇,township,{A},
{B},宽城满族自治县,county,{CITY},
{T3},宽城镇,township,{B},key
{T4},板城镇,township,{B},key
{T5},龙须门镇,township,{B},
"""

CONTACTS = {
    CITY: [("市安委办", "office@chengde.gov.cn"), ("市安监局", "bureau@chengde.gov.cn")],
    A: [("承德县安监局", "county@chengde-xian.gov.cn")],
    B: [("宽城县安监局", "county@kuancheng.gov.cn")],
    T1: [("高寺台镇安监站", "gaositai@chengde-xian.gov.cn")],
    T2: [("下板城镇安监站", "xiabancheng@chengde-xian.gov.cn")],
    T3: [("宽城镇安监站", "kuancheng@kuancheng.gov.cn"), ("宽城镇镇长", "mayor@kuancheng.gov.cn")],
    T4: [("板城镇安监站", "bancheng@kuancheng.gov.cn")],
    T5: [("龙须门镇安监站", "longxumen@kuancheng.gov.cn")],
}
SUPERVISOR = {T1: A, T2: A, T3: B, T4: B, T5: B, A: CITY, B: CITY}
DEADLINES = {"plan_submission": D("2014-12-30"), "provincial_demo": D("2015-03-31"), "county_demo": D("2015-06-30"),
             "demo_review": D("2015-07-31"), "key_compliance": D("2015-12-31"), "full_coverage": D("2016-12-31")}

# What the officials do, each at 10:00 on the day (after that morning's 08:30 pass).
SCENARIO = [
    ("2014-12-15", "record", A, "county.leadership_group", "承德县乡镇安全监管规范化建设领导小组（组长：县长）"),
    ("2014-12-19", "advance", A, "submit_plan", None),
    ("2014-12-22", "designate", T3, "county_demo"),
    ("2015-01-05", "advance", T1, "start", None),
    ("2015-01-05", "advance", T3, "start", None),
    ("2015-01-06", "record", B, "county.leadership_group", "宽城县乡镇安全监管规范化建设领导小组（组长：县长）"),
    ("2015-01-08", "advance", B, "submit_plan", None),  # late: overdue since 2014-12-31
    ("2015-03-16", "fill", T1, frozenset({"provincial_demo", "county_demo", "key"})),
    ("2015-03-18", "advance", T1, "apply", None),
    ("2015-03-20", "advance", T1, "accept", "现场验收合格，六有齐全"),  # on time for 03-31
    ("2015-05-06", "advance", T2, "start", None),
    ("2015-07-08", "fill", T3, frozenset({"county_demo", "key"})),
    ("2015-07-10", "advance", T3, "apply", None),
    ("2015-07-15", "advance", T3, "accept", "整改后验收合格"),  # late for 06-30
    ("2015-07-20", "advance", A, "approve_demonstration", "承德县示范创建工作验收合格"),
    ("2015-08-10", "advance", B, "approve_demonstration", "宽城县示范创建工作验收合格"),  # late for 07-31
    ("2015-11-02", "advance", T4, "start", None),
    ("2015-12-10", "advance", T5, "start", None),
    ("2016-01-15", "fill", T4, frozenset({"key"})),
    ("2016-01-18", "advance", T4, "apply", None),
    ("2016-01-20", "advance", T4, "accept", "验收合格"),  # late for 2015-12-31
    ("2016-11-21", "fill", T2, frozenset()),
    ("2016-11-23", "advance", T2, "apply", None),
    ("2016-11-25", "advance", T2, "accept", "验收合格"),  # on time for 2016-12-31
]

# Worked out by hand from SCENARIO: (unit, milestone, owed from, met on). "owed from" is the day a
# designation made it apply (None: from the start); "met on" the day an action at 10:00 met it.
OWED = [
    (A, "plan_submission", None, "2014-12-19"),
    (B, "plan_submission", None, "2015-01-08"),
    (A, "provincial_demo", None, "2015-03-20"),  # 宽城 has no provincial demonstration township: not owed
    (A, "county_demo", None, "2015-03-20"),
    (B, "county_demo", None, "2015-07-15"),
    (A, "demo_review", None, "2015-07-20"),
    (B, "demo_review", None, "2015-08-10"),
    (A, "key_compliance", None, "2015-05-06"),  # T1 accepted, T2 started
    (B, "key_compliance", None, "2016-01-20"),  # T3, T4 accepted, T5 started
    (A, "full_coverage", None, "2016-11-25"),
    (B, "full_coverage", None, None),
    (T1, "provincial_demo", None, "2015-03-20"),
    (T1, "county_demo", None, "2015-03-20"),
    (T1, "key_compliance", None, "2015-03-20"),
    (T1, "full_coverage", None, "2015-03-20"),
    (T2, "key_compliance", None, "2015-05-06"),  # an ordinary township must have started
    (T2, "full_coverage", None, "2016-11-25"),
    (T3, "county_demo", "2014-12-22", "2015-07-15"),
    (T3, "key_compliance", None, "2015-07-15"),
    (T3, "full_coverage", None, "2015-07-15"),
    (T4, "key_compliance", None, "2016-01-20"),
    (T4, "full_coverage", None, "2016-01-20"),
    (T5, "key_compliance", None, "2015-12-10"),
    (T5, "full_coverage", None, None),
]


# -- the rules, computed here from the official calendar (not from anjian's ladder) ------------------
def workday(day: dt.date) -> bool:
    return chinese_calendar.is_workday(day)


def back_to_workday(day: dt.date) -> dt.date:
    while not workday(day):
        day -= dt.timedelta(days=1)
    return day


def on_to_workday(day: dt.date) -> dt.date:
    while not workday(day):
        day += dt.timedelta(days=1)
    return day


@cache
def rungs(deadline: dt.date) -> list[tuple[dt.date, str, str]]:
    """(day, rung, kind) in order: 30/14/7/3/1 days before, moved back to a working day (the later
    rung wins a shared day), then the day after and every 7 days, moved on to a working day."""
    before: dict[dt.date, str] = {}
    for n in (30, 14, 7, 3, 1):
        before[back_to_workday(deadline - dt.timedelta(days=n))] = f"d-{n}"
    out = [(day, name, "reminder") for day, name in sorted(before.items())]
    late, last_day = 1, None
    while deadline + dt.timedelta(days=late) <= LAST:
        day = on_to_workday(deadline + dt.timedelta(days=late))
        if day != last_day:
            out.append((day, f"o+{late}", "overdue"))
        last_day = day
        late += 7
    return out


def emails(unit: str) -> list[str]:
    return [address for _, address in CONTACTS[unit]]


def expected_notices() -> set[tuple[str, str, str, str, str]]:
    """(day, recipient, unit, milestone, rung) of every item the rules call for over the replay.

    Each working day's pass sends, for each milestone still owed, the latest rung whose day has come
    (reminders up to the deadline, overdue notices after it) unless that recipient already had it or
    a later one; an overdue rung also goes to the supervising unit's contacts.
    """
    out = set()
    sent: dict[tuple[str, str, str], int] = {}
    day = FIRST
    while day <= LAST:
        if workday(day):
            for unit, milestone, owed_from, met_on in OWED:
                if owed_from and day <= D(owed_from) or met_on and day > D(met_on):
                    continue
                deadline = DEADLINES[milestone]
                ladder = rungs(deadline)
                due = [(i, r) for i, r in enumerate(ladder) if r[0] <= day and (r[2] == "overdue") == (day > deadline)]
                if not due:
                    continue
                index, (_, name, kind) = due[-1]
                to = emails(unit) + (emails(SUPERVISOR[unit]) if kind == "overdue" else [])
                for address in to:
                    if sent.get((address, unit, milestone), -1) < index:
                        sent[(address, unit, milestone)] = index
                        out.add((day.isoformat(), address, unit, milestone, name))
        day += dt.timedelta(days=1)
    return out


# -- the replay ------------------------------------------------------------------------------------
def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def load_small_registry(db, tmp_path) -> None:
    """承德市 with two counties and five townships, contacts for every unit and the city office."""
    path = tmp_path / "registry.csv"
    path.write_text(REGISTRY, encoding="utf-8")
    start = at(FIRST, 8)
    initialize(db, str(path), None, start, "admin")
    for unit, people in CONTACTS.items():
        for name, address in people:
            contacts.add(db, unit, name, address, None, "admin", start)


def act(db, step: tuple, when: dt.datetime, plan_file: str) -> None:
    """One official's action of SCENARIO at `when`."""
    verb, unit, *rest = step
    if verb == "record":
        record(db, unit, rest[0], rest[1], f"county-{unit}", when)
    elif verb == "designate":
        designate(db, [DesignateRow(0, unit, rest[0])], f"county-{SUPERVISOR[unit]}", when)
    elif verb == "fill":
        record_checklist(db, unit, rest[0], actor=f"chief-{unit}", now=when)
    elif rest[0] == "submit_plan":
        advance(db, unit, "submit_plan", f"county-{unit}", when, evidence=(plan_file,))
    elif rest[0] in ("accept", "approve_demonstration"):
        advance(db, unit, rest[0], "city-inspector", when, note=rest[1])  # never the applicant
    else:
        advance(db, unit, rest[0], f"chief-{unit}", when)


@pytest.fixture(scope="module")
def module_db(tmp_path_factory) -> Iterator[Database]:
    """One database for the whole replay (it takes a few hundred passes): SQLite, or PostgreSQL under ANJIAN_TEST_PG."""
    if not PG:
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('replay') / 'anjian.db'}")
        yield db
        db.dispose()
        return
    from sqlalchemy import create_engine, text

    name = f"anjian_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(f"{PG}/{name}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def replayed(module_db, tmp_path_factory) -> dict:
    """The campaign replayed: a pass (and a stage tick) every day at 08:30, SCENARIO's actions at 10:00."""
    db, tmp_path = module_db, tmp_path_factory.mktemp("replay-files")
    load_small_registry(db, tmp_path)
    plan_file = tmp_path / "县区推进方案.pdf"
    plan_file.write_bytes(b"%PDF-1.4 plan")
    outbox = tmp_path / "outbox"
    settings = NotifySettings()
    steps: dict[str, list[tuple]] = {}
    for day, *step in SCENARIO:
        steps.setdefault(day, []).append(tuple(step))
    passes = []
    day = FIRST
    while day <= LAST:
        tick_city(db, at(day, 8, 30))
        passes.append(run_pass(db, at(day, 8, 30), settings, outbox))
        for step in steps.get(day.isoformat(), []):
            act(db, step, at(day, 10), str(plan_file))
        day += dt.timedelta(days=1)
    with db.read() as s:
        every = [tuple(r) for r in s.execute(select(NoticeItem.rung_date, NoticeItem.recipient, NoticeItem.unit_code,
                                                    NoticeItem.milestone, NoticeItem.rung, NoticeItem.notice_id))]
        notices = {n.id: n for n in s.scalars(select(Notice))}
        city_moves = [(r.at, r.actor, r.action, r.from_state, r.to_state)
                      for r in s.scalars(select(AuditRow).where(AuditRow.unit_code == CITY).order_by(AuditRow.seq))]
    # the ladder's items (d-N, o+N), and the early warnings' (w-YYYY-Www) beside them
    items = [i for i in every if not i[4].startswith("w-")]
    warnings = [i for i in every if i[4].startswith("w-")]
    return {"db": db, "items": items, "warnings": warnings, "every": every, "notices": notices, "outbox": outbox,
            "passes": passes, "city": city_moves}


def test_replay_sends_exactly_the_notices_the_rules_call_for(replayed):
    """Over 2014-12-01..2017-01-31 the notices carry exactly the (day, recipient, unit, milestone, rung) the rules give."""
    actual = {i[:5] for i in replayed["items"]}
    expected = expected_notices()
    assert sorted(actual - expected) == []
    assert sorted(expected - actual) == []


def test_replay_matches_the_hand_worked_dates(replayed):
    """Spot checks written out by hand: the make-up Saturday, the New Year shifts, the make-up Sunday 2017-01-22."""
    def own(unit: str, milestone: str) -> list[tuple[str, str]]:
        return sorted((d, rung) for d, rec, u, m, rung, _ in replayed["items"]
                      if u == unit and m == milestone and rec == emails(unit)[0])

    assert own(T1, "provincial_demo") == [("2015-02-28", "d-30"), ("2015-03-17", "d-14")]
    assert own(B, "plan_submission") == [
        ("2014-12-01", "d-30"), ("2014-12-16", "d-14"), ("2014-12-23", "d-7"), ("2014-12-26", "d-3"),
        ("2014-12-29", "d-1"), ("2014-12-31", "o+1"), ("2015-01-07", "o+8")]
    assert own(A, "plan_submission") == [("2014-12-01", "d-30"), ("2014-12-16", "d-14")]
    assert own(B, "demo_review") == [
        ("2015-07-01", "d-30"), ("2015-07-17", "d-14"), ("2015-07-24", "d-7"), ("2015-07-28", "d-3"),
        ("2015-07-30", "d-1"), ("2015-08-03", "o+1"), ("2015-08-10", "o+8")]
    assert own(T4, "key_compliance") == [
        ("2015-12-01", "d-30"), ("2015-12-17", "d-14"), ("2015-12-24", "d-7"), ("2015-12-28", "d-3"),
        ("2015-12-30", "d-1"), ("2016-01-04", "o+1"), ("2016-01-08", "o+8"), ("2016-01-15", "o+15")]
    assert own(T5, "key_compliance") == [("2015-12-01", "d-30")]
    assert own(T5, "full_coverage") == [
        ("2016-12-01", "d-30"), ("2016-12-16", "d-14"), ("2016-12-23", "d-7"), ("2016-12-28", "d-3"),
        ("2016-12-30", "d-1"), ("2017-01-03", "o+1"), ("2017-01-09", "o+8"), ("2017-01-16", "o+15"), ("2017-01-22", "o+22")]
    assert own(T3, "county_demo") == [
        ("2015-05-29", "d-30"), ("2015-06-16", "d-14"), ("2015-06-23", "d-7"), ("2015-06-26", "d-3"),
        ("2015-06-29", "d-1"), ("2015-07-01", "o+1"), ("2015-07-08", "o+8"), ("2015-07-15", "o+15")]


def test_overdue_notices_escalate_to_the_supervising_level(replayed):
    """A township's overdue rungs also reach its county; a county's reach the city office; reminders do not."""
    def to(address: str, unit: str, milestone: str) -> list[tuple[str, str]]:
        return sorted((d, rung) for d, rec, u, m, rung, _ in replayed["items"] if rec == address and u == unit and m == milestone)

    kuancheng = emails(B)[0]
    assert to(kuancheng, T5, "full_coverage") == [
        ("2017-01-03", "o+1"), ("2017-01-09", "o+8"), ("2017-01-16", "o+15"), ("2017-01-22", "o+22")]
    assert to(kuancheng, T3, "county_demo") == [("2015-07-01", "o+1"), ("2015-07-08", "o+8"), ("2015-07-15", "o+15")]
    for office in emails(CITY):
        assert to(office, B, "plan_submission") == [("2014-12-31", "o+1"), ("2015-01-07", "o+8")]
        assert to(office, B, "key_compliance") == [("2016-01-04", "o+1"), ("2016-01-08", "o+8"), ("2016-01-15", "o+15")]
        assert to(office, T5, "full_coverage") == []  # a township's lateness goes to its county, not the city
    assert to(emails(A)[0], T3, "county_demo") == []  # nor to another county
    assert all(rung.startswith("o+") for _, rec, u, _, rung, _ in replayed["items"] if rec in emails(SUPERVISOR[u]))


def test_nothing_is_sent_for_milestones_met_in_time(replayed):
    """下板城镇 met everything before its first reminder: it hears nothing; nothing met by its deadline is ever overdue."""
    items = replayed["items"]
    assert [i for i in items if i[2] == T2] == []
    assert [i for i in items if i[2] == A and i[3] in ("key_compliance", "full_coverage")] == []
    in_time = {(u, m) for u, m, _, met in OWED if met and D(met) <= DEADLINES[m]}
    assert [i for i in items if (i[2], i[3]) in in_time and i[4].startswith("o+")] == []
    for unit, milestone, _, met in OWED:
        if met:
            assert all(D(d) <= D(met) for d, _, u, m, _, _ in items if (u, m) == (unit, milestone))


def test_early_warnings_go_weekly_to_a_county_and_its_city_office(replayed):
    """An early warning goes out on the first working day of each ISO week a county milestone still owed is
    at risk within 60 days of its deadline — the day the deadline comes within 60 days in its first week —
    to the county's contact and the city office's alike, and never once the milestone is met: 承德县 hears of
    provincial_demo from 2015-01-30 each week until 高寺台镇 is accepted (2015-03-20), of full_coverage until
    下板城镇 is (2016-11-25)."""
    by: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
    for day, rec, unit, milestone, rung, _ in replayed["warnings"]:
        assert unit in (A, B) and rung == week_rung(D(day))
        (met,) = [m for u, ms, _, m in OWED if (u, ms) == (unit, milestone)]
        assert met is None or D(day) <= D(met)
        by.setdefault((unit, milestone, rung), set()).add((day, rec))
    for (unit, milestone, _), got in by.items():
        assert {rec for _, rec in got} == set(emails(unit) + emails(CITY))
        (day,) = {D(d) for d, _ in got}
        first = max(day - dt.timedelta(days=day.weekday()), DEADLINES[milestone] - dt.timedelta(days=60))
        assert day == on_to_workday(first) and day <= DEADLINES[milestone]
    weeks = {(u, m): sorted(min(got)[0] for (u2, m2, _), got in by.items() if (u2, m2) == (u, m)) for u, m, _ in by}
    assert weeks[(A, "provincial_demo")] == ["2015-01-30", "2015-02-02", "2015-02-09", "2015-02-16", "2015-02-25",
                                             "2015-03-02", "2015-03-09", "2015-03-16"]
    assert weeks[(A, "full_coverage")][0] == "2016-11-01" and weeks[(A, "full_coverage")][-1] == "2016-11-21"
    assert weeks[(B, "full_coverage")][-1] == "2016-12-26"


def test_each_item_and_each_message_is_sent_once(replayed):
    """No (recipient, unit, milestone, rung) twice; one message per recipient per day; every notice sent."""
    items = replayed["every"]
    keys = Counter((rec, u, m, rung) for _, rec, u, m, rung, _ in items)
    assert [k for k, n in keys.items() if n > 1] == []
    per_day = Counter((d, rec) for d, rec, *_ in {(i[0], i[1], i[5]) for i in items})
    assert [k for k, n in per_day.items() if n > 1] == []
    notices = replayed["notices"]
    assert {n.status for n in notices.values()} == {"sent"}
    assert {i[5] for i in items} == set(notices)
    for d, rec, _, _, rung, nid in items:
        n = notices[nid]
        assert (n.recipient, local_date(from_utc_text(n.created_at)).isoformat()) == (rec, d)
        if rung.startswith("o+"):
            assert n.kind == "overdue"


def test_nothing_goes_out_on_a_day_off(replayed):
    """Every notice is dated a working day of the official calendar; passes on days off send nothing."""
    assert all(workday(D(i[0])) for i in replayed["every"])
    assert {D(i[0]) for i in replayed["items"]} & {D("2015-02-28"), D("2017-01-22")}  # make-up days do send
    for p in replayed["passes"]:
        if not workday(D(p.today)):
            assert not p.workday and p.sent == [] and p.failed == [] and p.deferred == []


def test_the_outbox_holds_each_message_once(replayed):
    """One complete .eml per notice, named by its id, addressed to its recipient; no temporary files left."""
    outbox = replayed["outbox"]
    files = sorted(outbox.iterdir())
    assert [f.name for f in files if not f.name.endswith(".eml")] == []
    assert sorted(f.stem for f in files) == sorted(replayed["notices"])
    sent_on = {nid: d for d, *_, nid in replayed["every"]}
    for f in files:
        msg = email.message_from_bytes(f.read_bytes())
        n = replayed["notices"][f.stem]
        assert msg["X-Anjian-Notice"] == n.id
        assert f"<{n.recipient}>" in msg["To"]
        day = local_date(email.utils.parsedate_to_datetime(msg["Date"])).isoformat()
        assert day == sent_on[n.id] == f"{f.stem[:4]}-{f.stem[4:6]}-{f.stem[6:8]}"


def test_the_scheduler_moved_the_city_on_the_stage_dates(replayed):
    """tick_city moved 承德市 at the first 08:30 of 2015-01-01, 2015-07-01, 2016-01-01 and 2017-01-01, as `scheduler`."""
    moves = [m for m in replayed["city"] if m[2] != "contact_add"]
    assert moves == [
        (utc_text(at(D("2015-01-01"), 8, 30)), "scheduler", "begin_demonstration", "mobilization", "demonstration"),
        (utc_text(at(D("2015-07-01"), 8, 30)), "scheduler", "begin_key_compliance", "demonstration", "key_compliance"),
        (utc_text(at(D("2016-01-01"), 8, 30)), "scheduler", "begin_full_coverage", "key_compliance", "full_coverage"),
        (utc_text(at(D("2017-01-01"), 8, 30)), "scheduler", "close", "full_coverage", "closed"),
    ]


# -- downtime --------------------------------------------------------------------------------------
@pytest.fixture
def small(fresh_db, tmp_path) -> dict:
    """The small registry with its contacts, and an outbox, without any pass yet."""
    load_small_registry(fresh_db, tmp_path)
    return {"db": fresh_db, "outbox": tmp_path / "outbox"}


def items_of(db, unit: str, milestone: str) -> list[tuple[str, str, str]]:
    with db.read() as s:
        return sorted(tuple(r) for r in s.execute(
            select(NoticeItem.rung_date, NoticeItem.recipient, NoticeItem.rung)
            .where(NoticeItem.unit_code == unit, NoticeItem.milestone == milestone)))


def test_after_downtime_the_d3_pass_sends_only_d3_once(small):
    """With no pass between d-30 (2015-02-28) and d-3 (2015-03-27), the d-3 pass sends d-3 alone, and only once."""
    db, outbox, settings = small["db"], small["outbox"], NotifySettings()
    run_pass(db, at(D("2015-02-28"), 8, 30), settings, outbox)
    first = run_pass(db, at(D("2015-03-27"), 8, 30), settings, outbox)
    again = run_pass(db, at(D("2015-03-27"), 15, 0), settings, outbox)
    mine = emails(T1)[0]
    assert [(d, r) for d, rec, r in items_of(db, T1, "provincial_demo") if rec == mine] == [
        ("2015-02-28", "d-30"), ("2015-03-27", "d-3")]
    assert sum(1 for s in first.sent if s.recipient == mine) == 1
    assert again.sent == []


def test_after_a_long_outage_only_the_latest_overdue_rung_is_sent(small):
    """Down from d-1 (2015-03-30) to 2015-05-06: one overdue notice, o+36, reaches the township and its county."""
    db, outbox, settings = small["db"], small["outbox"], NotifySettings()
    run_pass(db, at(D("2015-03-30"), 8, 30), settings, outbox)
    run_pass(db, at(D("2015-05-06"), 8, 30), settings, outbox)
    run_pass(db, at(D("2015-05-06"), 9, 30), settings, outbox)
    got = items_of(db, T1, "provincial_demo")
    assert got == sorted([("2015-03-30", emails(T1)[0], "d-1"),
                          ("2015-05-06", emails(T1)[0], "o+36"), ("2015-05-06", emails(A)[0], "o+36")])


def test_a_pass_on_a_day_off_sends_nothing_and_the_next_working_day_catches_up(small):
    """On Sunday 2015-03-01 nothing goes out; Monday 03-02 sends d-30 (its day, 02-28, passed unseen)."""
    db, outbox, settings = small["db"], small["outbox"], NotifySettings()
    sunday = run_pass(db, at(D("2015-03-01"), 8, 30), settings, outbox)
    assert not sunday.workday and sunday.sent == []
    run_pass(db, at(D("2015-03-02"), 8, 30), settings, outbox)
    assert [(d, r) for d, rec, r in items_of(db, T1, "provincial_demo") if rec == emails(T1)[0]] == [("2015-03-02", "d-30")]

