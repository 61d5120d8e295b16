"""Timeliness: event time must not be older than N seconds (nor too far in the future)."""

from __future__ import annotations

from datetime import UTC
from typing import Literal

import polars as pl
from pydantic import Field

from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, null_safe, rule_kind


class FreshnessSpec(RuleSpec):
    kind: Literal["freshness"]
    fields: list[str] = Field(min_length=1, max_length=1)
    max_age_seconds: float = Field(gt=0)
    # Clock skew allowance; events further in the future are as suspicious as stale ones.
    max_future_seconds: float | None = Field(default=300, ge=0)
    # Integer timestamps are epoch values in this unit.
    epoch_unit: Literal["s", "ms", "us"] = "ms"
    # Naive datetimes from Chinese source systems are usually Beijing time.
    naive_timezone: str = "Asia/Shanghai"


def to_epoch_seconds(col: pl.Expr, dtype: pl.DataType, epoch_unit: str, naive_tz: str) -> pl.Expr:
    """Normalise a datetime/date/epoch/ISO-string column to float epoch seconds (UTC)."""
    if dtype.is_integer() or dtype.is_float():
        div = {"s": 1, "ms": 1_000, "us": 1_000_000}[epoch_unit]
        return col.cast(pl.Float64) / div
    if dtype == pl.Date:
        dt = col.cast(pl.Datetime("us"))
    elif isinstance(dtype, pl.Datetime):
        dt = col
    else:
        dt = col.cast(pl.Utf8, strict=False).str.to_datetime(time_unit="us", strict=False)
    if not (isinstance(dtype, pl.Datetime) and dtype.time_zone):
        dt = dt.dt.replace_time_zone(naive_tz, ambiguous="earliest", non_existent="null")
    return dt.dt.epoch("us").cast(pl.Float64) / 1_000_000


@rule_kind
class Freshness(Rule):
    kind = "freshness"
    settings = FreshnessSpec
    default_dimension = "timeliness"

    def field_mask(self, col, df, ctx):
        s = self.spec
        dtype = df.schema.get(col.meta.output_name(), pl.Null)
        if dtype == pl.Null:
            return pl.lit(False)
        now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)
        now_s = now.timestamp()
        ts = to_epoch_seconds(col, dtype, s.epoch_unit, s.naive_timezone)
        bad = col.is_not_null() & ts.is_null()
        bad = bad | (ts < now_s - s.max_age_seconds)
        if s.max_future_seconds is not None:
            bad = bad | (ts > now_s + s.max_future_seconds)
        return null_safe(bad)

    def describe_failure(self, field):
        return f"{field} is older than {self.spec.max_age_seconds:g}s"
