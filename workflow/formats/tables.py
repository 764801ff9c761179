"""Reading the tables officials hand in, as their spreadsheets make them: CSV in UTF-8 (with or without
BOM), GBK/GB18030 or UTF-16 (Excel's "Unicode text", TAB-separated), comma, TAB or semicolon separated,
CRLF, trailing empty columns, Chinese or English headers (the words anjian's own exports use), and
`.xlsx` workbooks (the first sheet). Each record comes with the line (sheet row) it starts on."""

from __future__ import annotations

import csv
import io
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from anjian.i18n import N_, _, current, pgettext
from anjian.workflow.errors import BadInput
from anjian.workflow.settings import LIMIT_ENV, Limits

_UNCLOSED = N_("a quoted field opened on this line is never closed")
# What a file is called in a message (`read_bytes`'s `what`), marked here for the catalog.
_FILE_WORDS = (N_("file"), N_("CSV file"), N_("spreadsheet"), N_("registry file"), N_("campaign file"))


@dataclass(frozen=True)
class Record:
    line: int
    values: dict[str, str]


# Header words: the English column name, then the Chinese words anjian's exports and officials use.
# Several headers for one column (单位代码 and 单位 in an export): the earlier word in the list wins
# and the other column is ignored.
HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "unit": ("unit", "code", "单位代码", "代码", "单位", "单位名称", "乡镇", "名称"),
    "cohort": ("cohort", "类别代码", "类别", "分类"),
    "remove": ("remove", "移出", "删除"),
    "trigger": ("trigger", "触发代码", "触发", "操作", "动作"),
    "note": ("note", "备注", "说明", "意见"),
    "item": ("item", "清单项代码", "清单项", "项目代码", "项目"),
    "value": ("value", "填报值", "值", "数值"),
    "evidence": ("evidence", "证明材料", "附件", "材料"),
    "label": ("label", "内容", "清单项内容"),
    "required": ("required", "要求"),
    "current": ("current", "现值", "当前值"),
    "name": ("name", "姓名", "节日", "节假日", "名称"),
    "email": ("email", "邮箱", "电子邮箱"),
    "webhook": ("webhook",),
    "date": ("date", "日期"),
    "workday": ("workday", "工作日", "班休", "上班", "是否上班", "是否工作日"),
}
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


def decode(data: bytes, source: str) -> str:
    """Text of a file: UTF-16 when it starts with its BOM, else UTF-8 (a BOM is dropped), then GB18030,
    which covers GBK."""
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n\x00" if data[:2] == b"\xff\xfe" else b"\x00\n") + 1
            raise BadInput(_("{source}: line {line}: not UTF-16 text (byte {byte})").format(
                source=source, line=line, byte=exc.start)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as first:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as second:
            # The encoding that read further is the file's: a GBK file with one bad byte on line 9,999
            # fails as UTF-8 on its first Chinese character, and that line is not the one to name.
            at = max(first.start, second.start)
            line = data[:at].count(b"\n") + 1
            raise BadInput(_("{source}: line {line}: not UTF-8 or GBK text (byte {byte})").format(
                source=source, line=line, byte=at)) from None


def read_bytes(path: Path | str, what: str = "file", max_bytes: int | None = None) -> bytes:
    """The bytes of a file; with `max_bytes`, a file that holds more (a pipe or /dev/zero included,
    whose size no stat tells) is refused after reading one byte past the limit."""
    p = Path(path)
    if p.is_dir():
        raise BadInput(_("{what} {path} is a directory, not a file").format(what=_(what), path=p))
    try:
        if max_bytes is None:
            return p.read_bytes()
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise BadInput(_("{what} {path} does not exist").format(what=_(what), path=p)) from None
    except OSError as exc:
        raise BadInput(_("{what} {path} cannot be read: {reason}").format(
            what=_(what), path=p, reason=exc.strerror)) from None
    if len(data) > max_bytes:
        raise too_big(p, _("holds more than {size}").format(size=size_text(max_bytes)), max_bytes)
    return data


def read_csv(path: Path | str, required: tuple[str, ...], optional: tuple[str, ...] = (),
             limits: Limits | None = None) -> tuple[list[Record], list[str]]:
    """Records of a CSV file whose header names `required` columns (and perhaps `optional` ones),
    with the problems of rows that could not be read; a bad header raises at once. A file past the
    batch limits (`limits`, else the defaults) is refused before it is decoded."""
    limits = limits or Limits()
    counted = check_batch(path, limits)
    data = read_bytes(path, "CSV file", limits.batch_max_bytes)
    text = decode(data, str(path))
    if not counted:  # a pipe (`--file <(iconv …)`) can be read only once: its rows are counted in memory
        _refuse_rows(Path(path), _count_rows(io.StringIO(text, newline=""), limits.batch_max_rows), limits)
    return parse_csv(text, str(path), required, optional)


def read_table(path: Path | str, required: tuple[str, ...], optional: tuple[str, ...] = (),
               limits: Limits | None = None) -> tuple[list[Record], list[str]]:
    """Records of a table file, `.xlsx` (the first sheet) or CSV, as `read_csv` gives them."""
    if Path(str(path)).suffix.lower() in XLSX_SUFFIXES:
        return read_xlsx(path, required, optional, limits)
    return read_csv(path, required, optional, limits)


def read_xlsx(path: Path | str, required: tuple[str, ...], optional: tuple[str, ...] = (),
              limits: Limits | None = None) -> tuple[list[Record], list[str]]:
    """Records of the first sheet of an .xlsx workbook: the first non-empty row is the header; numbers,
    dates and 是/否 cells become the text an official would have typed. The batch limits hold as for CSV."""
    import zipfile

    from openpyxl import load_workbook

    limits = limits or Limits()
    p = Path(path)
    data = read_bytes(p, "spreadsheet", limits.batch_max_bytes)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        # the library's reason ("File is not a zip file") tells an official nothing: what the file may be does
        raise BadInput(_("{path}: not an .xlsx workbook as Excel or WPS save it (an old .xls, or another "
                         "file renamed to .xlsx?)").format(path=p)) from None
    ws = wb.worksheets[0]
    rows: list[tuple[int, list[str]]] = []
    for n, cells in enumerate(ws.iter_rows(values_only=True), 1):
        texts = [_cell_text(v) for v in cells]
        for col, t in enumerate(texts):
            if "\x00" in t:
                refuse_nul(t, str(p), _("row {row}, column {column}").format(row=n, column=col + 1))
        if any(t.strip() for t in texts):
            rows.append((n, texts))
            if len(rows) > limits.batch_max_rows + 1:
                break
    wb.close()
    if not rows:
        raise BadInput(_("{source}: the sheet is empty; the first row must name the columns {columns}").format(
            source=p, columns=column_names(required)))
    _refuse_rows(p, len(rows) - 1, limits)
    (head_line, header), body = rows[0], rows[1:]
    return _records(header, iter(body), str(p), required, optional, head_line)


def _cell_text(value: object) -> str:
    """A cell as typed text: 4 for 4.0, 是/否 for a boolean, 2015-03-20 for a date."""
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# -- the batch limits: checked before any work, by stat and by a count that stops at the limit ----------
def check_batch(path: Path | str, limits: Limits) -> bool:
    """Refuse a batch file over `limits.batch_max_bytes` (by its size, before reading it) or with more
    than `limits.batch_max_rows` data rows (counted while streaming, stopping one row past the limit).
    The count reads the bytes as Latin-1: quotes, commas and line ends are the same bytes in UTF-8 and
    GBK (no GBK trail byte is one of them), so it splits records as the real reading will. Returns
    whether the rows were counted: not those of a pipe, which would be used up."""
    p = Path(path)
    try:
        st = p.stat()
        if st.st_size > limits.batch_max_bytes:
            raise too_big(p, _("holds {size}").format(size=size_text(st.st_size)), limits.batch_max_bytes)
        if not stat.S_ISREG(st.st_mode):
            return False
        with p.open("rb") as raw:
            if raw.read(2) in UTF16_BOMS:
                return False  # UTF-16: its rows are counted once decoded (its size is checked above)
            raw.seek(0)
            rows = _count_rows(_as_latin1(_Capped(raw, limits.batch_max_bytes, p)), limits.batch_max_rows)
    except OSError:
        return False  # a missing, unreadable or directory path: read_bytes says which, in its words
    _refuse_rows(p, rows, limits)
    return True


def _refuse_rows(path: Path, rows: int, limits: Limits) -> None:
    if rows > limits.batch_max_rows:
        raise BadInput(_("batch file {path} holds more than {most} data rows (limit batch_max_rows); nothing was done. "
                         "Split the file, or raise the limit: config file [limits] batch_max_rows, or the environment "
                         "variable {env}").format(path=path, most=limits.batch_max_rows, env=LIMIT_ENV["batch_max_rows"]))


def _as_latin1(raw: io.RawIOBase | io.BufferedIOBase) -> io.TextIOBase:
    buffered = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw)
    return io.TextIOWrapper(buffered, "latin-1", newline="")


def _count_rows(text: io.TextIOBase, most: int) -> int:
    """Non-blank records after the header, counting no further than `most` + 1."""
    reader = csv.reader(text)
    rows = 0
    try:
        next(reader, None)
        for fields in reader:
            if any(f.strip() for f in fields):
                rows += 1
                if rows > most:
                    break
    except csv.Error:
        pass  # the real reading reports it, with its line
    return rows


class _Capped(io.RawIOBase):
    """A binary stream that refuses to give more than `most` bytes (a file growing while read, a
    pseudo-file whose stat says 0)."""

    def __init__(self, raw, most: int, path: Path):
        self.raw, self.left, self.most, self.path = raw, most, most, path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.left -= n
        if self.left < 0:
            raise too_big(self.path, _("holds more than {size}").format(size=size_text(self.most)), self.most)
        return n


def too_big(path: Path, size: str, most: int) -> BadInput:
    """The refusal of a batch file past batch_max_bytes; `size` says how big ("holds 25.9 MiB", translated)."""
    return BadInput(_("batch file {path} {size}, over the limit of {most} (batch_max_bytes); nothing was done. "
                      "Split the file, or raise the limit: config file [limits] batch_max_bytes, or the environment "
                      "variable {env}").format(path=path, size=size, most=size_text(most), env=LIMIT_ENV["batch_max_bytes"]))


def size_text(n: int) -> str:
    """A size as people read it: 812 字节 (812 bytes), 16 MiB, 25.9 MiB."""
    if n < 1024:
        return _("{n} bytes").format(n=n)
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")


def sniff_delimiter(text: str) -> str:
    """The separator of a CSV's header line: TAB for Excel's "Unicode text", `;` for some locales, else `,`."""
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def parse_csv(text: str, source: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[list[Record], list[str]]:
    refuse_nul(text, source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=sniff_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput(_("{source}: the file is empty; the first line must name the columns {columns}").format(
            source=source, columns=column_names(required))) from None
    except csv.Error as exc:
        raise BadInput(_("{source}: {where}: {problem}").format(
            source=source, where=line_of(1), problem=csv_problem(exc))) from None
    return _records(header, _csv_rows(reader), source, required, optional, 1)


def _csv_rows(reader):
    """(line, fields) of each CSV record after the header, or (line, csv.Error) for one that cannot be read."""
    last = reader.line_num
    while True:
        start = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # strict: a quote left open would otherwise swallow the rest of the file
            last = reader.line_num
            yield start, exc
            continue
        last = reader.line_num
        yield start, fields


def column_of(header: str, wanted: tuple[str, ...]) -> tuple[str, int] | None:
    """The column a header cell names among `wanted` (English or Chinese), with its rank among that
    column's words (0: the English name itself)."""
    h = unicodedata.normalize("NFKC", header).strip().lower()
    if h in wanted:
        return h, 0
    for c in wanted:
        words = HEADER_WORDS.get(c, (c,))
        if h in words:
            return c, words.index(h)
    return None


def _records(header: list[str], rows, source: str, required: tuple[str, ...], optional: tuple[str, ...],
             head_line: int) -> tuple[list[Record], list[str]]:
    """Records of a header and its rows (line, fields): empty header cells at the end are dropped with
    their (empty) fields; where two headers name one column, the better word is kept and the other ignored."""
    cells = list(header)
    while cells and not cells[-1].strip():
        cells.pop()
    wanted = required + optional
    names: list[str | None] = []
    best: dict[str, tuple[int, int]] = {}  # column -> (rank, position)
    problems: list[str] = []
    unknown: list[str] = []
    for pos, h in enumerate(cells):
        found = column_of(h, wanted)
        if found is None:
            names.append(None)
            unknown.append(unicodedata.normalize("NFKC", h).strip().lower() or _("(empty, column {n})").format(n=pos + 1))
            continue
        col, rank = found
        names.append(col)
        if col in best and best[col][0] == rank:
            problems.append(_("line {line}: column(s) named twice: {columns}").format(line=head_line, columns=column_names((col,))))
        elif col not in best or rank < best[col][0]:
            best[col] = (rank, pos)
    keep = {pos: col for col, (_, pos) in best.items()}
    missing = [c for c in required if c not in best]
    if missing:
        problems.insert(0, _("line {line}: missing column(s) {missing} (the header must name {columns})").format(
            line=head_line, missing=column_names(missing, _(", ")), columns=column_names(required)))
    if unknown:
        problems.append(_("line {line}: unknown column(s) {unknown} (allowed: {allowed})").format(
            line=head_line, unknown=_(", ").join(unknown), allowed=column_names(wanted, _(", "))))
    if problems:
        raise BadInput(_("{source}: bad header").format(source=source), problems)
    width = len(cells)
    records = []
    for line, fields in rows:
        if isinstance(fields, csv.Error):
            problems.append(_("line {line}: {problem}").format(line=line, problem=csv_problem(fields)))
            continue
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > width and not any(f.strip() for f in fields[width:]):
            fields = fields[:width]  # a trailing empty column, or an empty column more than the header
        if len(fields) != width:
            problems.append(_("line {line}: {count} fields where the header has {width}").format(
                line=line, count=len(fields), width=width))
            continue
        records.append(Record(line, {keep[i]: f.strip() for i, f in enumerate(fields) if i in keep}))
    return records, problems


def refuse_nul(text: str, source: str, where: str = "") -> None:
    """A NUL byte is no text an official typed (a binary file, or a cell made to break the store:
    PostgreSQL cannot hold it): refuse the whole file, naming the line (or the cell, `where`)."""
    at = text.find("\x00")
    if at >= 0:
        place = where or line_of(text.count(chr(10), 0, at) + 1)
        raise BadInput(_("{source}: {where}: holds a NUL byte (\\0), not text; nothing was written").format(
            source=source, where=place))


def refuse_if(problems: list[str], source: str) -> None:
    """All or nothing: any bad row stops the whole file, and every bad row is reported."""
    if problems:
        raise BadInput(_("{source}: {count} bad row(s); nothing was written").format(source=source, count=len(problems)),
                       problems)


def line_of(n: int) -> str:
    """"line 3" in the current language (第 3 行)."""
    return _("line {line}").format(line=n)


def csv_problem(exc: csv.Error) -> str:
    """What the csv module's error means, said to an official: Python's words are kept only for the rare
    error we have no sentence for."""
    text = str(exc)
    if text == "unexpected end of data":
        return _(_UNCLOSED)
    if text.startswith("field larger than field limit"):
        return _("a field is longer than {limit} characters").format(limit=csv.field_size_limit())
    if "expected after" in text:
        return _("text follows a closing quote (a quote inside a quoted field is written twice: \"\")")
    return _("not readable as CSV ({error})").format(error=text)


def column_names(columns, sep: str = ",") -> str:
    """Column identifiers as a header names them (joined by `sep`); in Chinese each with its word,
    joined by 、: unit（单位）、cohort（类别）."""
    if current() == "en":
        return sep.join(columns)
    words = _column_words()
    return _(", ").join(f"{c}（{words[c]}）" if c in words else c for c in columns)


def _column_words() -> dict[str, str]:
    return {
        "unit": pgettext("column", "unit"), "cohort": pgettext("column", "cohort"),
        "remove": pgettext("column", "remove"), "trigger": pgettext("column", "trigger"),
        "note": pgettext("column", "note"), "item": pgettext("column", "item"),
        "value": pgettext("column", "value"), "evidence": pgettext("column", "evidence"),
        "label": pgettext("column", "label"), "required": pgettext("column", "required"),
        "current": pgettext("column", "current"), "name": pgettext("column", "name"),
        "email": pgettext("column", "email"), "webhook": pgettext("column", "webhook"),
        "date": pgettext("column", "date"), "workday": pgettext("column", "workday"),
    }
