"""Tables as officials' spreadsheets make them (issue 13 point 7): encodings, separators, trailing empty
columns, Chinese headers and .xlsx files, read by formats/tables.read_table and taken by the bulk commands."""

from __future__ import annotations

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from anjian.workflow.errors import BadInput
from anjian.workflow.formats import tables
from anjian.workflow.store.models import UnitCohort

ROWS = [("130827102", "key", "重点乡镇"), ("130827101", "heavy_task", "")]


def _text(header: str, sep: str = ",", end: str = "\n") -> str:
    return end.join([header.replace(",", sep), *(sep.join(r) for r in ROWS)]) + end


@pytest.mark.parametrize(("encoding", "sep", "end"), [
    ("utf-8", ",", "\n"), ("utf-8-sig", ",", "\r\n"), ("gbk", ",", "\r\n"), ("gb18030", ",", "\n"),
    ("utf-16", "\t", "\r\n"), ("utf-16-be", "\t", "\r\n"), ("utf-8", ";", "\n"),
])
def test_csv_in_every_encoding_and_separator_excel_saves(tmp_path, encoding, sep, end):
    """UTF-8 with or without BOM, GBK/GB18030, UTF-16 LE/BE with BOM and TAB (Excel's "Unicode text"), CRLF."""
    data = _text("unit,cohort,note", sep, end).encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    p = tmp_path / "t.csv"
    p.write_bytes(data)
    recs, problems = tables.read_table(p, ("unit", "cohort"), ("note",))
    assert problems == []
    assert [(r.values["unit"], r.values["cohort"], r.values["note"]) for r in recs] == ROWS


def test_trailing_empty_columns_and_empty_header_cells_are_ignored(tmp_path):
    """A spreadsheet's trailing empty column (`unit,cohort,,` and `x,key,,`) is no problem."""
    p = tmp_path / "t.csv"
    p.write_text("unit,cohort,,\n130827102,key,,\n130827101,heavy_task,\n", encoding="utf-8")
    recs, problems = tables.read_table(p, ("unit", "cohort"))
    assert problems == []
    assert [r.values for r in recs] == [{"unit": "130827102", "cohort": "key"}, {"unit": "130827101", "cohort": "heavy_task"}]


def test_chinese_headers_as_the_exports_write_them(tmp_path):
    """单位代码,单位,类别 (as `units` exports) reads as unit,cohort: the code column wins over the name."""
    p = tmp_path / "t.csv"
    p.write_text("单位代码,单位,类别,备注\n130827102,峪耳崖镇,重点,x\n", encoding="utf-8")
    recs, problems = tables.read_table(p, ("unit", "cohort"), ("note",))
    assert problems == [] and recs[0].values == {"unit": "130827102", "cohort": "重点", "note": "x"}


def test_an_unknown_header_is_still_refused(tmp_path):
    """A header that names no column is bad input naming it."""
    p = tmp_path / "t.csv"
    p.write_text("unit,cohort,颜色\n130827102,key,红\n", encoding="utf-8")
    with pytest.raises(BadInput) as exc:
        tables.read_table(p, ("unit", "cohort"))
    assert "颜色" in " ".join(exc.value.details)


def test_xlsx_is_read_with_typed_cells(tmp_path):
    """An .xlsx sheet: numbers as typed (4, not 4.0), booleans as 是/否, the sheet row as the line."""
    wb = Workbook()
    ws = wb.active
    ws.append(["单位", "清单项", "填报值", None])
    ws.append(["130827102", "staff.full_time", 4.0, None])
    ws.append([None, None, None, None])
    ws.append(["130827102", "six.vehicle", True, None])
    p = tmp_path / "t.xlsx"
    wb.save(p)
    recs, problems = tables.read_table(p, ("unit", "item", "value"))
    assert problems == []
    assert [(r.line, r.values["value"]) for r in recs] == [(2, "4"), (4, "是")]


def test_a_file_that_is_no_workbook_is_bad_input(tmp_path):
    """A .xlsx that is not a zip workbook is refused as bad input naming the file."""
    p = tmp_path / "t.xlsx"
    p.write_text("unit,cohort\n", encoding="utf-8")
    with pytest.raises(BadInput, match="t.xlsx"):
        tables.read_table(p, ("unit", "cohort"))


def test_designate_reads_utf16_tab_with_chinese_headers_and_cohorts(chengde, cli, tmp_path):
    """`designate --file` takes Excel's "Unicode text" with 单位,类别 and 重点 (issue 13 points 7 and 9)."""
    p = tmp_path / "d.txt"
    p.write_bytes("单位\t类别\t\r\n宽城镇\t重点\t\r\n".encode("utf-16"))
    r = cli("designate", "--file", str(p))
    assert r.exit_code == 0, r.output
    assert "更改 1 项" in r.output


def test_designate_file_remove_removes(chengde, cli, tmp_path):
    """`designate --file rm.csv --remove` takes the townships out (issue 13 point 1)."""
    p = tmp_path / "rm.csv"
    p.write_text("unit,cohort\n宽城镇,key\n", encoding="utf-8")
    assert cli("designate", "--file", str(p)).exit_code == 0
    r = cli("designate", "--file", str(p), "--remove")
    assert r.exit_code == 0, r.output
    assert "更改 1 项" in r.output and "移出" in r.output
    with chengde.read() as s:
        assert not list(s.scalars(select(UnitCohort).where(UnitCohort.unit_code == "130827100")))


def test_advance_takes_chinese_triggers_from_an_xlsx(chengde, cli, tmp_path):
    """`advance --file x.xlsx` with 单位,操作 and 开展创建 fires start."""
    wb = Workbook()
    wb.active.append(["单位", "操作", "备注"])
    wb.active.append(["宽城镇", "开展创建", None])
    p = tmp_path / "a.xlsx"
    wb.save(p)
    r = cli("advance", "--file", str(p))
    assert r.exit_code == 0, r.output
    assert "创建中" in r.output
