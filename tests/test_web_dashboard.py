"""`/dashboard` (全市概况): the city's figures live from `status`, the early warning, the counties' table, the
overdue units, the stages and milestones with today, the report's charts as images, and the exports as
downloads; a county's page with its own forecasts."""

from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import unquote

import pytest
from support import at, clock_at, record_checklist
from support_web import browser

from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import record

KUANCHENG, YUERYA = "130827", "130827102"


def signed_in(served, official: str, when: str):
    """`official`'s browser, signed in at `when` (the clock stays there while the block's requests run)."""
    with clock_at(when):
        return browser(served, official)


def applied(served, folder) -> None:
    """宽城 submits its plan on time; 峪耳崖镇 starts, fills its checklist and applies on 2015-01-05."""
    db = served.db
    plan = folder / "推进方案.pdf"
    plan.write_bytes(b"plan")
    with clock_at("2014-12-20T09:00"):
        record(db, KUANCHENG, "county.leadership_group", "组长 张三", "li", at("2014-12-20T09:00"))
        advance(db, KUANCHENG, "submit_plan", "li", at("2014-12-20T10:00"), evidence=(str(plan),))
    with clock_at("2014-12-22T09:00"):
        advance(db, YUERYA, "start", "chief_yuerya", at("2014-12-22T09:00"))
        record_checklist(db, YUERYA, frozenset({"provincial_demo"}), actor="chief_yuerya", now=at("2014-12-22T09:30"))
    with clock_at("2015-01-05T09:00"):
        advance(db, YUERYA, "apply", "chief_yuerya", at("2015-01-05T09:00"), note="申请验收")


def accepted(served) -> None:
    with clock_at("2015-01-10T09:00"):
        advance(served.db, YUERYA, "accept", "wang", at("2015-01-10T09:00"), note="合格")


def card(html: str, ident: str) -> str:
    """The figure of one card (`<div class="card" id=…>`)."""
    found = re.search(rf'id="{ident}".*?<div class="figure[^"]*">([^<]*)</div>', html, re.S)
    assert found, ident
    return found.group(1).strip()


def state_card(html: str, state: str) -> str:
    found = re.search(rf'data-state="{state}"><div>[^<]*</div><div class="figure">(\d+)</div>', html)
    assert found, state
    return found.group(1)


def county_row(html: str, code: str) -> str:
    found = re.search(rf'<tr data-code="{code}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, code
    return found.group(1)


def test_the_figures_change_when_a_township_is_accepted(served, tmp_path):
    """An application shows as 已申请验收 in the cards and 宽城's row; once accepted, 已达标 counts it."""
    applied(served, tmp_path)
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        page = office.get("/dashboard")
    assert page.status_code == 200, page.text
    assert "全市概况" in page.text and "承德市" in page.text
    assert card(page.text, "card-townships") == "219"
    assert card(page.text, "card-accepted") == "0"
    assert state_card(page.text, "applied") == "1" and state_card(page.text, "accepted") == "0"
    row = county_row(page.text, KUANCHENG)
    assert 'href="/units/130827"' in row and 'data-state="applied">1<' in row
    counties = page.text.split('id="county-table"')[1].split("</table>")[0]
    assert counties.count('<tr data-code="') == 12

    accepted(served)
    office = signed_in(served, "office", "2015-01-11T09:00")
    with clock_at("2015-01-11T09:00"):
        page = office.get("/dashboard")
    assert page.status_code == 200
    assert card(page.text, "card-accepted") == "1"
    assert state_card(page.text, "applied") == "0" and state_card(page.text, "accepted") == "1"
    assert "0.5%" in page.text.split('id="card-accepted"')[1].split("</div></div>")[0]
    assert 'data-state="accepted">1<' in county_row(page.text, KUANCHENG)


def test_overdue_units_are_listed_and_linked(served, tmp_path):
    """After the plan deadline the counties that did not submit are overdue, each linked to its page; 宽城 is not."""
    applied(served, tmp_path)
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        page = office.get("/dashboard")
    section = page.text.split('id="overdue-table"')[1].split("</table>")[0]
    assert 'href="/units/130821"' in section and "承德县" in section
    assert "县区推进方案报市安委会办公室" in section and "逾期 7 天" in section
    assert 'href="/units/130827"' not in section
    counties = page.text.split('id="card-counties"')[1].split("</div></div>")[0]
    assert ">12<" in counties and "11 个有逾期节点" in counties  # all but 宽城 missed the plan's deadline


def test_no_overdue_before_the_first_deadline(served):
    """Before the first deadline nothing is overdue, and the page says so."""
    office = signed_in(served, "office", "2014-12-16T09:00")
    with clock_at("2014-12-16T09:00"):
        page = office.get("/dashboard")
    assert page.status_code == 200
    assert 'id="overdue-none"' in page.text and 'id="overdue-table"' not in page.text
    assert card(page.text, "card-warned") == "0"  # no deadline within the warning's 60 days yet
    assert 'id="warning-none"' in page.text and 'id="warning-table"' not in page.text


def test_today_is_marked_among_the_milestones_and_stages(served):
    """Today's row sits between the last deadline passed and the next one; the current stage says so."""
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        page = office.get("/dashboard")
    table = page.text.split('id="milestones"')[1].split("</table>")[0]
    rows = re.findall(r'<tr (?:class="today" id="today"|data-milestone="(\w+)")', table)
    assert rows == ["plan_submission", "", "provincial_demo", "county_demo", "demo_review", "key_compliance",
                    "full_coverage"]
    assert "2015-01-06" in table.split('id="today"')[1].split("</tr>")[0]
    stages = page.text.split('id="stages"')[1].split("</table>")[0]
    current = re.search(r'<tr class="phase-current" aria-current="step">(.*?)</tr>', stages, re.S).group(1)
    assert "示范乡镇创建阶段" in current and "2015-01-06" in current


def test_the_charts_are_images_served_as_svg(served):
    """The page shows the three charts with <img> (no inline style for the CSP to block); each is an SVG
    image of the report, the stage chart with today's line."""
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        page = office.get("/dashboard")
        assert "<svg" not in page.text and "<style" not in page.text and "style=" not in page.text
        sources = re.findall(r'<img src="(/dashboard/chart/\w+\.svg[^"]*)" loading="lazy" alt="[^"]+"', page.text)
        assert len(sources) == 3
        for src in sources:
            image = office.get(src.replace("&amp;", "&"))
            assert image.status_code == 200, image.text
            assert image.headers["content-type"].startswith("image/svg+xml")
            assert image.text.startswith("<?xml") and 'xmlns="http://www.w3.org/2000/svg"' in image.text
        stages = office.get("/dashboard/chart/stages.svg")
        assert "今天 2015-01-06" in stages.text
        assert office.get("/dashboard/chart/other.svg").status_code == 404


def test_a_county_official_sees_the_city_and_a_chief_is_refused(served):
    """A county official sees the whole city, read only (no form but sign-out); a township chief gets 403
    on the page, its charts and its downloads."""
    county = signed_in(served, "li", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        page = county.get("/dashboard")
    assert page.status_code == 200
    assert 'href="/units/130821">承德县</a>' in county_row(page.text, "130821")  # the whole city, not only 宽城
    assert page.text.count("<form") == 1  # the header's sign-out
    chief = signed_in(served, "chief_yuerya", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        for url in ("/dashboard", "/dashboard/chart/stages.svg", "/dashboard/export.csv", "/dashboard/report.html"):
            r = chief.get(url)
            assert r.status_code == 403, url
        assert "乡镇" in chief.get("/dashboard").text


def test_a_page_asked_without_a_session_goes_to_login(served):
    """The dashboard and its downloads need a session: without one, /login and back."""
    import httpx

    r = httpx.get(served.url + "/dashboard/export.csv")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard/export.csv"


def filename_of(r) -> str:
    found = re.search(r"filename\*=UTF-8''([^;]+)", r.headers["content-disposition"])
    assert found and r.headers["content-disposition"].startswith("attachment;")
    return unquote(found.group(1))


def test_the_counties_export_downloads_as_csv(served, tmp_path):
    """export.csv is the counties' table with the BOM Excel needs, named in Chinese."""
    applied(served, tmp_path)
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        r = office.get("/dashboard/export.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert filename_of(r) == "承德市进度-2015-01-06.csv"
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 12
    kuancheng = next(row for row in rows if row["代码"] == KUANCHENG)
    assert kuancheng["已开展乡镇"] == "1"


def test_the_townships_export_lists_every_township(served, tmp_path):
    """townships.csv lists the city's 219 townships with their state."""
    applied(served, tmp_path)
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        r = office.get("/dashboard/townships.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 219
    assert next(row for row in rows if row["代码"] == YUERYA)["状态代码"] == "applied"


def test_the_workbook_and_the_html_report_download(served, tmp_path):
    """export.xlsx is the report's workbook (its sheets in Chinese); report.html the self-contained report."""
    from openpyxl import load_workbook

    applied(served, tmp_path)
    accepted(served)
    office = signed_in(served, "office", "2015-01-11T09:00")
    with clock_at("2015-01-11T09:00"):
        x = office.get("/dashboard/export.xlsx")
        h = office.get("/dashboard/report.html")
    assert x.status_code == 200, x.text
    assert x.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert filename_of(x) == "承德市进度报告-2015-01-11.xlsx"
    book = load_workbook(io.BytesIO(x.content))
    assert book.sheetnames[0] == "县区进度"
    sheet = book.worksheets[0]
    heads = [c.value for c in sheet[1]]
    kuancheng = next(r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == KUANCHENG)
    assert kuancheng[heads.index("已达标")] == 1
    assert h.status_code == 200
    assert h.headers["content-type"].startswith("text/html")
    assert filename_of(h) == "承德市进度报告-2015-01-11.html"
    assert "<svg" in h.text and "进度报告" in h.text
    row = h.text.split('id="county-table"')[1].split(f'<tr data-code="{KUANCHENG}"')[1].split("</tr>")[0]
    assert re.search(r'<span class="frac">1/\d+</span>', row)


@pytest.mark.parametrize("url", ["/dashboard?county=不存在县", "/dashboard/export.csv?county=不存在县"])
def test_an_unknown_scope_is_refused_with_the_commands_words(served, url):
    """?county= naming no unit answers 400 with the command's own message."""
    office = signed_in(served, "office", "2015-01-06T09:00")
    with clock_at("2015-01-06T09:00"):
        r = office.get(url)
    assert r.status_code == 400
    assert "不存在县" in r.text


def test_what_the_page_reads_is_in_the_commands_json(served, tmp_path, cli):
    """`status --format json` has the townships by state, each county's milestones and the campaign's
    stages and milestones against today; `report progress --format json --chart NAME` the report's data
    and the chart as an SVG document (--chart without json is bad input)."""
    applied(served, tmp_path)
    r = cli("status", "--format", "json", now="2015-01-06T09:00")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["totals"]["states"] == {"not_started": 218, "building": 0, "applied": 1, "rectifying": 0,
                                        "accepted": 0}
    assert [s["phase"] for s in data["stages"]] == ["passed", "current", "ahead", "ahead"]
    assert data["milestones"][0] == {"id": "plan_submission", "name": "县区推进方案报市安委会办公室",
                                     "deadline": "2014-12-30", "stage": "mobilization", "days": -7}
    kuancheng = next(c for c in data["counties"] if c["code"] == KUANCHENG)
    assert kuancheng["states"]["applied"] == 1
    assert kuancheng["milestones"][0] | {"name": ""} == {"id": "plan_submission", "name": "", "deadline": "2014-12-30",
                                                          "status": "met", "days": 0}
    r = cli("report", "progress", "--format", "json", "--chart", "stages", now="2015-01-06T09:00")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report["charts"]) == {"stages"} and report["charts"]["stages"].startswith("<?xml")
    kuancheng = next(c for c in report["counties"] if c["code"] == KUANCHENG)
    assert kuancheng["outcomes"]["plan_submission"]["status"] == "on_time"
    assert report["totals"]["states"]["applied"] == 1 and len(report["overdue"]) == 11
    r = cli("report", "progress", "--format", "md", "--chart", "stages", now="2015-01-06T09:00")
    assert r.exit_code == 2 and "--chart" in r.output


# -- the early warning (预警), on conftest's busy_kuancheng ------------------------------------------------
WARN_NOW = "2015-03-16T09:00"  # a week after 宽城's last acceptance
CHENGDE_COUNTY = "130821"


def status_at(cli, when: str, *more: str) -> dict:
    r = cli("status", "--format", "json", *more, now=when)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_early_warning_shows_what_status_warns_of(busy_kuancheng, served, cli):
    """Mid-March 2015 the 预警 card counts the counties `status --format json` warns, and its table lists each
    warned county-milestone with status's chance and expected day: 承德县's provincial township (linked to
    its page); 宽城, on pace, is not in it. The page stays script- and style-free."""
    st = status_at(cli, WARN_NOW)
    warned = {(c["code"], f["milestone"]): f for c in st["counties"] for f in c["forecast"] if f["warning"]}
    office = signed_in(served, "office", WARN_NOW)
    with clock_at(WARN_NOW):
        page = office.get("/dashboard")
    assert page.status_code == 200, page.text
    assert card(page.text, "card-warned") == str(st["totals"]["counties_warned"]) != "0"
    assert "预警（" in page.text and "预警县区" in page.text
    table = page.text.split('id="warning-table"')[1].split("</table>")[0]
    rows = {(c, m): cells for c, m, cells in
            re.findall(r'<tr data-code="(\d+)" data-milestone="(\w+)">(.*?)</tr>', table, re.S)}
    assert set(rows) == set(warned) and (CHENGDE_COUNTY, "provincial_demo") in rows
    assert KUANCHENG not in {code for code, _ in rows}
    demo, f = rows[CHENGDE_COUNTY, "provincial_demo"], warned[CHENGDE_COUNTY, "provincial_demo"]
    assert '<a href="/units/130821">承德县</a>' in demo and "省定5家示范镇完成规范化建设" in demo
    assert f'<td class="num overdue">{f["probability"]:.0%}</td>' in demo
    assert f"<td>{f['deadline']}</td>" in demo and f"<td>{f['expected']}</td>" in demo
    assert f'<td class="num">{f["needed"]}</td>' in demo
    assert "<script" not in page.text and "style=" not in page.text


def test_a_countys_page_shows_its_forecasts(busy_kuancheng, served, cli):
    """/units/承德县 lists its forecasts, the warned provincial township first with status's chance; 宽城's
    page lists its own, none warned, on its own record."""
    office = signed_in(served, "office", WARN_NOW)
    for code, warned in ((CHENGDE_COUNTY, True), (KUANCHENG, False)):
        own = status_at(cli, WARN_NOW, "--county", code)["counties"][0]["forecast"]
        with clock_at(WARN_NOW):
            page = office.get(f"/units/{code}")
        assert page.status_code == 200, page.text
        table = page.text.split('id="forecast-table"')[1].split("</table>")[0]
        rows = re.findall(r'<tr data-milestone="(\w+)"( class="late")?>(.*?)</tr>', table, re.S)
        assert {m for m, _, _ in rows} == {f["milestone"] for f in own}
        by_id = {f["milestone"]: f for f in own}
        for m, late, cells in rows:
            assert bool(late) == by_id[m]["warning"]
            assert f'{by_id[m]["probability"]:.0%}</td>' in cells
        assert bool(rows[0][1]) is warned
        if warned:
            assert rows[0][0] == "provincial_demo" and "⚠ 预警" in rows[0][2] and "全市平均进度" in rows[0][2]
        else:
            assert all("本县记录" in cells for _, _, cells in rows)
