"""China's working days: the official calendar's holidays and make-up days, the fallback for years it
does not cover, and the office's own schedule loaded with `anjian calendar load`."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from anjian.workflow.reminders.workdays import FALLBACK, OFFICE, OFFICIAL, WorkCalendar, load_office_calendar
from anjian.workflow.store.models import AuditRow, CalendarDay

D = dt.date.fromisoformat


def days(first: str, last: str) -> list[dt.date]:
    start, end = D(first), D(last)
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def calendar_of(db) -> WorkCalendar:
    with db.read() as session:
        return load_office_calendar(session)


def write_csv(path, *lines: str):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the official calendar -------------------------------------------------------------------------
def test_sunday_2015_02_15_was_a_make_up_working_day():
    """2015-02-15 was a Sunday worked in exchange for the Spring Festival holiday."""
    day = D("2015-02-15")
    assert day.weekday() == 6
    assert WorkCalendar().is_workday(day)


def test_saturday_2015_02_28_was_a_make_up_working_day():
    """2015-02-28 was a Saturday worked in exchange for the Spring Festival holiday."""
    day = D("2015-02-28")
    assert day.weekday() == 5
    assert WorkCalendar().is_workday(day)


def test_spring_festival_2015_is_off_from_the_18th_to_the_24th():
    """Every day of 2015-02-18..24 is off, weekdays included; the days around it are worked."""
    cal = WorkCalendar()
    assert not any(cal.is_workday(d) for d in days("2015-02-18", "2015-02-24"))
    assert cal.is_workday(D("2015-02-17"))
    assert cal.is_workday(D("2015-02-25"))


def test_national_day_2015_is_off_from_the_1st_to_the_7th():
    """2015-10-01..07 are off; Saturday 2015-10-10 was worked in exchange."""
    cal = WorkCalendar()
    assert not any(cal.is_workday(d) for d in days("2015-10-01", "2015-10-07"))
    assert cal.is_workday(D("2015-10-08"))
    assert cal.is_workday(D("2015-10-10"))


def test_an_ordinary_weekend_is_off_and_a_weekday_is_worked():
    """Outside the holiday notices the week is Monday to Friday."""
    cal = WorkCalendar()
    assert cal.is_workday(D("2015-03-02"))
    assert not cal.is_workday(D("2015-03-07"))
    assert not cal.is_workday(D("2015-03-08"))


def test_on_or_before_crosses_the_spring_festival_backwards():
    """The working day on or before a Spring Festival day is the Tuesday before it; a working day is itself."""
    cal = WorkCalendar()
    assert cal.on_or_before(D("2015-02-22")) == D("2015-02-17")
    assert cal.on_or_before(D("2015-03-01")) == D("2015-02-28")
    assert cal.on_or_before(D("2015-02-15")) == D("2015-02-15")


def test_on_or_after_crosses_national_day_forwards():
    """The working day on or after a National Day holiday is 2015-10-08."""
    cal = WorkCalendar()
    assert cal.on_or_after(D("2015-10-01")) == D("2015-10-08")
    assert cal.on_or_after(D("2015-10-08")) == D("2015-10-08")


def test_the_campaign_years_come_from_the_official_calendar():
    """2014–2017 are covered by the packaged official calendar: no fallback warning for the campaign."""
    cal = WorkCalendar()
    assert [cal.source(y) for y in (2014, 2015, 2016, 2017)] == [OFFICIAL] * 4
    assert cal.fallback_years(D("2014-12-01"), D("2017-01-31")) == []


# -- the fallback for an uncovered year ------------------------------------------------------------
def test_2027_is_not_covered_and_uses_the_fallback():
    """chinesecalendar stops before 2027, so 2027 is computed by the fallback and said so."""
    import chinese_calendar

    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D("2027-06-01"))
    cal = WorkCalendar()
    assert cal.source(2027) == FALLBACK
    assert cal.fallback_years(D("2026-12-01"), D("2028-01-31")) == [2027, 2028]


def test_the_fallback_takes_statutory_holidays_from_the_holidays_library():
    """In 2027 each weekday that `holidays` lists as a Chinese statutory holiday is off."""
    import holidays

    cal = WorkCalendar()
    statutory = sorted(d for d in holidays.China(years=2027) if d.weekday() < 5)
    assert D("2027-10-01") in statutory  # National Day, a Friday
    assert D("2027-02-08") in statutory  # Spring Festival, a Monday
    assert statutory and not any(cal.is_workday(d) for d in statutory)


def test_the_fallback_works_other_weekdays_and_rests_on_weekends():
    """Without a notice of make-up days, the fallback works Monday to Friday and never a weekend."""
    cal = WorkCalendar()
    assert cal.is_workday(D("2027-03-03"))  # a Wednesday
    assert not cal.is_workday(D("2027-03-06"))  # a Saturday
    assert cal.on_or_before(D("2027-10-04")) == D("2027-09-30")
    assert cal.on_or_after(D("2027-10-01")) == D("2027-10-06")


# -- the office's schedule -------------------------------------------------------------------------
def test_an_office_schedule_overrides_for_its_year_only():
    """Days the office lists win over every other source in that year; other years are untouched."""
    cal = WorkCalendar({D("2027-02-20"): True, D("2027-02-11"): False})
    assert cal.source(2027) == OFFICE
    assert cal.is_workday(D("2027-02-20"))  # a Saturday the office works
    assert not cal.is_workday(D("2027-02-11"))  # a Thursday the office rests
    assert cal.is_workday(D("2027-02-12"))  # unlisted weekday
    assert cal.source(2015) == OFFICIAL
    assert cal.is_workday(D("2015-02-28"))


def test_calendar_load_makes_a_year_official_for_this_database(chengde, cli, tmp_path):
    """`calendar load` stores the rows, reports the days per year, and the database's calendar uses them."""
    path = write_csv(tmp_path / "2027.csv", "date,workday,name", "2027-02-05,休,春节", "2027-02-11,0,春节",
                     "2027-02-20,班,春节调休", "2027-10-09,1,国庆调休")
    r = cli("calendar", "load", str(path), now="2026-12-20T09:00")
    assert r.exit_code == 0, r.output
    assert "2027 年 4 天" in r.output
    cal = calendar_of(chengde)
    assert cal.source(2027) == OFFICE
    assert not cal.is_workday(D("2027-02-11"))
    assert cal.is_workday(D("2027-02-20"))
    assert cal.is_workday(D("2027-10-09"))
    with chengde.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == "calendar_load")) == 1


def test_calendar_load_can_override_an_official_year(chengde, cli, tmp_path):
    """An office schedule for 2015 replaces the packaged one for 2015: a worked Saturday can become a day off."""
    path = write_csv(tmp_path / "2015.csv", "date,workday", "2015-02-28,0")
    assert cli("calendar", "load", str(path)).exit_code == 0
    cal = calendar_of(chengde)
    assert cal.source(2015) == OFFICE
    assert not cal.is_workday(D("2015-02-28"))
    assert cal.on_or_before(D("2015-03-01")) == D("2015-02-27")
    assert cal.source(2016) == OFFICIAL


def test_loading_a_year_again_replaces_its_earlier_schedule(chengde, cli, tmp_path):
    """A second file for the same year replaces the first one's days; it does not add to them."""
    first = write_csv(tmp_path / "a.csv", "date,workday", "2027-02-11,0", "2027-02-12,0")
    second = write_csv(tmp_path / "b.csv", "date,workday", "2027-02-20,1")
    assert cli("calendar", "load", str(first)).exit_code == 0
    assert cli("calendar", "load", str(second)).exit_code == 0
    cal = calendar_of(chengde)
    assert cal.is_workday(D("2027-02-11"))
    assert cal.is_workday(D("2027-02-20"))
    with chengde.read() as s:
        assert sorted(s.scalars(select(CalendarDay.day))) == ["2027-02-20"]


def test_calendar_load_refuses_a_file_with_bad_rows_and_loads_none(chengde, cli, tmp_path):
    """A bad date, a bad workday word or a repeated day anywhere: exit 2, each line named, nothing loaded."""
    path = write_csv(tmp_path / "bad.csv", "date,workday,name", "2027-02-11,0,春节", "2027-02-30,0,没有这天",
                     "2027-02-12,maybe,", "2027-02-11,1,重复", "２０２７-02-13,0,全角")
    r = cli("calendar", "load", str(path))
    assert r.exit_code == 2, r.output
    for line in ("第 3 行", "第 4 行", "第 5 行", "第 6 行"):
        assert line in r.output
    assert "第 2 行" not in r.output
    assert "bad.csv：4 行有问题，整批未写入" in r.output
    with chengde.read() as s:
        assert s.scalar(select(func.count()).select_from(CalendarDay)) == 0
        assert s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == "calendar_load")) == 0
    assert calendar_of(chengde).source(2027) == FALLBACK


def test_calendar_load_refuses_a_file_without_the_workday_column(chengde, cli, tmp_path):
    """A header that does not name `date,workday` is bad input (exit 2)."""
    path = write_csv(tmp_path / "bad.csv", "date,name", "2027-02-11,春节")
    r = cli("calendar", "load", str(path))
    assert r.exit_code == 2
    assert "workday" in r.output


def test_calendar_load_refuses_an_empty_schedule(chengde, cli, tmp_path):
    """A header with no days is refused rather than silently wiping nothing."""
    path = write_csv(tmp_path / "empty.csv", "date,workday")
    r = cli("calendar", "load", str(path))
    assert r.exit_code == 2
    assert "文件中没有列出任何日期" in r.output


def test_calendar_load_reads_an_xlsx_sheet_with_chinese_headers(chengde, cli, tmp_path):
    """`calendar load` takes an .xlsx workbook whose header is 日期,工作日,节日 (班/休 words, real dates)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["日期", "工作日", "节日"])
    ws.append([dt.date(2027, 2, 11), "休", "春节"])
    ws.append([dt.date(2027, 2, 20), "班", "春节调休"])
    path = tmp_path / "2027年安排.xlsx"
    wb.save(path)
    r = cli("calendar", "load", str(path))
    assert r.exit_code == 0, r.output
    cal = calendar_of(chengde)
    assert cal.source(2027) == OFFICE
    assert not cal.is_workday(D("2027-02-11"))
    assert cal.is_workday(D("2027-02-20"))
    with chengde.read() as s:
        assert sorted(s.scalars(select(CalendarDay.name))) == ["春节", "春节调休"]


def test_calendar_load_refuses_a_file_that_is_not_a_workbook(chengde, cli, tmp_path):
    """A .xlsx that is no workbook exits 2 in Chinese, naming the file; nothing is loaded."""
    path = tmp_path / "2027.xlsx"
    path.write_bytes(b"date,workday\n2027-02-11,0\n")
    r = cli("calendar", "load", str(path))
    assert r.exit_code == 2
    assert f"{path}：不是 Excel 或 WPS 保存的 .xlsx 工作簿" in r.output
    assert calendar_of(chengde).source(2027) == FALLBACK


def test_an_office_file_of_make_up_days_keeps_the_holidays_off():
    """A schedule that lists only make-up working days leaves the official holidays as days off."""
    cal = WorkCalendar({dt.date(2015, 2, 15): True, dt.date(2015, 2, 28): True})
    assert cal.is_workday(dt.date(2015, 2, 15))
    assert not cal.is_workday(dt.date(2015, 2, 19))
    assert cal.source(2015) == "office"
