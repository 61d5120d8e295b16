"""A decoded envelope frame (sinks.base.SinkFrame) as the column lists clickhouse-driver inserts.

Conversions run in polars, per column, so the driver gets values it writes without per-item
work where it allows it: DateTime as epoch seconds (the driver's fast path for ints; 18.16 has
seconds only), decimals as text, booleans as 0/1, enums and UUIDs as text, times as micro-seconds.
"""

from __future__ import annotations

from typing import Any

import polars as pl

META_COLUMNS = [("_op", "String"), ("_version", "UInt64"), ("_deleted", "UInt8"), ("_ts_ms", "Int64")]


def _column(series: pl.Series, ch_type: str) -> list[Any]:
    plain = ch_type.removeprefix("Nullable(").removesuffix(")") if ch_type.startswith("Nullable(") else ch_type
    dtype = series.dtype
    if plain == "DateTime" and isinstance(dtype, pl.Datetime):
        return series.dt.epoch("s").to_list()
    if isinstance(dtype, pl.Time):
        return (series.cast(pl.Int64) // 1000).to_list()  # polars keeps nano-seconds
    if isinstance(dtype, pl.Decimal):  # the driver parses str(value) anyway: skip building Decimal objects
        return series.cast(pl.Utf8).to_list()
    if dtype == pl.Boolean:
        return series.cast(pl.UInt8).to_list()
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return series.cast(pl.Utf8).to_list()
    if dtype == pl.Binary:  # bytes map to String; the driver wants text
        return [None if v is None else v.decode("utf-8", "replace") for v in series.to_list()]
    return series.to_list()


def frame_columns(frame: pl.DataFrame, fields: list[tuple[str, str]]) -> list[list[Any]]:
    """Row columns (after-image, or before-image for deletes) then META_COLUMNS, in that order."""
    deleted = pl.col("op") == "d"
    rows = frame.select(pl.when(deleted).then(pl.col("before")).otherwise(pl.col("after")).alias("row")).unnest("row")
    columns = [
        _column(rows.get_column(name), ch_type) if name in rows.columns else [None] * frame.height
        for name, ch_type in fields
    ]
    meta = frame.select(
        pl.col("op").cast(pl.Utf8).alias("_op"),
        pl.col("source").struct.field("sequence"),
        deleted.cast(pl.UInt8).alias("_deleted"),
        pl.col("ts_ms"),
    )
    return columns + [meta.to_series(i).to_list() for i in range(meta.width)]
