"""One renderer for every command: rows as an aligned table (wide-character aware), JSON or CSV."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import shutil
import unicodedata
from collections.abc import Sequence
from contextvars import ContextVar
from functools import lru_cache

from anjian.i18n import _


@lru_cache(maxsize=65536)
def width_of(text: str) -> int:
    """Terminal columns a string takes: CJK characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


width = width_of  # the older name, still used by other modules


def pad(text: str, cols: int) -> str:
    return text + " " * max(0, cols - width_of(text))


# The width of the client's terminal when the service renders for a remote command (None: a pipe);
# unset in embedded mode, where the terminal is this process's own.
CLIENT_COLUMNS: ContextVar[int | None] = ContextVar("anjian_client_columns")


def terminal_width() -> int | None:
    """Columns of the terminal the tables are written to: COLUMNS when set, else the terminal's own width;
    None when writing to a file or a pipe (a table for a script is never cut). For a remote command, the
    client's terminal (CLIENT_COLUMNS)."""
    client = CLIENT_COLUMNS.get(False)
    if client is not False:
        return client
    size = shutil.get_terminal_size(fallback=(0, 0))
    return size.columns or None


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, drop: Sequence[int] = (),
          width: int | None = 0, note: bool = True) -> str:
    """Rows as an aligned table that fits `width` columns (0: the terminal's, `terminal_width`; None: no
    limit): long cells wrap onto more lines; when wrapping is not enough, the columns in `drop` go, first
    listed first, and a last line names them."""
    limit = terminal_width() if width == 0 else width
    cells = [[_cell(v) for v in row] for row in rows]
    sizes = [[width_of(c) for c in r] for r in cells]  # each cell measured once
    widths = [max([width_of(h)] + [s[i] for s in sizes]) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    dropped: list[str] = []
    if limit and _total(widths, keep) > limit:
        mins = [min(w, max(width_of(h), MIN_WRAP)) for h, w in zip(headers, widths, strict=True)]
        for col in drop:
            if _total(mins, keep) <= limit:
                break
            keep.remove(col)
            dropped.append(headers[col])
        widths = _shrink(widths, mins, keep, limit)
    head = [headers[i] for i in keep]
    shown = [widths[i] for i in keep]
    lines = ["  ".join(pad(h, w) for h, w in zip(head, shown, strict=True)).rstrip(),
             "  ".join("-" * w for w in shown)]
    for r, s in zip(cells, sizes, strict=True):
        if all(s[i] <= widths[i] for i in keep):  # the common case: one line, nothing to wrap
            lines.append("  ".join(r[i] + " " * (widths[i] - s[i]) for i in keep).rstrip())
            continue
        parts = [wrap(r[i], widths[i]) for i in keep]
        for k in range(max(len(p) for p in parts)):
            lines.append("  ".join(pad(p[k] if k < len(p) else "", w) for p, w in zip(parts, shown, strict=True)).rstrip())
    if dropped and note:
        lines += wrap(_("(too narrow: {columns} left out; widen the terminal or use --format csv)").format(
            columns=_(", ").join(dropped)), limit)
    return "\n".join(lines)


def fit_lines(text: str, cols: int | None = 0) -> str:
    """Each line of `text` wrapped to `cols` terminal columns (0: the terminal's; None: as it is), the
    continuation lines indented two more than the line they continue."""
    limit = terminal_width() if cols == 0 else cols
    if not limit:
        return text
    out = []
    for line in text.splitlines():
        if width_of(line) <= limit:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
        first, *rest = wrap(line, limit)
        out.append(first)
        for part in rest:
            out.extend(indent + p for p in wrap(part, max(limit - len(indent), 10)))
    return "\n".join(out)


MIN_WRAP = 10  # a wrapped column keeps at least this many terminal columns (or its header's width)
BREAKS = "、，,;；/ "  # a line is best broken after one of these


def _total(widths: Sequence[int], keep: Sequence[int]) -> int:
    return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)


def _shrink(widths: list[int], mins: list[int], keep: list[int], limit: int) -> list[int]:
    """Narrow the widest columns, one terminal column at a time, until the table fits (or none can give)."""
    out = list(widths)
    excess = _total(out, keep) - limit
    while excess > 0:
        col = max((i for i in keep if out[i] > mins[i]), key=lambda i: out[i] - mins[i], default=None)
        if col is None:
            break
        out[col] -= 1
        excess -= 1
    return out


def wrap(text: str, cols: int) -> list[str]:
    """`text` in lines of at most `cols` terminal columns, broken after a separator where one is near."""
    if width_of(text) <= cols:
        return [text]
    lines: list[str] = []
    line, used, brk = "", 0, -1
    for ch in text:
        w = 2 if not ch.isascii() and unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > cols:
            if brk > 0 and brk > len(line) // 2:
                lines.append(line[:brk].rstrip())
                line = line[brk:].lstrip()
            else:
                lines.append(line)
                line = ""
            used, brk = width_of(line), -1
        line += ch
        used += w
        if ch in BREAKS:
            brk = len(line)
    if line:
        lines.append(line)
    return lines


def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if isinstance(v, list | tuple):
        return _(", ").join(_cell(x) for x in v) if v else "—"
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
