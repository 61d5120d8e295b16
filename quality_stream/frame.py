"""Turn a micro-batch of row dicts into one polars DataFrame (built once per batch)."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl


def rows_to_frame(rows: list[dict], ensure_columns: Iterable[str] = ()) -> pl.DataFrame:
    """Build a frame from row images.

    Scanning every row for the schema (infer_schema_length=None) matters because change
    events are sparse: a column may be absent from the first rows. Columns that mix
    types (e.g. int and str phone numbers) are coerced to strings by polars, which is
    what the format rules want anyway. Columns referenced by rules but absent from the
    batch are added as nulls so "required" fails instead of raising.
    """
    if rows:
        try:
            df = pl.from_dicts(rows, infer_schema_length=None)
        except (pl.exceptions.ComputeError, TypeError, ValueError, OverflowError):
            df = _column_by_column(rows)
    else:
        df = pl.DataFrame()
    missing = [c for c in dict.fromkeys(ensure_columns) if c not in df.columns]
    if missing:
        nulls = [pl.Series(c, [None] * len(rows), dtype=pl.Null) for c in missing]
        df = df.hstack(nulls) if df.width else pl.DataFrame(nulls)
    return df


def _column_by_column(rows: list[dict]) -> pl.DataFrame:
    """Slow path for types polars cannot unify (e.g. str and date): such columns become text."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    series = []
    for c in cols:
        values = [r.get(c) for r in rows]
        try:
            series.append(pl.Series(c, values))
        except Exception:
            series.append(pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.Utf8))
    return pl.DataFrame(series)


def as_text(expr: pl.Expr) -> pl.Expr:
    """Cast any column to string so format checks work on ints (e.g. phone 13800138000)."""
    return expr.cast(pl.Utf8, strict=False)
