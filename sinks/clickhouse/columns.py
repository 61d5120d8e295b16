"""A decoded envelope frame (sinks.base.SinkFrame) as the columns of a ClickHouse insert.

`frame_series` picks each row's image (the after-image, the before-image for deletes) and the
meta columns as polars Series; the native backend writes those straight into ClickHouse's block
layout (sinks.clickhouse.native). `python_values` turns one into the list clickhouse-driver (and
chdb) take, converted in polars so the driver gets values it writes without per-item work where
it allows it: DateTime as epoch seconds (the driver's fast path for ints; 18.16 has seconds
only), decimals as text, booleans as 0/1, enums and UUIDs as text, times as micro-seconds.
"""

from __future__ import annotations

from typing import Any

import polars as pl

META_COLUMNS = [("_op", "String"), ("_version", "UInt64"), ("_deleted", "UInt8"), ("_ts_ms", "Int64")]


def python_values(series: pl.Series, ch_type: str) -> list[Any]:
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


def frame_series(frame: pl.DataFrame, fields: list[tuple[str, str]]) -> list[tuple[str, str, pl.Series]]:
    """(column, type, values): the row's fields (after-image, or before-image for deletes), then
    META_COLUMNS, in that order."""
    ops = frame.get_column("op").cast(pl.Utf8)
    deleted = ops == "d"
    if deleted.any():
        rows = frame.select(
            pl.when(pl.col("op") == "d").then(pl.col("before")).otherwise(pl.col("after")).alias("row")
        ).unnest("row")
    else:  # the common batch: no deletes, the after-images as they are
        rows = frame.get_column("after").struct.unnest()
    columns = [
        (name, ch_type, rows.get_column(name) if name in rows.columns else pl.Series(name, [None] * frame.height))
        for name, ch_type in fields
    ]
    sequence = frame.get_column("source").struct.field("sequence")
    meta = (ops, sequence, deleted.cast(pl.UInt8), frame.get_column("ts_ms"))
    return columns + [(name, ch_type, values) for (name, ch_type), values in zip(META_COLUMNS, meta, strict=True)]


def frame_columns(frame: pl.DataFrame, fields: list[tuple[str, str]]) -> list[list[Any]]:
    """`frame_series` as Python lists, in the same order."""
    return [python_values(values, ch_type) for _, ch_type, values in frame_series(frame, fields)]
