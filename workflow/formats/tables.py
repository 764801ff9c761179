"""Reading the CSV files officials hand in: UTF-8 (with or without BOM) or GBK/GB18030 as Excel saves
them, quoted fields with embedded newlines, each record with the line it starts on."""

from __future__ import annotations

import csv
import io
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from anjian.workflow.errors import BadInput
from anjian.workflow.settings import LIMIT_ENV, Limits

_UNCLOSED = "a quoted field opened on this line is never closed"


@dataclass(frozen=True)
class Record:
    line: int
    values: dict[str, str]


def decode(data: bytes, source: str) -> str:
    """Text of a file: UTF-8 first (a BOM is dropped), then GB18030, which covers GBK."""
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
            raise BadInput(f"{source}: line {line}: not UTF-8 or GBK text (byte {at})") from None


def read_bytes(path: Path | str, what: str = "file", max_bytes: int | None = None) -> bytes:
    """The bytes of a file; with `max_bytes`, a file that holds more (a pipe or /dev/zero included,
    whose size no stat tells) is refused after reading one byte past the limit."""
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{what} {p} is a directory, not a file")
    try:
        if max_bytes is None:
            return p.read_bytes()
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise BadInput(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise BadInput(f"{what} {p} cannot be read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise too_big(p, f"超过 {size_text(max_bytes)}", max_bytes)
    return data


def read_csv(path: Path | str, required: tuple[str, ...], optional: tuple[str, ...] = (),
             limits: Limits | None = None) -> tuple[list[Record], list[str]]:
    """Records of a CSV file whose header names `required` columns (and perhaps `optional` ones),
    with the problems of rows that could not be read; a bad header raises at once. A file past the
    batch limits (`limits`, else the defaults) is refused before it is decoded."""
    limits = limits or Limits()
    counted = check_batch(path, limits)
    data = read_bytes(path, "CSV file", limits.batch_max_bytes)
    if not counted:  # a pipe (`--file <(iconv …)`) can be read only once: its rows are counted in memory
        _refuse_rows(Path(path), _count_rows(_as_latin1(io.BytesIO(data)), limits.batch_max_rows), limits)
    return parse_csv(decode(data, str(path)), str(path), required, optional)


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
            raise too_big(p, f"有 {size_text(st.st_size)}", limits.batch_max_bytes)
        if not stat.S_ISREG(st.st_mode):
            return False
        with p.open("rb") as raw:
            rows = _count_rows(_as_latin1(_Capped(raw, limits.batch_max_bytes, p)), limits.batch_max_rows)
    except OSError:
        return False  # a missing, unreadable or directory path: read_bytes says which, in its words
    _refuse_rows(p, rows, limits)
    return True


def _refuse_rows(path: Path, rows: int, limits: Limits) -> None:
    if rows > limits.batch_max_rows:
        raise BadInput(f"批量文件 {path} 超过 {limits.batch_max_rows} 行数据（上限 batch_max_rows）；未做任何处理。"
                       f"请拆分文件，或调高上限：配置文件 [limits] batch_max_rows，或环境变量 {LIMIT_ENV['batch_max_rows']}")


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
            raise too_big(self.path, f"超过 {size_text(self.most)}", self.most)
        return n


def too_big(path: Path, size: str, most: int) -> BadInput:
    return BadInput(f"批量文件 {path} {size}，超过上限 {size_text(most)}（batch_max_bytes）；未做任何处理。"
                    f"请拆分文件，或调高上限：配置文件 [limits] batch_max_bytes，或环境变量 {LIMIT_ENV['batch_max_bytes']}")


def size_text(n: int) -> str:
    """A size as people read it: 812 字节, 16 MiB, 25.9 MiB."""
    if n < 1024:
        return f"{n} 字节"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")


def parse_csv(text: str, source: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[list[Record], list[str]]:
    refuse_nul(text, source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput(f"{source}: the file is empty; the first line must name the columns {','.join(required)}") from None
    except csv.Error as exc:
        raise BadInput(f"{source}: line 1: {exc}") from None
    names = [unicodedata.normalize("NFKC", h).strip().lower() for h in header]
    problems = []
    missing = [c for c in required if c not in names]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)} (the header must name {','.join(required)})")
    unknown = [h for h in names if h not in required and h not in optional]
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(required + optional)})")
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        problems.append(f"line 1: column(s) named twice: {', '.join(dupes)}")
    if problems:
        raise BadInput(f"{source}: bad header", problems)
    records, last = [], reader.line_num
    while True:
        start = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # strict: a quote left open would otherwise swallow the rest of the file
            last = reader.line_num
            problems.append(f"line {start}: {_UNCLOSED if str(exc) == 'unexpected end of data' else exc}")
            continue
        last = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            problems.append(f"line {start}: {len(fields)} fields where the header has {len(names)}")
            continue
        records.append(Record(start, {n: f.strip() for n, f in zip(names, fields, strict=True)}))
    return records, problems


def refuse_nul(text: str, source: str, where: str = "") -> None:
    """A NUL byte is no text an official typed (a binary file, or a cell made to break the store:
    PostgreSQL cannot hold it): refuse the whole file, naming the line (or the cell, `where`)."""
    at = text.find("\x00")
    if at >= 0:
        place = where or f"line {text.count(chr(10), 0, at) + 1}"
        raise BadInput(f"{source}: {place}: 含 NUL 字节（\\0），不是文本；什么也没有写入")


def refuse_if(problems: list[str], source: str) -> None:
    """All or nothing: any bad row stops the whole file, and every bad row is reported."""
    if problems:
        raise BadInput(f"{source}: {len(problems)} bad row(s); nothing was written", problems)
