"""Reading the CSV files officials hand in: UTF-8 (with or without BOM) or GBK/GB18030 as Excel saves
them, quoted fields with embedded newlines, each record with the line it starts on."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from anjian.workflow.errors import BadInput

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


def read_bytes(path: Path | str, what: str = "file") -> bytes:
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{what} {p} is a directory, not a file")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise BadInput(f"{what} {p} cannot be read: {exc.strerror}") from None


def read_csv(path: Path | str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[list[Record], list[str]]:
    """Records of a CSV file whose header names `required` columns (and perhaps `optional` ones),
    with the problems of rows that could not be read; a bad header raises at once."""
    return parse_csv(decode(read_bytes(path, "CSV file"), str(path)), str(path), required, optional)


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
