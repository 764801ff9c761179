"""The early warning (预警) as a notice: the reminder pass sends a county whose pace makes a coming milestone
unlikely, and its city office, one warning per milestone and ISO week through the same exactly-once claim
as every reminder, on working days only, in Chinese (or English), and stops once the pace recovers or the
milestone is met. A real database (SQLite file, or PostgreSQL with ANJIAN_TEST_PG) and the file outbox.

The campaign walk: 承德县 (130821) started twelve townships and its provincial demonstration township
高寺台镇 in January and had them apply on 9 March, and has accepted none by Monday 16 March 2015, two
weeks before provincial_demo's deadline (31 March): its forecast is about 1%, a warning."""

from __future__ import annotations

import datetime as dt
import email
import json
import threading
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select
from support import T0, at, checklist_values

from anjian.workflow.reminders.run import run_pass
from anjian.workflow.reminders.warnings import week_rung
from anjian.workflow.services import contacts
from anjian.workflow.services.advance import BatchRow, advance, advance_batch
from anjian.workflow.services.checklist import RecordRow, record_batch
from anjian.workflow.settings import ForecastSettings, NotifySettings, forecast_settings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Notice, NoticeItem, Unit

CHENGDE_COUNTY, GAOSITAI, FENGNING, CITY = "130821", "130821106", "130826", "130800"
COUNTY_MAIL, OFFICE_MAIL = "li@cdx.gov.cn", "office@cd.gov.cn"
W12 = "w-2015-W12"  # 16–22 March 2015
W13 = "w-2015-W13"  # 23–29 March 2015
# The working days of W12 on which the ladder also has something due (the d-14 reminder of provincial_demo
# on Tuesday, plan_submission's weekly overdue notice on Wednesday), so that Monday 23 March has nothing
# due but the warnings.
WEEK12 = ["2015-03-16T08:30", "2015-03-16T15:00", "2015-03-17T08:30", "2015-03-18T08:30", "2015-03-20T08:30"]


@pytest.fixture
def slow_county(chengde):
    """承德县 as in the module's docstring, with an e-mail contact at the county and one at the city office."""
    contacts.add(chengde, "承德县", "李科长", COUNTY_MAIL, None, "admin", T0)
    contacts.add(chengde, "承德市", "市安委办", OFFICE_MAIL, None, "admin", T0)
    with chengde.read() as session:
        towns = list(session.scalars(select(Unit.code).where(Unit.parent_code == CHENGDE_COUNTY).order_by(Unit.code)))
    started = [GAOSITAI] + [c for c in towns if c != GAOSITAI][:12]
    advance_batch(chengde, [BatchRow(i, c, "start") for i, c in enumerate(started)], "chief", at("2015-01-05T09:00"))
    rows = [RecordRow(0, c, item, value) for c in started
            for item, value in checklist_values(frozenset({"provincial_demo"} if c == GAOSITAI else ())).items()]
    assert not record_batch(chengde, rows, "chief", at("2015-01-06T09:00")).problems
    advance_batch(chengde, [BatchRow(i, c, "apply") for i, c in enumerate(started)], "chief", at("2015-03-09T09:00"))
    return chengde


def passes(db: Database, outbox: Path, *moments: str, settings: NotifySettings | None = None) -> list:
    """One reminder pass at each moment (Shanghai time), into the file outbox `outbox`."""
    return [run_pass(db, at(m), settings or NotifySettings(), outbox) for m in moments]


def warned(db: Database) -> list[tuple[str, str, str, str]]:
    """Every warning item claimed so far: (recipient, unit, milestone, week), sorted (one per notice item)."""
    with db.read() as session:
        rows = session.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone, NoticeItem.rung)
                               .where(NoticeItem.rung.like("w-%")))
        return sorted(tuple(r) for r in rows)


def notice_of(db: Database, recipient: str, week: str) -> Notice:
    """The one notice that carried `recipient`'s warnings of `week`."""
    with db.read() as session:
        ids = set(session.scalars(select(NoticeItem.notice_id).where(NoticeItem.recipient == recipient,
                                                                   NoticeItem.rung == week)))
        assert len(ids) == 1, ids
        return session.get(Notice, ids.pop())


def message(outbox: Path, notice_id: str) -> email.message.EmailMessage:
    return email.message_from_bytes((outbox / f"{notice_id}.eml").read_bytes(), policy=policy.default)


def ours(items: list[tuple[str, str, str, str]], unit: str = CHENGDE_COUNTY) -> list[tuple[str, str, str, str]]:
    return [i for i in items if i[1] == unit]


def accept_others(db: Database, count: int) -> None:
    """承德县 accepts `count` of its other applied townships, two a working day from Monday 16 March on
    (after that day's pass): a pace that makes provincial_demo likely again."""
    with db.read() as session:
        applied = list(session.scalars(select(Unit.code).where(Unit.parent_code == CHENGDE_COUNTY, Unit.code != GAOSITAI,
                                                               Unit.state == "applied").order_by(Unit.code)))
    for i, code in enumerate(applied[:count]):
        day = dt.date(2015, 3, 16) + dt.timedelta(days=i // 2)
        advance(db, code, "accept", "city_inspector", at(f"{day}T10:{i:02d}"), note="现场核查合格")


def test_the_week_rung_is_the_iso_week():
    """A warning's rung names the ISO week it goes out in (ISO years differ from calendar years at the ends)."""
    assert week_rung(dt.date(2015, 3, 16)) == week_rung(dt.date(2015, 3, 22)) == W12
    assert week_rung(dt.date(2015, 3, 23)) == W13
    assert week_rung(dt.date(2016, 1, 1)) == "w-2015-W53"


def test_a_warned_county_and_its_city_office_are_warned_once_a_week(slow_county, tmp_path):
    """Passes on five working days of one week warn the county and the city office once each; the next ISO
    week each gets a new warning; every notice is one file in the outbox."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12)
    week = ours(warned(slow_county))
    assert week == [(COUNTY_MAIL, CHENGDE_COUNTY, "provincial_demo", W12), (OFFICE_MAIL, CHENGDE_COUNTY, "provincial_demo", W12)]
    passes(slow_county, outbox, "2015-03-23T08:30", "2015-03-23T16:00", "2015-03-25T08:30")
    assert ours(warned(slow_county)) == sorted(week + [(COUNTY_MAIL, CHENGDE_COUNTY, "provincial_demo", W13),
                                                       (OFFICE_MAIL, CHENGDE_COUNTY, "provincial_demo", W13)])
    with slow_county.read() as session:
        sent = list(session.scalars(select(Notice.id).where(Notice.status == "sent")))
    assert sorted(p.stem for p in outbox.glob("*.eml")) == sorted(sent)
    # the city office is told of every warned county it supervises, the county of its own only
    assert {u for r, u, _, w in warned(slow_county) if r == OFFICE_MAIL and w == W12} >= {CHENGDE_COUNTY, FENGNING}
    assert {u for r, u, _, _ in warned(slow_county) if r == COUNTY_MAIL} == {CHENGDE_COUNTY}


def test_the_warning_says_in_chinese_what_it_means_and_what_to_do(slow_county, tmp_path):
    """On a Monday with nothing else due the county's notice is a warning alone: its subject, title, the
    chance, the expected day and the townships still needed, and what to do, in Chinese."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12)
    (result,) = passes(slow_county, outbox, "2015-03-23T08:30")
    notice = notice_of(slow_county, COUNTY_MAIL, W13)
    assert notice.kind == "warning"
    assert [s.kind for s in result.sent if s.recipient == COUNTY_MAIL] == ["warning"]
    msg = message(outbox, notice.id)
    assert msg["Subject"] == "【预警通知】承德市承德县：乡镇安全监管规范化建设有 1 项节点按目前进度可能不能按期完成"
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("关于乡镇安全监管规范化建设节点按期完成风险的预警通知\n")
    assert "一、进度预警事项（共 1 项）" in text
    assert "1. 按目前进度，承德市承德县“省定5家示范镇完成规范化建设”节点（期限 2015年3月31日，还剩 8 天）按期完成的可能性" in text
    assert "尚需验收 1 个乡镇。" in text
    assert "不足 1%" in text or "约为" in text
    assert "倒排工期" in text and "每周提示一次" in text
    assert "进度预警事项" in msg.get_body(("html",)).get_content()
    office = message(outbox, notice_of(slow_county, OFFICE_MAIL, W13).id).get_body(("plain",)).get_content()
    assert "承德市承德县“省定5家示范镇完成规范化建设”" in office and "承德市丰宁满族自治县“" in office


def test_the_stored_warning_carries_the_forecast(slow_county, tmp_path):
    """The notice's stored content keeps the line's probability, expected day and townships needed, as the status forecast gives them."""
    from anjian.workflow.views.status import status

    passes(slow_county, tmp_path / "outbox", "2015-03-16T08:30")
    with slow_county.read() as session:
        from anjian.workflow.store.models import NoticeContent

        stored = json.loads(session.get(NoticeContent, notice_of(slow_county, COUNTY_MAIL, W12).id).content)
    (line,) = [x for x in stored["lines"] if x[6] == "warning"]
    forecast = {f.milestone: f for c in status(slow_county, at("2015-03-16T08:30")).counties if c.code == CHENGDE_COUNTY
                for f in c.forecast}["provincial_demo"]
    assert forecast.warning
    assert line[:8] == [CHENGDE_COUNTY, "承德市承德县", "provincial_demo", "省定5家示范镇完成规范化建设", "2015-03-31", W12,
                        "warning", 15]
    assert line[8:] == [forecast.probability, forecast.expected.isoformat() if forecast.expected else None, 1]


def test_no_warning_once_the_pace_recovers(slow_county, tmp_path):
    """承德县 accepts ten townships in week 12: the next Monday its provincial_demo is likely again and it is
    not warned (the county's contact gets nothing), while 丰宁, still stalled, is."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12[:1])
    accept_others(slow_county, 10)
    passes(slow_county, outbox, *WEEK12[2:], "2015-03-23T08:30")
    assert (COUNTY_MAIL, CHENGDE_COUNTY, "provincial_demo", W12) in warned(slow_county)
    assert [w for w in ours(warned(slow_county)) if w[3] == W13] == []
    assert (OFFICE_MAIL, FENGNING, "provincial_demo", W13) in warned(slow_county)


def test_no_warning_once_the_milestone_is_met(slow_county, tmp_path):
    """Once 高寺台镇 is accepted, 承德县 has met provincial_demo and is not warned of it again."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12)
    advance(slow_county, GAOSITAI, "accept", "city_inspector", at("2015-03-20T10:00"), note="现场核查合格")
    passes(slow_county, outbox, "2015-03-23T08:30", "2015-03-30T08:30")
    assert [w[3] for w in ours(warned(slow_county))] == [W12, W12]


def test_an_overdue_milestone_gets_its_overdue_notice_not_a_warning(slow_county, tmp_path):
    """The day after provincial_demo's deadline 承德县 is told it is overdue, and warned of it no more."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12, "2015-04-01T08:30")
    with slow_county.read() as session:
        late = set(session.scalars(select(NoticeItem.recipient).where(
            NoticeItem.unit_code == CHENGDE_COUNTY, NoticeItem.milestone == "provincial_demo", NoticeItem.rung == "o+1")))
    assert late == {COUNTY_MAIL, OFFICE_MAIL}
    assert {w[3] for w in warned(slow_county)} == {W12}


def test_no_warning_on_a_day_off(slow_county, tmp_path):
    """A pass on Sunday 22 March sends nothing, so week 12 has no warning; Monday's pass sends week 13's."""
    outbox = tmp_path / "outbox"
    (sunday,) = passes(slow_county, outbox, "2015-03-22T08:30")
    assert not sunday.workday and sunday.sent == [] and warned(slow_county) == []
    passes(slow_county, outbox, "2015-03-23T08:30")
    assert {w[3] for w in warned(slow_county)} == {W13}


def test_the_warning_is_in_english_with_the_english_setting(slow_county, tmp_path):
    """With language = "en" the warning lines read in English."""
    outbox = tmp_path / "outbox"
    passes(slow_county, outbox, *WEEK12)
    passes(slow_county, outbox, "2015-03-23T08:30", settings=NotifySettings(language="en"))
    msg = message(outbox, notice_of(slow_county, COUNTY_MAIL, W13).id)
    assert msg["Subject"].startswith("[Early warning] 承德市承德县: 1 township safety standardization milestone(s)")
    text = msg.get_body(("plain",)).get_content()
    assert "Early warnings (1):" in text and "At the present pace the chance of meeting it is" in text
    assert "1 township(s) still to be accepted" in text and "按目前进度" not in text


def test_a_second_pass_cannot_send_it_twice(slow_county, db_url, tmp_path):
    """Two passes at the same moment, on two connections and two outboxes, send each warning once between them."""
    other = Database(db_url)
    results: dict[str, object] = {}

    def one(name: str, db: Database) -> None:
        results[name] = run_pass(db, at("2015-03-16T08:30"), NotifySettings(), tmp_path / name)

    try:
        runs = [threading.Thread(target=one, args=(n, d)) for n, d in (("a", slow_county), ("b", other))]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        again = run_pass(other, at("2015-03-16T09:00"), NotifySettings(), tmp_path / "c")
    finally:
        other.dispose()
    assert again.sent == []
    items = ours(warned(slow_county))
    assert items == [(COUNTY_MAIL, CHENGDE_COUNTY, "provincial_demo", W12), (OFFICE_MAIL, CHENGDE_COUNTY, "provincial_demo", W12)]
    carried = [s for r in results.values() for s in r.sent if CHENGDE_COUNTY in s.units]
    assert sorted(s.recipient for s in carried) == [COUNTY_MAIL, OFFICE_MAIL]
    files = [p for name in ("a", "b", "c") for p in (tmp_path / name).glob("*.eml")]
    assert sorted(p.stem for p in files) == sorted(s.notice_id for r in results.values() for s in r.sent)


def test_remind_dry_run_lists_the_warnings_as_planned(slow_county, cli, tmp_path):
    """`remind --dry-run` at a Monday with only warnings due plans them as kind "warning" and sends nothing;
    the table names the kind 预警通知."""
    passes(slow_county, tmp_path / "outbox", *WEEK12)
    before = warned(slow_county)
    r = cli("remind", "--dry-run", "--format", "json", now="2015-03-23T08:30")
    assert r.exit_code == 0, r.output
    planned = {s["recipient"]: s for s in json.loads(r.output)["sent"]}
    assert planned[COUNTY_MAIL]["kind"] == planned[OFFICE_MAIL]["kind"] == "warning"
    assert planned[COUNTY_MAIL]["status"] == "planned" and planned[COUNTY_MAIL]["milestones"] == ["provincial_demo"]
    assert planned[COUNTY_MAIL]["units"] == [CHENGDE_COUNTY]
    table = cli("remind", "--dry-run", now="2015-03-23T08:30")
    assert table.exit_code == 0 and "预警通知" in table.output
    assert warned(slow_county) == before


def test_warnings_can_be_turned_off(slow_county, tmp_path):
    """With [forecast] notify = false the pass sends the ladder's notices but no warning."""
    off = NotifySettings(forecast=ForecastSettings(notify=False))
    (result,) = passes(slow_county, tmp_path / "outbox", "2015-03-16T08:30", settings=off)
    assert result.sent and warned(slow_county) == []
    assert {s.kind for s in result.sent} <= {"reminder", "overdue"}


def test_the_notify_setting_comes_from_the_config_file_and_the_environment(tmp_path):
    """`notify` is on by default, read from [forecast] notify and ANJIAN_FORECAST_NOTIFY, handed to the pass's settings, and checked."""
    from anjian.workflow.errors import BadInput
    from anjian.workflow.settings import notify_settings

    assert forecast_settings(tmp_path, {}).notify is True
    (tmp_path / "config.toml").write_text("[forecast]\nnotify = false\n", encoding="utf-8")
    assert forecast_settings(tmp_path, {}).notify is False
    assert notify_settings(tmp_path, {}).forecast.notify is False
    assert forecast_settings(tmp_path, {"ANJIAN_FORECAST_NOTIFY": "on"}).notify is True
    with pytest.raises(BadInput, match="ANJIAN_FORECAST_NOTIFY"):
        forecast_settings(tmp_path, {"ANJIAN_FORECAST_NOTIFY": "maybe"})
