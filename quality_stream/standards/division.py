"""GB/T 2260 administrative division codes (行政区划代码), loaded from data/gb2260_divisions.csv."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np
import polars as pl

Match = Literal["exact", "prefecture", "province"]


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, str]]:
    text = resources.files("quality_stream").joinpath("data/gb2260_divisions.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return {r["code"]: (r["name"], r["level"]) for r in rows}


_EXTRA: dict[str, tuple[str, str]] = {}


def add_codes(codes: dict[str, str], level: str = "county") -> None:
    """Add codes (e.g. county level or abolished historical codes) at runtime."""
    _EXTRA.update({c: (n, level) for c, n in codes.items()})
    _sets.cache_clear()
    _known_tables.cache_clear()


def divisions() -> dict[str, tuple[str, str]]:
    return {**_table(), **_EXTRA}


def division_name(code: str) -> str | None:
    hit = divisions().get(str(code))
    return hit[0] if hit else None


@lru_cache(maxsize=1)
def _sets() -> tuple[list[str], list[str], list[str]]:
    table = divisions()
    exact = sorted(table)
    prefectures = sorted({c[:4] for c, (_, lvl) in table.items() if lvl != "province"})
    provinces = sorted({c[:2] for c in table})
    return exact, prefectures, provinces


def is_known_division(code: str, match: Match = "prefecture") -> bool:
    code = str(code)
    if len(code) != 6 or not code.isdigit():
        return False
    exact, prefectures, provinces = _sets()
    if match == "exact":
        return code in set(exact)
    if match == "province":
        return code[:2] in set(provinces)
    if code.endswith("0000"):
        return code in set(exact)
    return code[:4] in set(prefectures)


@lru_cache(maxsize=1)
def _known_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The known codes as lookup tables indexed by the number: 6-digit codes, 4-digit
    prefecture prefixes, 2-digit provinces."""
    exact, prefectures, provinces = _sets()
    tables = []
    for codes, width in ((exact, 6), (prefectures, 4), (provinces, 2)):
        table = np.zeros(10**width, bool)
        table[np.array([int(c) for c in codes if len(c) == width and c.isascii() and c.isdigit()], np.int64)] = True
        tables.append(table)
    return tables[0], tables[1], tables[2]


def division_codes_known(codes: np.ndarray, match: Match = "prefecture") -> np.ndarray:
    """`division_known_expr` for codes already read as 6-digit numbers (an ID's first six)."""
    exact, prefectures, provinces = _known_tables()
    if match == "exact":
        return exact[codes]
    if match == "province":
        return provinces[codes // 10_000]
    return np.where(codes % 10_000 == 0, exact[codes], prefectures[codes // 100])


def division_known_expr(col: pl.Expr, match: Match = "prefecture") -> pl.Expr:
    """True if the 6-character text (or a code's first 6 characters) is a known division."""
    exact, prefectures, provinces = _sets()
    s = col.cast(pl.Utf8, strict=False).str.strip_chars().str.slice(0, 6)
    shape = s.str.contains(r"^[0-9]{6}$")
    if match == "exact":
        ok = s.is_in(exact)
    elif match == "province":
        ok = s.str.slice(0, 2).is_in(provinces)
    else:
        # Province-level codes (xx0000) must exist as such; others need a known prefecture prefix.
        ok = pl.when(s.str.ends_with("0000")).then(s.is_in(exact)).otherwise(s.str.slice(0, 4).is_in(prefectures))
    return pl.when(col.is_null()).then(None).otherwise((shape & ok).fill_null(False))
