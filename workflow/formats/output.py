"""One renderer for every command: rows as an aligned table (wide-character aware), JSON or CSV."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import unicodedata
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=65536)
def width(text: str) -> int:
    """Terminal columns a string takes: CJK characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, cols: int) -> str:
    return text + " " * max(0, cols - width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    sizes = [[width(c) for c in r] for r in cells]  # each cell measured once
    widths = [max([width(h)] + [s[i] for s in sizes]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c + " " * (w - n) for c, n, w in zip(r, s, widths, strict=True)).rstrip()
              for r, s in zip(cells, sizes, strict=True)]
    return "\n".join(lines)


def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, list | tuple):
        return "、".join(_cell(x) for x in v) if v else "—"
    return str(v)


def to_jsonable(obj: object) -> object:
    """The one way a result becomes JSON: dataclasses and named tuples by their fields (or their `as_json`
    where the JSON's shape differs from the fields), dates and times as ISO 8601."""
    if obj is None or isinstance(obj, str | int | float):  # most of a large listing: answered first
        return obj
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, dt.date):  # a datetime is a date too
        return obj.isoformat()
    if hasattr(obj, "as_json") and not isinstance(obj, type):
        return to_jsonable(obj.as_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def as_json(obj: object) -> str:
    return json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2)


def as_csv(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """CSV with a BOM-less UTF-8 body (`--out` files get the BOM, see `cli.common.emit`); cells that a
    spreadsheet would run as formulas are quoted."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    # The csv module quotes a field with a line feed but not one with a lone CR, which readers then
    # take for a line break: such rows are written fully quoted.
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(headers)
    for row in rows:
        cells = [_safe(_csv_cell(v)) for v in row]
        (quoted if any("\r" in c for c in cells) else w).writerow(cells)
    return buf.getvalue().rstrip("\n")


def _csv_cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ";".join(str(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# Text a spreadsheet would take for a formula (or a DDE call) if it were typed into a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
