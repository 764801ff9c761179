"""Spreadsheets officials open: one sheet, a bold frozen header row, columns as wide as their (CJK) text,
numbers and dates as such, and every text cell stored as text — never a formula, whatever it starts with."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from anjian.workflow.formats.output import FORMULA_STARTS, width

MAX_WIDTH = 60  # in the sheet's character units: longer text is cut at the column's edge, not a screen wide


def workbook(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """An .xlsx file of one sheet: `headers`, then `rows` (str, int, float, date, bool or None)."""
    from openpyxl import Workbook

    wb = Workbook()
    fill_sheet(wb.active, title, headers, rows)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def fill_sheet(ws, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]):
    """Name an openpyxl worksheet `title` and write the table into it: bold frozen header row with a
    filter, each value typed, text never a formula, columns fitted to their text. Returns the sheet."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws.title = sheet_title(title)
    bold = Font(bold=True)
    widths = [width(h) for h in headers]
    for col, h in enumerate(headers, 1):
        _put(ws.cell(row=1, column=col), h).font = bold
    for r, row in enumerate(rows, 2):
        for col, value in enumerate(row, 1):
            cell = _put(ws.cell(row=r, column=col), value)
            if cell.value is not None:
                widths[col - 1] = max(widths[col - 1], _shown_width(cell.value))
    for col, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(col)].width = min(w + 2, MAX_WIDTH)
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = ws.dimensions
    return ws


def _put(cell, value: object):
    """Store one value with its own type; text is forced to a string cell (openpyxl makes "=…" a formula)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if value is None:
        return cell
    if isinstance(value, bool):
        value = "是" if value else "否"
    elif isinstance(value, list | tuple):
        value = "、".join(str(v) for v in value)
    if isinstance(value, int | float):
        cell.value = value
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        cell.value = value
        cell.number_format = "yyyy-mm-dd"
    else:
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))  # control characters make the file unreadable
        cell.value = text
        cell.data_type = "s"
        if text.startswith(FORMULA_STARTS):
            cell.quotePrefix = True  # and stays text when an official edits the cell
    return cell


def _shown_width(value: object) -> int:
    if isinstance(value, dt.date):
        return 10
    return width(str(value))


def sheet_title(title: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title).strip("'")
    return cleaned[:31] or "Sheet1"
