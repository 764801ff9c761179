"""`anjian deadlines [UNIT] [--ics FILE]`: the milestones that apply, the working days each is reminded
on (shifted ones marked), statuses, an iCalendar export, and the warning for a year without an official
holiday schedule."""

from __future__ import annotations

import datetime as dt
import json

from icalendar import Calendar
from support import T0

from anjian.states.campaign import builtin_text
from anjian.workflow.services.advance import advance
from anjian.workflow.views.deadlines import deadlines, to_ics

GAOSITAI = "130821106"  # 高寺台镇, a provincial demonstration township of 承德县
CHENGDE_XIAN = "130821"  # 承德县, which has one
SHUANGQIAO = "130802"  # 双桥区, which has none
MARCH = "2015-03-01T09:00"
ALL = ["plan_submission", "provincial_demo", "county_demo", "demo_review", "key_compliance", "full_coverage"]


def rows_of(output: str) -> dict[str, str]:
    """The table's line for each milestone id."""
    return {line.split()[0].strip("│|"): line for line in output.splitlines()
            if line.split() and line.split()[0].strip("│|") in ALL}


def as_json(cli, *args: str, now: str = MARCH) -> dict:
    r = cli("deadlines", *args, "--format", "json", now=now)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_a_township_lists_only_the_milestones_that_apply_to_it(chengde, cli):
    """高寺台镇 (provincial demonstration, not key) owes provincial_demo, key_compliance (to have started) and full_coverage."""
    data = as_json(cli, "高寺台镇")
    assert data["unit"] == GAOSITAI
    assert "高寺台镇" in data["unit_name"]
    assert [m["id"] for m in data["milestones"]] == ["provincial_demo", "key_compliance", "full_coverage"]
    assert {m["status"] for m in data["milestones"]} == {"pending"}


def test_reminder_days_are_listed_with_the_shifted_ones_marked(chengde, cli):
    """The table shows provincial_demo's reminders 02-28* 03-17 03-24 03-27* 03-30 and its first overdue days."""
    r = cli("deadlines", "高寺台镇", now=MARCH)
    assert r.exit_code == 0, r.output
    row = rows_of(r.output)["provincial_demo"]
    assert "2015-03-31" in row
    assert "02-28*、03-17、03-24、03-27*、03-30" in row
    assert "04-01、04-08、04-15、04-22" in row
    assert "未到期" in row  # the status in words (the JSON keeps "pending")
    full = rows_of(r.output)["full_coverage"]
    assert "12-01、12-16*、12-23*、12-28、12-30" in full
    assert "2017-01-03、2017-01-09、2017-01-16、2017-01-22" in full


def test_json_gives_nominal_and_sending_day_of_each_rung(chengde, cli):
    """Each rung carries its nominal day, the working day it is sent on, and whether it was shifted."""
    data = as_json(cli, GAOSITAI)
    demo = next(m for m in data["milestones"] if m["id"] == "provincial_demo")
    assert demo["reminders"][0] == {"rung": "d-30", "kind": "reminder", "nominal": "2015-03-01", "day": "2015-02-28",
                                    "shifted": True}
    assert [r["day"] for r in demo["overdue"]] == ["2015-04-01", "2015-04-08", "2015-04-15", "2015-04-22"]
    key = next(m for m in data["milestones"] if m["id"] == "key_compliance")
    assert key["overdue"][0] == {"rung": "o+1", "kind": "overdue", "nominal": "2016-01-01", "day": "2016-01-04",
                                 "shifted": True}
    assert data["calendar"] == {"2014": "official", "2015": "official", "2016": "official"}
    assert data["warnings"] == []


def test_statuses_follow_the_unit_and_the_day(chengde, cli):
    """Started, 高寺台镇 has met key_compliance; after 03-31 provincial_demo is overdue with its days late."""
    advance(chengde, GAOSITAI, "start", "chief", T0)
    data = as_json(cli, GAOSITAI, now="2015-04-02T09:00")
    status = {m["id"]: (m["status"], m["days"]) for m in data["milestones"]}
    assert status == {"provincial_demo": ("overdue", 2), "key_compliance": ("met", 0), "full_coverage": ("pending", 639)}


def test_a_county_owes_provincial_demo_only_if_it_has_such_a_township(chengde, cli):
    """承德县 has a provincial demonstration township and owes all six milestones; 双桥区 owes five."""
    assert [m["id"] for m in as_json(cli, CHENGDE_XIAN)["milestones"]] == ALL
    assert [m["id"] for m in as_json(cli, SHUANGQIAO)["milestones"]] == [m for m in ALL if m != "provincial_demo"]


def test_without_a_unit_every_milestone_is_listed_without_status(chengde, cli):
    """Plain `deadlines` lists the campaign's six milestones, none with a status."""
    r = cli("deadlines", now=MARCH)
    assert r.exit_code == 0, r.output
    assert "全部节点" in r.output
    assert list(rows_of(r.output)) == ALL
    data = as_json(cli)
    assert data["unit"] is None
    assert {m["status"] for m in data["milestones"]} == {None}


def test_an_unknown_unit_is_bad_input(chengde, cli):
    """A unit that does not exist is refused with exit 2."""
    r = cli("deadlines", "不存在镇", now=MARCH)
    assert r.exit_code == 2


def test_ics_holds_an_all_day_event_per_deadline_and_reminder_day(chengde, cli, tmp_path):
    """`--ics` writes a calendar icalendar parses back: all-day VEVENTs, one per deadline and per reminder day."""
    path = tmp_path / "高寺台镇.ics"
    r = cli("deadlines", "高寺台镇", "--ics", str(path), now=MARCH)
    assert r.exit_code == 0, r.output
    assert f"已写入 {path}" in r.output
    cal = Calendar.from_ical(path.read_bytes())
    events = cal.walk("VEVENT")
    expected = {("2015-03-31", "【期限】"), ("2015-12-31", "【期限】"), ("2016-12-31", "【期限】")}
    expected |= {(d, "【提醒】") for d in ("2015-02-28", "2015-03-17", "2015-03-24", "2015-03-27", "2015-03-30",
                                        "2015-12-01", "2015-12-17", "2015-12-24", "2015-12-28", "2015-12-30",
                                        "2016-12-01", "2016-12-16", "2016-12-23", "2016-12-28", "2016-12-30")}
    got = {(e.decoded("dtstart").isoformat(), str(e["summary"])[:4]) for e in events}
    assert got == expected
    assert len(events) == len(expected)
    for e in events:
        start, end = e.decoded("dtstart"), e.decoded("dtend")
        assert type(start) is dt.date and type(end) is dt.date  # all-day, not a time of day
        assert end - start == dt.timedelta(days=1)
    assert len({str(e["uid"]) for e in events}) == len(events)
    shifted = next(e for e in events if e.decoded("dtstart") == dt.date(2015, 2, 28))
    assert "还剩 31 天" in str(shifted["summary"])
    assert "原定 2015-03-01" in str(shifted["description"])
    assert "高寺台镇" in str(cal["x-wr-calname"])


def test_ics_of_the_whole_campaign_covers_all_six_deadlines(chengde):
    """The campaign-wide export has the six deadlines plus their reminder days."""
    res = deadlines(chengde, T0)
    cal = Calendar.from_ical(to_ics(res))
    summaries = [str(e["summary"]) for e in cal.walk("VEVENT")]
    assert sum(s.startswith("【期限】") for s in summaries) == 6
    assert len(summaries) == 6 + sum(len(m.reminders) for m in res.milestones)


def test_a_year_without_an_official_schedule_prints_the_warning(fresh_db, cli, tmp_path):
    """With full_coverage moved to 2027-10-08, `deadlines` warns that 2027 is computed by the fallback."""
    from anjian.workflow.services.registry import initialize

    path = tmp_path / "chengde-2027.toml"
    text = builtin_text("chengde-2014")
    path.write_text(text.replace('deadline = 2016-12-31\nstage = "full_coverage"',
                                 'deadline = 2027-10-08\nstage = "full_coverage"'), encoding="utf-8")
    initialize(fresh_db, None, str(path), T0, "admin")
    r = cli("deadlines", "高寺台镇", now=MARCH)
    assert r.exit_code == 0, r.output
    assert "⚠ 2027 年尚无官方节假日安排" in r.output
    assert "2027 fallback" in r.output
    row = rows_of(r.output)["full_coverage"]
    assert "09-30*" in row  # d-7 (National Day) and d-3 (its observed day) fall back to Thursday 09-30
    data = as_json(cli, "高寺台镇")
    assert data["calendar"]["2027"] == "fallback"
    assert len(data["warnings"]) == 1


def test_the_warning_also_covers_today_in_an_uncovered_year(chengde, cli):
    """Looking at the deadlines from 2027 warns about 2027 even though no deadline falls in it."""
    r = cli("deadlines", now="2027-03-01T09:00")
    assert r.exit_code == 0, r.output
    assert "⚠ 2027 年" in r.output


def test_an_office_schedule_silences_the_warning(chengde, cli, tmp_path):
    """Once the office loads 2027's schedule, `deadlines` reads it as `office` and no longer warns."""
    path = tmp_path / "2027.csv"
    path.write_text("date,workday\n2027-10-01,0\n2027-10-09,1\n", encoding="utf-8")
    assert cli("calendar", "load", str(path)).exit_code == 0
    data = as_json(cli, now="2027-03-01T09:00")
    assert data["calendar"]["2027"] == "office"
    assert data["warnings"] == []


def test_an_ics_path_that_cannot_be_written_is_bad_input(chengde, cli, tmp_path):
    """`--ics` into a missing folder or onto a directory exits 2 naming the path, not 1 as a bug."""
    for target in (tmp_path / "missing" / "x.ics", tmp_path):
        r = cli("deadlines", "高寺台镇", "--ics", str(target), now=MARCH)
        assert r.exit_code == 2, r.output
        assert f"--ics {target}" in r.output
