"""Numeric and date range rules."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import polars as pl
from pydantic import Field, model_validator

from quality_stream.expr import _to_date
from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, null_safe, rule_kind


class RangeSpec(RuleSpec):
    kind: Literal["range"]
    fields: list[str] = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("range rule needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must be <= max")
        return self


@rule_kind
class Range(Rule):
    """Values outside [min, max] fail; non-numeric values fail too (they cannot be in range)."""

    kind = "range"
    settings = RangeSpec

    def field_mask(self, col, df, ctx):
        s = self.spec
        num = col.cast(pl.Float64, strict=False)
        if df.schema.get(col.meta.output_name()) == pl.Utf8:
            num = col.str.strip_chars().cast(pl.Float64, strict=False)
        bad = col.is_not_null() & num.is_null()
        if s.min is not None:
            bad = bad | ((num < s.min) if s.min_inclusive else (num <= s.min))
        if s.max is not None:
            bad = bad | ((num > s.max) if s.max_inclusive else (num >= s.max))
        return null_safe(bad)

    def describe_failure(self, field):
        return f"{field} must be within [{self.spec.min}, {self.spec.max}]"


DateBound = date | Literal["today"] | None


class DateRangeSpec(RuleSpec):
    kind: Literal["date_range"]
    fields: list[str] = Field(min_length=1)
    min: DateBound = None
    max: DateBound = None
    # Relative bounds in days from the batch date, e.g. max_age_days=54750 (150 years).
    min_days_ago: int | None = Field(default=None, ge=0)
    max_days_ahead: int | None = None

    @model_validator(mode="after")
    def _bounds(self):
        if all(v is None for v in (self.min, self.max, self.min_days_ago, self.max_days_ahead)):
            raise ValueError("date_range rule needs min, max, min_days_ago or max_days_ahead")
        return self


@rule_kind
class DateRange(Rule):
    kind = "date_range"
    settings = DateRangeSpec
    default_dimension = "accuracy"

    def field_mask(self, col, df, ctx):
        s = self.spec
        today = ctx.now.date()
        d = _to_date(col)
        bad = col.is_not_null() & d.is_null()  # unparseable dates are out of range
        lo = today if s.min == "today" else s.min
        hi = today if s.max == "today" else s.max
        if s.min_days_ago is not None:
            lo2 = today - timedelta(days=s.min_days_ago)
            lo = max(lo, lo2) if isinstance(lo, date) else lo2
        if s.max_days_ahead is not None:
            hi2 = today + timedelta(days=s.max_days_ahead)
            hi = min(hi, hi2) if isinstance(hi, date) else hi2
        if isinstance(lo, date):
            bad = bad | (d < pl.lit(lo, dtype=pl.Date))
        if isinstance(hi, date):
            bad = bad | (d > pl.lit(hi, dtype=pl.Date))
        return null_safe(bad)

    def describe_failure(self, field):
        return f"{field} date out of range"
