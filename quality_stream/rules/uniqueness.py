"""Uniqueness of a key within a time window, backed by a pluggable SeenStore."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from quality_stream.frame import as_text
from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, rule_kind
from quality_stream.rules.freshness import to_epoch_seconds


class UniqueSpec(RuleSpec):
    kind: Literal["unique"]
    fields: list[str] = Field(min_length=1, description="key fields")
    window_seconds: float = Field(gt=0)
    # Event-time field; without it the batch clock (processing time) is used.
    time_field: str | None = None
    store: str = "default"
    epoch_unit: Literal["s", "ms", "us"] = "ms"
    naive_timezone: str = "Asia/Shanghai"


@rule_kind
class Unique(Rule):
    """The first occurrence of a key passes; repeats within the window fail.

    Rows with a null key part are not checked (completeness is a separate rule).
    Stateful: evaluating the same batch twice flags every row the second time.
    """

    kind = "unique"
    settings = UniqueSpec
    default_dimension = "uniqueness"
    stateful = True

    def columns(self):
        return list(self.spec.fields) + ([self.spec.time_field] if self.spec.time_field else [])

    def masks(self, df, ctx):
        s = self.spec
        store = ctx.stores.get(s.store)
        if store is None:
            raise KeyError(f"rule {s.id!r}: no state store named {s.store!r}")
        keyed = pl.all_horizontal([pl.col(f).is_not_null() for f in s.fields])
        exprs = [
            keyed.alias("__keyed"),
            pl.concat_str([pl.lit(s.id)] + [as_text(pl.col(f)) for f in s.fields], separator="\x1f").alias("__key"),
        ]
        if s.time_field:
            dtype = df.schema.get(s.time_field, pl.Null)
            if dtype == pl.Null:
                exprs.append(pl.lit(None, dtype=pl.Float64).alias("__t"))
            else:
                exprs.append(to_epoch_seconds(pl.col(s.time_field), dtype, s.epoch_unit, s.naive_timezone).alias("__t"))
        sub = df.select(exprs).with_row_index("__i").filter(pl.col("__keyed"))
        now = ctx.now.timestamp()
        times = sub["__t"].fill_null(now).to_list() if s.time_field else now
        dup = store.check_and_add(sub["__key"].to_list(), times, s.window_seconds)
        mask = [False] * df.height
        for i, d in zip(sub["__i"].to_list(), dup):
            if d:
                mask[i] = True
        field = s.fields[0] if len(s.fields) == 1 else "+".join(s.fields)
        return [(field, pl.Series(mask, dtype=pl.Boolean))]

    def describe_failure(self, field):
        return f"duplicate {'+'.join(self.spec.fields)} within {self.spec.window_seconds:g}s"
