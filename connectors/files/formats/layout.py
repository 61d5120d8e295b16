"""Spreadsheets made by people: which row is the header, which rows are titles, totals, footers.

Shared by the CSV and xlsx readers. `choose_header` looks at the first rows: when the connector
declares the fields it reads, the row naming most of them is the header; otherwise the first row
with two or more cells filled and at least half of its own width filled (a merged title cell or a
"填报单位: ..., 日期: ..." line is sparser). `Skipper` recognises totals and footer rows by the first non-empty cell.
"""

from __future__ import annotations

import re
from typing import Any

MAX_NOTED = 100


def cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def filled(values) -> int:
    return sum(1 for v in values if cell_text(v))


def choose_header(rows: list[list[Any]], declared: set[str] | None) -> int:
    """Index of the header among `rows` (the first non-blank rows of the sheet): the row naming
    most declared fields; else the first with at least two cells filled and at least half of its
    own width (up to its last filled cell) filled. A title (one merged cell) or a
    "填报单位：…, 填报日期：…" line is sparser; a wide malformed data row below cannot take over."""
    if not rows:
        return 0
    if declared:
        hits = [len(declared & {cell_text(v) for v in values}) for values in rows]
        best = max(hits)
        if best:
            return hits.index(best)
    for i, values in enumerate(rows):
        texts = [cell_text(v) for v in values]
        width = max((j + 1 for j, t in enumerate(texts) if t), default=0)
        count = sum(1 for t in texts if t)
        if count >= 2 and 2 * count >= width:
            return i
    return 0


_BLANKS = re.compile(r"[\s\u3000]+")


class Skipper:
    """Rows that are not data: the first non-empty cell, blanks removed, matches a pattern."""

    def __init__(self, patterns: list[str], notes: dict):
        self.patterns = [(p, re.compile(p)) for p in patterns]
        self.notes = notes
        notes.setdefault("skipped", [])
        notes.setdefault("skipped_count", 0)

    def __call__(self, values, line: int) -> bool:
        if not self.patterns:
            return False
        first = next((t for t in (cell_text(v) for v in values) if t), "")
        if not first:
            return False
        first = _BLANKS.sub("", first)
        for source, pattern in self.patterns:
            if pattern.search(first):
                self.notes["skipped_count"] += 1
                if len(self.notes["skipped"]) < MAX_NOTED:
                    self.notes["skipped"].append({"line": line, "pattern": source, "text": first[:80]})
                return True
        return False
