"""Finding a field's line in the TOML text of a campaign, so that a problem can say where it is.

`tomllib` keeps no positions, so the text is searched: the n-th `[[table]]` header, then `key =` below it.
"""

from __future__ import annotations

import re


class Locator:
    """Line numbers (1-based) of tables, fields and array elements in one TOML text."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line_of(self, table: str, index: int | None, key: str | None) -> int | None:
        """Line number of `key` inside the index-th `[[table]]` (or `[table]`)."""
        if not table:
            return self.top_line(key)
        header = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]" if index is not None
                            else r"^\s*\[\[?\s*" + re.escape(table) + r"\s*\]")
        seen = -1
        start = None
        for n, line in enumerate(self.lines):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = n
                    break
        if start is None:
            return None
        if key is None:
            return start + 1
        keyline = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for n in range(start + 1, len(self.lines)):
            if self.lines[n].lstrip().startswith("["):
                break
            if keyline.match(self.lines[n]):
                return n + 1
        # `key` may be a table of its own: [table.key] or [[table.key]] (a misspelt one is named there)
        sub = re.compile(r"^\s*\[\[?\s*" + re.escape(f"{table}.{key}") + r"\s*[\].]")
        for n in range(start + 1, len(self.lines)):
            if sub.match(self.lines[n]):
                return n + 1
        return start + 1

    def top_line(self, key: str | None) -> int | None:
        """Line of a top-level `key = …` (before the first table) or of a `[key…]`/`[[key…]]` header."""
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(key or "") + r"\s*[\].]")
        plain = re.compile(r"^\s*" + re.escape(key or "") + r"\s*=")
        in_tables = False
        for n, line in enumerate(self.lines):
            if header.match(line) or not in_tables and plain.match(line):
                return n + 1
            in_tables = in_tables or line.lstrip().startswith("[")
        return None

    def line_in_array(self, table: str, index: int | None, key: str, element: int) -> int | None:
        """Line of the element-th inline table of the array `key` (TOML keeps an inline table on one line)."""
        start = self.line_of(table, index, key)
        if start is None:
            return None
        seen, square, curly = -1, 0, 0
        for n in range(start - 1, len(self.lines)):
            text = self.lines[n].split("#", 1)[0]
            for ch in text.split("=", 1)[-1] if n == start - 1 else text:
                square += (ch == "[") - (ch == "]")
                if square <= 0 and ch == "]":
                    return start  # the array ended before that element: point at the field
                if ch == "{":
                    curly += 1
                    seen += curly == 1
                    if curly == 1 and seen == element:
                        return n + 1
                elif ch == "}":
                    curly -= 1
        return start

    def label_at(self, line: int) -> str:
        """The field written on a line, named as problems name it (`milestones[1].deadline`)."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.lstrip().startswith("["):
            return text.strip()
        keyed = re.compile(r"^\s*([\w.\-\"]+)\s*=")
        table, index, seen, opened = "", None, {}, None
        for before in self.lines[: line - 1]:
            m = re.match(r"^\s*(\[\[?)\s*([^\]\s]+)\s*\]", before)
            if m:
                table, opened = m[2], None
                seen[table] = seen.get(table, -1) + 1
                index = seen[table] if m[1] == "[[" else None
            elif keyed.match(before):  # a key whose array goes on below: its lines belong to it
                opened = keyed.match(before)[1] if before.count("[") > before.count("]") else None
        key = keyed.match(text)
        label = table + (f"[{index}]" if index is not None else "")
        return ".".join(filter(None, [label, key[1] if key else opened])) or "(top level)"
