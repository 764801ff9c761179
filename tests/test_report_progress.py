"""`anjian report progress`: the city's state per county, the stages and milestones against today, who
is late or overdue by how many days, and the trend rebuilt from the audit log — checked in every
format against a campaign driven through the real services at known times."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import (
    T0,
    TEST_OFFICIALS,
    add_officials,
    at,
    new_database_url,
    record_checklist,
)

from anjian.workflow.reports import progress as rp
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import record
from anjian.workflow.store.db import Database

NOW = "2015-04-10T10:00"
KUANCHENG, CHENGDE_COUNTY, LUANPING, XINGLONG = "130827", "130821", "130824", "130822"
YUERYA, KUANCHENG_TOWN, GAOSITAI, ZHANGBAIWAN = "130827102", "130827100", "130821106", "130824106"
OFFICIALS = {**TEST_OFFICIALS, "cd_li": ("county_official", CHENGDE_COUNTY)}


def submit_plan(db: Database, county: str, official: str, when: str, plan: Path, store: Path) -> None:
    record(db, county, "county.leadership_group", "组长：县长（政字〔2014〕1号）", official, at(when))
    advance(db, county, "submit_plan", official, at(when), evidence=(str(plan),), evidence_dir=store)


def township_steps(code: str, cohorts: frozenset[str], start: str, apply: str | None = None,
                   accepted: str | None = None) -> list[tuple[str, Callable[[Database], object]]]:
    """A township's path as timed steps: started with its checklist filled, applied, accepted by a city inspector."""
    steps = [(start, lambda db: advance(db, code, "start", "chief", at(start))),
             (start, lambda db: record_checklist(db, code, cohorts, now=at(start)))]
    if apply:
        steps.append((apply, lambda db: advance(db, code, "apply", "chief", at(apply))))
    if accepted:
        steps.append((accepted, lambda db: advance(db, code, "accept", "city_inspector", at(accepted),
                                                   note="经现场验收，符合规范化建设标准")))
    return steps


def drive(db: Database, folder: Path) -> Path:
    """The campaign to 2015-04-10, each step at its own time and in time order (as the log is written):
    宽城 plans on time, 承德县 5 days late, the other ten never; of the five provincial demonstration
    townships 峪耳崖镇 is accepted on time, 高寺台镇 3 days late, 张百湾镇 is building and 大阁镇, 卧龙镇
    never started; 宽城镇 is accepted on 2015-04-05. Returns the evidence store."""
    from anjian.workflow.services.registry import initialize

    initialize(db, None, None, T0, "admin")
    add_officials(db, OFFICIALS)
    store = folder / "evidence"
    plan = folder / "推进方案.pdf"
    plan.write_bytes("乡镇安全监管规范化建设推进方案".encode() * 20)
    steps = [
        ("2014-12-20T09:00", lambda db: submit_plan(db, KUANCHENG, "li", "2014-12-20T09:00", plan, store)),
        ("2015-01-04T09:00", lambda db: submit_plan(db, CHENGDE_COUNTY, "cd_li", "2015-01-04T09:00", plan, store)),
        *township_steps(YUERYA, frozenset({"provincial_demo"}), "2015-01-05T09:00", "2015-02-10T09:00", "2015-03-20T15:00"),
        *township_steps(KUANCHENG_TOWN, frozenset(), "2015-01-10T09:00", "2015-03-25T09:00", "2015-04-05T10:00"),
        *township_steps(GAOSITAI, frozenset({"provincial_demo"}), "2015-02-01T09:00", "2015-03-30T09:00", "2015-04-03T10:00"),
        ("2015-02-15T09:00", lambda db: advance(db, ZHANGBAIWAN, "start", "chief", at("2015-02-15T09:00"))),
    ]
    for _, step in sorted(steps, key=lambda s: s[0]):  # stable: a township's checklist follows its start
        step(db)
    return store


@dataclass(frozen=True)
class Driven:
    db: Database
    url: str
    store: Path


@pytest.fixture(scope="module")
def driven(tmp_path_factory) -> Iterator[Driven]:
    """One database with the campaign driven to 2015-04-10 (read-only for every test here)."""
    folder = tmp_path_factory.mktemp("report")
    with new_database_url(folder) as url:
        db = Database(url)
        store = drive(db, folder)
        yield Driven(db, url, store)
        db.dispose()


@pytest.fixture(scope="module")
def report(driven) -> rp.ProgressReport:
    return rp.build(driven.db, at(NOW))


def run(driven: Driven, *args: str, now: str = NOW):
    """`anjian --now NOW ARGS…` against the driven database."""
    from anjian.workflow.cli import cli

    env = {"ANJIAN_DB": driven.url, "ANJIAN_NOW": None, "ANJIAN_USER": None, "ANJIAN_EVIDENCE": str(driven.store)}
    return CliRunner().invoke(cli, ["--now", now, *args], env=env, catch_exceptions=False)


class Tables(HTMLParser):
    """The rows of every table in a page, by table id: each row its attributes and (attributes, text) cells."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[str, list[tuple[dict, list[tuple[dict, str]]]]] = {}
        self.ids: set[str] = set()
        self._table: str | None = None
        self._cell: list | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append((a, []))
        elif tag in ("td", "th") and self._table is not None and self.tables[self._table]:
            self._cell = [a, ""]
        elif tag == "br" and self._cell is not None:
            self._cell[1] += "\n"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1][1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def by_code(page: Tables, table: str) -> dict[str, tuple[dict, list[tuple[dict, str]]]]:
    return {a["data-code"]: (a, cells) for a, cells in page.tables[table] if "data-code" in a}


# -- the data ----------------------------------------------------------------------------------------
def test_each_county_has_its_townships_accepted_over_total(report):
    """Per county: accepted/total and started, as the units table has them at the report's time."""
    rows = {c.code: (c.accepted, c.started, c.townships) for c in report.counties}
    assert len(rows) == 12
    assert rows[KUANCHENG] == (2, 2, 18)
    assert rows[CHENGDE_COUNTY] == (1, 1, 23)
    assert rows[LUANPING] == (0, 1, 20)
    assert rows[XINGLONG] == (0, 0, 20)
    assert report.totals.accepted == 3 and report.totals.townships == 219


def test_counties_on_time_late_and_overdue_by_the_right_days(report):
    """宽城 planned on time; 承德县 5 days late and its provincial township 3 days late; 滦平县 still owes
    both, 101 and 10 days overdue; 兴隆县 owes no provincial township at all."""
    def words(code: str) -> dict[str, tuple[str, int]]:
        return {m: (o.status, o.days) for m, o in report.outcomes[code].items()}

    assert words(KUANCHENG)["plan_submission"] == ("on_time", 0)
    assert words(KUANCHENG)["provincial_demo"] == ("on_time", 0)
    assert words(CHENGDE_COUNTY)["plan_submission"] == ("late", 5)
    assert words(CHENGDE_COUNTY)["provincial_demo"] == ("late", 3)
    assert words(LUANPING)["plan_submission"] == ("overdue", 101)
    assert words(LUANPING)["provincial_demo"] == ("overdue", 10)
    assert words(XINGLONG)["plan_submission"] == ("overdue", 101)
    assert "provincial_demo" not in words(XINGLONG)
    assert words(KUANCHENG)["county_demo"] == ("pending", 81)
    late = {c.code for c in report.counties if c.overdue}
    assert len(late) == 10 and KUANCHENG not in late and CHENGDE_COUNTY not in late


def test_the_overdue_units_are_the_unaccepted_provincial_townships_and_the_planless_counties(report):
    """Three provincial townships are 10 days overdue; ten counties have missed the plan deadline."""
    towns = {u.name: [(x.id, x.days) for x in u.late] for u in report.overdue if u.level == "township"}
    assert towns == {"张百湾镇": [("provincial_demo", 10)], "大阁镇": [("provincial_demo", 10)],
                     "卧龙镇": [("provincial_demo", 10)]}
    counties = [u for u in report.overdue if u.level == "county"]
    assert len(counties) == 10
    assert all(("plan_submission", 101) in [(x.id, x.days) for x in u.late] for u in counties)
    assert report.totals.overdue_townships == 3 and report.totals.counties_overdue == 10


def test_the_trend_changes_on_the_days_townships_started_and_were_accepted(report):
    """宽城's counts change on each start and acceptance day, from the registry load on."""
    points = [(p.day.isoformat(), p.accepted, p.started) for p in report.trend[KUANCHENG]]
    assert points == [("2014-12-15", 0, 0), ("2015-01-05", 0, 1), ("2015-01-10", 0, 2), ("2015-03-20", 1, 2),
                      ("2015-04-05", 2, 2)]
    assert [(p.day.isoformat(), p.accepted) for p in report.trend[CHENGDE_COUNTY]][-1] == ("2015-04-03", 1)
    assert len(report.trend) == 12


def test_an_earlier_now_cuts_the_trend_and_the_outcomes_there(driven):
    """As of 2015-03-25 宽城 has one acceptance in its trend, 承德县's provincial township is pending with
    6 days left, and the report says units changed after it."""
    early = rp.build(driven.db, at("2015-03-25T12:00"))
    assert [(p.day.isoformat(), p.accepted) for p in early.trend[KUANCHENG]][-1] == ("2015-03-20", 1)
    assert early.outcomes[CHENGDE_COUNTY]["provincial_demo"].status == "pending"
    assert early.outcomes[CHENGDE_COUNTY]["provincial_demo"].days == 6
    assert early.stale
    assert "之后还有变更" in rp.markdown(early)
    assert not rp.build(driven.db, at(NOW)).stale


def test_an_earlier_now_shows_the_states_as_they_stood_then(driven):
    """As of 2015-03-25 宽城 had one township accepted (峪耳崖镇; 宽城镇 only on 04-05), 承德县 none, and
    滦平县's 张百湾镇 was already started — the counts come from the log, not today's units table; and
    the overdue list has what was overdue then (the ten counties without a plan), not what is now."""
    early = rp.build(driven.db, at("2015-03-25T12:00"))
    rows = {c.code: (c.accepted, c.started, c.townships) for c in early.counties}
    assert rows[KUANCHENG] == (1, 2, 18)
    assert rows[CHENGDE_COUNTY] == (0, 1, 23)
    assert rows[LUANPING] == (0, 1, 20)
    assert early.totals.accepted == 1
    assert {u.name for u in early.overdue if u.level == "township"} == set()
    assert len([u for u in early.overdue if u.level == "county"]) == 10
    before = rp.build(driven.db, at("2014-12-16T09:00"))
    assert before.totals.started == 0 and before.totals.accepted == 0


def test_a_county_report_holds_that_county_only(driven):
    """--county narrows every part of the report to the county: its row, its trend, its overdue units."""
    rep = rp.build(driven.db, at(NOW), "宽城")
    assert [c.code for c in rep.counties] == [KUANCHENG]
    assert list(rep.trend) == [KUANCHENG]
    assert rep.overdue == [] and rep.scope == "宽城满族自治县"
    rep = rp.build(driven.db, at(NOW), "滦平县")
    assert {u.name for u in rep.overdue} == {"滦平县", "张百湾镇"}


# -- Markdown and CSV ----------------------------------------------------------------------------------
def md_table(text: str, heading: str) -> list[list[str]]:
    """The rows (without the header) of the first table under a Markdown heading."""
    lines = text.split(f"## {heading}", 1)[1].splitlines()
    rows = [line for line in lines if line.startswith("|")]
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip("|").split(" | ")])
    assert rows
    return block[2:]


def test_markdown_shows_bars_fractions_and_the_late_days(driven):
    """The Markdown report has a text bar and accepted/total per county, the counties' milestone
    outcomes in days, the overdue units in bold, and the trend's change days."""
    r = run(driven, "report", "progress", "--format", "md")
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert text.startswith("# 承德市乡镇安全监管规范化建设进度报告（承德市）")
    counties = {row[0]: row for row in md_table(text, "县区进度")}
    assert counties["宽城满族自治县"][2].endswith("2/18") and "█" in counties["宽城满族自治县"][2]
    assert counties["承德县"][2].endswith("1/23")
    assert "逾期101天" in counties["滦平县"][8] and counties["宽城满族自治县"][8] == "—"
    outcomes = {row[0]: row[1:] for row in md_table(text, "各县区节点完成情况")}
    assert outcomes["承德县"][:2] == ["**晚5天**", "**晚3天**"]
    assert outcomes["宽城满族自治县"][:3] == ["按期", "按期", "剩81天"]
    assert outcomes["兴隆县"][:2] == ["**逾期101天**", "—"]
    overdue = {row[1]: row for row in md_table(text, "逾期单位（13 个）")}
    assert "**省定5家示范镇完成规范化建设 逾期 10 天**" in overdue["**张百湾镇**"][4]
    trend = [row for row in md_table(text, "趋势（已达标乡镇数的变化）") if row[0] == "宽城满族自治县"]
    assert [(r[1], r[2]) for r in trend] == [("2014-12-15", "0"), ("2015-01-05", "0"), ("2015-01-10", "0"),
                                            ("2015-03-20", "1"), ("2015-04-05", "2")]
    stages = md_table(text, "阶段与时间节点")
    assert [r[3] for r in stages] == ["已结束", "进行中", "未开始", "未开始"]


def test_csv_has_one_row_per_county_with_numbers_and_outcomes(driven):
    """CSV: Chinese headers, one row per county, counts as plain numbers, the outcome of each milestone."""
    r = run(driven, "report", "progress", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = {row["县区"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert len(rows) == 12
    k = rows["宽城满族自治县"]
    assert (k["代码"], k["乡镇数"], k["已达标"], k["达标率(%)"], k["已开展"]) == (KUANCHENG, "18", "2", "11.1", "2")
    assert (k["省示范已达标"], k["省示范数"]) == ("1", "1")
    assert rows["承德县"]["2014-12-30 县区推进方案报市安委会办公室"] == "晚5天"
    assert rows["滦平县"]["2015-03-31 省定5家示范镇完成规范化建设"] == "逾期10天"
    assert rows["滦平县"]["逾期乡镇数"] == "1"
    assert rows["宽城满族自治县"]["下一节点"] == "各县区完成1-3家示范重点乡镇规范化建设"
    assert rows["宽城满族自治县"]["剩余天数"] == "81"


def test_csv_to_a_file_starts_with_the_bom_excel_needs(driven, tmp_path):
    """Written with --out, the CSV carries the UTF-8 BOM (the format comes from the file's suffix)."""
    out = tmp_path / "进度.csv"
    r = run(driven, "report", "progress", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith("\ufeff代码,县区".encode())
    assert "已写入" in r.stderr


# -- Excel -----------------------------------------------------------------------------------------------
def test_xlsx_has_its_sheets_with_typed_cells_and_no_formulas(driven, tmp_path):
    """The workbook: 县区进度, 逾期单位, 趋势, 节点完成; bold frozen headers, numbers and dates typed,
    not one formula, and a bar chart on the first sheet."""
    from openpyxl import load_workbook

    out = tmp_path / "进度.xlsx"
    r = run(driven, "report", "progress", "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 0, r.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["县区进度", "逾期单位", "趋势", "节点完成", "预警"]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2"
        assert all(c.font.bold for c in ws[1] if c.value is not None)
        assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    ws = wb["县区进度"]
    head = [c.value for c in ws[1]]
    rows = {r[1]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
    assert (rows["宽城满族自治县"]["乡镇数"], rows["宽城满族自治县"]["已达标"]) == (18, 2)
    assert rows["承德县"]["2014-12-30 县区推进方案报市安委会办公室"] == "晚5天"
    assert len(ws._charts) == 1
    late = [r for r in wb["逾期单位"].iter_rows(min_row=2, values_only=True) if r[1] == "张百湾镇"]
    assert late == [("130824106", "张百湾镇", "乡镇", "滦平县", "创建中", "省示范", "省定5家示范镇完成规范化建设",
                     dt.datetime(2015, 3, 31), 10)]
    trend = [(r[2].date().isoformat(), r[3]) for r in wb["趋势"].iter_rows(min_row=2, values_only=True) if r[0] == KUANCHENG]
    assert trend[-2:] == [("2015-03-20", 1), ("2015-04-05", 2)]
    met = {(r[1], r[2]): (r[4], r[5]) for r in wb["节点完成"].iter_rows(min_row=2, values_only=True)}
    assert met[("承德县", "县区推进方案报市安委会办公室")] == ("逾期完成", 5)


def test_a_unit_name_that_looks_like_a_formula_stays_text(chengde, cli, tmp_path):
    """A name starting with = is quoted in CSV and a string cell in XLSX — never run by a spreadsheet."""
    from openpyxl import load_workbook
    from sqlalchemy import update

    from anjian.workflow.store.models import units_table

    with chengde.write() as s:
        s.execute(update(units_table).where(units_table.c.code == KUANCHENG).values(name="=HYPERLINK(\"x\",\"y\")"))
    r = cli("report", "progress", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert "'=HYPERLINK" in r.stdout
    out = tmp_path / "p.xlsx"
    assert cli("report", "progress", "--out", str(out)).exit_code == 0
    cell = next(c for c in load_workbook(out)["县区进度"]["B"] if str(c.value).startswith("=HYPERLINK"))
    assert cell.data_type == "s"


# -- HTML ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(driven, tmp_path_factory) -> tuple[str, Tables]:
    out = tmp_path_factory.mktemp("html") / "进度.html"
    r = run(driven, "report", "progress", "--format", "html", "--out", str(out))
    assert r.exit_code == 0, r.output
    text = out.read_text("utf-8")
    return text, Tables(text)


def test_html_is_self_contained(page):
    """No script, no external URL of any kind, no linked resource: the page opens offline."""
    text, _ = page
    assert "<script" not in text and "http:" not in text and "https:" not in text
    assert " src=" not in text and "<link" not in text and "@import" not in text and "url(http" not in text


def test_html_has_three_labelled_charts_with_chinese_text(page):
    """Each chart is an inline <svg> with its id and aria-label, its Chinese as text (not paths)."""
    text, tables = page
    for chart in ("chart-counties", "chart-trend", "chart-stages"):
        assert chart in tables.ids
        start = text.index(f'<svg id="{chart}"')
        svg = text[start:text.index("</svg>", start)]
        assert 'aria-label="' in svg[:300] and 'role="img"' in svg[:300]
        assert "<text" in svg
    assert "宽城满族自治县</text>" in text and "今天 2015-04-10</text>" in text
    assert "准备发动阶段</text>" in text


def test_html_marks_the_overdue_in_red_with_their_days(page):
    """Counties with an overdue milestone and every overdue unit carry the `overdue` class (red);
    the overdue unit rows say by how many days."""
    _, tables = page
    counties = by_code(tables, "county-table")
    assert "overdue" in counties[LUANPING][0].get("class", "")
    assert "overdue" not in counties[KUANCHENG][0].get("class", "")
    assert "overdue" not in counties[CHENGDE_COUNTY][0].get("class", "")
    kuan = [t for _, t in counties[KUANCHENG][1]]
    assert "2/18" in kuan[3] and kuan[4] == "2/18"
    units = by_code(tables, "overdue-table")
    assert len(units) == 13
    assert "overdue" in units[ZHANGBAIWAN][0]["class"]
    assert "逾期 10 天" in units[ZHANGBAIWAN][1][-1][1]
    outcomes = by_code(tables, "outcome-table")
    cells = outcomes[CHENGDE_COUNTY][1][1:]
    assert (cells[0][0]["class"], cells[0][1]) == ("late", "晚5天")
    assert (outcomes[LUANPING][1][2][0]["class"], outcomes[LUANPING][1][2][1]) == ("overdue", "逾期10天")
    assert (outcomes[KUANCHENG][1][1][0]["class"], outcomes[KUANCHENG][1][1][1]) == ("on-time", "按期")


def test_html_trend_table_lists_the_change_days(page):
    """The trend's data table holds 宽城's acceptances on 2015-03-20 and 2015-04-05."""
    _, tables = page
    rows = [[t for _, t in cells] for _, cells in tables.tables["trend-table"] if cells and cells[0][1] == "宽城满族自治县"]
    assert [(r[1], r[2]) for r in rows][-2:] == [("2015-03-20", "1"), ("2015-04-05", "2")]


def test_markup_in_a_unit_name_is_escaped_in_the_page(chengde, cli, tmp_path):
    """A county named with markup comes out as text in the table and in the charts."""
    from sqlalchemy import update

    from anjian.workflow.store.models import units_table

    with chengde.write() as s:
        s.execute(update(units_table).where(units_table.c.code == KUANCHENG).values(name="<script>alert(1)</script>"))
    out = tmp_path / "p.html"
    assert cli("report", "progress", "--out", str(out)).exit_code == 0
    text = out.read_text("utf-8")
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


# -- the command -----------------------------------------------------------------------------------------
def test_html_and_xlsx_need_a_file(driven):
    """A page or a workbook is not printed to the terminal: exit 2, naming --out."""
    for fmt in ("html", "xlsx"):
        r = run(driven, "report", "progress", "--format", fmt)
        assert r.exit_code == 2 and "--out" in r.stderr


def test_an_unknown_county_is_bad_input(driven):
    """--county that names nothing is exit 2 with the reason."""
    r = run(driven, "report", "progress", "--county", "不存在县", "--format", "md")
    assert r.exit_code == 2 and "不存在县" in r.stderr


def test_progress_has_help_with_an_example():
    """`anjian report progress --help` describes the report and gives an example."""
    from anjian.workflow.cli import cli

    r = CliRunner().invoke(cli, ["report", "progress", "--help"])
    assert r.exit_code == 0 and "示例：" in r.output and "--out" in r.output


# -- issue 13 point 10 -------------------------------------------------------------------------------
def test_progress_report_with_nothing_accepted_warns_of_nothing(chengde, cli, tmp_path):
    """As of a day before any township moved (here before the registry was loaded) the HTML report is
    written without any warning: the trend chart has no line, so no legend."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cli("report", "progress", "--format", "html", "--out", str(tmp_path / "进度.html"), "--now", "2014-12-10")
    assert r.exit_code == 0, r.output
    assert "Warning" not in r.output


@pytest.mark.parametrize("today", ["2015-04-10", "2016-12-20"])
def test_the_today_label_of_the_trend_never_overlaps_its_legend(today):
    """The red 今天 label stays clear of the legend beside the chart, early or late in the campaign."""
    from anjian.workflow.reports import charts

    first, last = dt.date(2014, 12, 1), dt.date(2016, 12, 31)
    series = [charts.Series(f"县{i}", [(dt.date(2015, 1, 1), 0), (dt.date(2015, 6, 1), i + 1)]) for i in range(12)]
    deadlines = [charts.Mark("方案报送", dt.date(2014, 12, 30)), charts.Mark("全面达标", dt.date(2016, 12, 31))]
    with charts._style():
        fig = charts.trend_figure(series, deadlines, dt.date.fromisoformat(today), first, last)
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        ax = fig.axes[0]
        label = next(t for t in ax.texts if "今天" in t.get_text())
        legend = ax.get_legend()
        assert legend is not None
        assert not label.get_window_extent(renderer).overlaps(legend.get_window_extent(renderer))


def test_markdown_report_speaks_english_on_request(chengde, cli, monkeypatch):
    """With ANJIAN_LANG=en the terminal report's headings, sentences and stage words are English; the
    campaign's own names (units, milestones) stay as the campaign wrote them."""
    monkeypatch.setenv("ANJIAN_LANG", "en")
    r = cli("report", "progress", "--format", "md", now="2015-04-10T09:00")
    assert r.exit_code == 0, r.output
    assert "progress report (承德市)" in r.stdout and "the city is in the demonstration stage" in r.stdout
    assert "## Counties" in r.stdout and "## Overdue units" in r.stdout and "县区进度" not in r.stdout


# -- the early warning (预警), on conftest's busy_kuancheng ---------------------------------------------
WARN_NOW = "2015-03-16T09:00"  # a week after 宽城's last acceptance: nothing changes after it


def status_forecasts(cli) -> tuple[dict, dict[tuple[str, str], dict]]:
    """`status --format json` at WARN_NOW, and its forecasts by (county, milestone)."""
    r = cli("status", "--format", "json", now=WARN_NOW)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    return data, {(c["code"], f["milestone"]): f for c in data["counties"] for f in c["forecast"]}


def test_the_reports_early_warning_is_the_forecast_status_gives(busy_kuancheng, cli):
    """The JSON's early_warning has a row for every forecast of `status`, with its very figures: 承德县 warned
    of provincial_demo on the city's pace, 宽城 on its own pace and warned of nothing; warned rows first,
    and the totals count the counties warned as `status` does."""
    st, by_key = status_forecasts(cli)
    r = cli("report", "progress", "--format", "json", now=WARN_NOW)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    rows = rep["early_warning"]
    assert {(w["county"], w["milestone"]) for w in rows} == set(by_key)
    for w in rows:
        assert {k: w[k] for k in by_key[w["county"], w["milestone"]]} == by_key[w["county"], w["milestone"]]
    demo = next(w for w in rows if (w["county"], w["milestone"]) == (CHENGDE_COUNTY, "provincial_demo"))
    assert demo["warning"] is True and demo["basis"] == "city" and demo["needed"] == 1 and demo["probability"] < 0.5
    assert demo["county_name"] == "承德县" and demo["milestone_name"] == "省定5家示范镇完成规范化建设"
    ours = [w for w in rows if w["county"] == KUANCHENG]
    assert ours and not any(w["warning"] for w in ours) and {w["basis"] for w in ours} == {"county"}
    flags = [w["warning"] for w in rows]
    assert flags == sorted(flags, reverse=True) and True in flags and False in flags
    assert rep["totals"]["counties_warned"] == st["totals"]["counties_warned"] >= 1
    assert rep["warning_settings"] == {"threshold": 0.5, "horizon_days": 60}
    assert [c["forecast"] for c in rep["counties"]] == [c["forecast"] for c in st["counties"]]


def test_the_html_report_marks_the_warned_first_with_their_chance(busy_kuancheng, cli, tmp_path):
    """The page's 预警 section lists 承德县's provincial township first, marked and with the chance `status`
    gives in per cent; 宽城's rows are there unmarked; the card counts the counties warned."""
    st, by_key = status_forecasts(cli)
    out = tmp_path / "进度.html"
    r = cli("report", "progress", "--format", "html", "--out", str(out), now=WARN_NOW)
    assert r.exit_code == 0, r.output
    text = out.read_text("utf-8")
    page = Tables(text)
    assert "early-warning" in page.ids and "<script" not in text
    assert re.search(r'id="counties-warned">(\d+)<', text).group(1) == str(st["totals"]["counties_warned"])
    rows = [(a, [t for _, t in cells]) for a, cells in page.tables["warning-table"] if "data-code" in a]
    assert rows[0][0].get("class") == "warned"
    demo = next(cells for a, cells in rows if (a["data-code"], a["data-milestone"]) == (CHENGDE_COUNTY, "provincial_demo"))
    f = by_key[CHENGDE_COUNTY, "provincial_demo"]
    assert demo[:5] == ["⚠ 预警", "承德县", "省定示范", "2015-03-31", f"{f['probability']:.0%}"]
    assert demo[6] == "1" and demo[8] == "全市平均进度"
    ours = [(a, cells) for a, cells in rows if a["data-code"] == KUANCHENG]
    assert ours and all("class" not in a and cells[0] == "" for a, cells in ours)
    full = next(cells for a, cells in ours if a["data-milestone"] == "full_coverage")
    assert full[4] == f"{by_key[KUANCHENG, 'full_coverage']['probability']:.0%}"
    assert full[5] == by_key[KUANCHENG, "full_coverage"]["expected"] and full[8] == "本县记录"


def test_markdown_csv_and_workbook_carry_the_warning(busy_kuancheng, cli, tmp_path):
    """Markdown has the 预警 section and the count in its summary; the CSV a 预警 column naming 承德县's
    warned milestone with its chance; the workbook a 预警 sheet with the chance in per cent."""
    from openpyxl import load_workbook

    _, by_key = status_forecasts(cli)
    chance = by_key[CHENGDE_COUNTY, "provincial_demo"]["probability"]
    md = cli("report", "progress", "--format", "md", now=WARN_NOW)
    assert md.exit_code == 0, md.output
    assert "## 预警" in md.stdout and "个县区预警" in md.stdout
    line = next(x for x in md.stdout.splitlines() if x.startswith("| **⚠ 预警** | **承德县**"))
    assert f"**{chance:.0%}**" in line
    r = cli("report", "progress", "--format", "csv", now=WARN_NOW)
    rows = {row["代码"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows[CHENGDE_COUNTY]["预警"] == f"省定示范 {chance:.0%}" and rows[KUANCHENG]["预警"] == ""
    out = tmp_path / "进度.xlsx"
    assert cli("report", "progress", "--format", "xlsx", "--out", str(out), now=WARN_NOW).exit_code == 0
    sheet = load_workbook(out)["预警"]
    heads = [c.value for c in sheet[1]]
    demo = next(row for row in sheet.iter_rows(min_row=2, values_only=True)
                if row[1] == "承德县" and row[2] == "省定5家示范镇完成规范化建设")
    assert demo[heads.index("按期完成概率（%）")] == round(100 * chance, 1)
