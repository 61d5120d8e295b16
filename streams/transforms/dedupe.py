"""dedupe: drop rows whose key was already seen within a window (shares quality_stream stores)."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from quality_stream.frame import as_text
from quality_stream.rules.freshness import to_epoch_seconds
from quality_stream.state import TTLStore
from streams.transforms.base import Transform, TransformSpec, transform_kind


class DedupeSpec(TransformSpec):
    kind: Literal["dedupe"]
    fields: list[str] = Field(min_length=1)
    window_seconds: float = Field(gt=0)
    time_field: str | None = None
    store: str | None = None  # name in build env; default: a private in-memory TTL store
    max_keys: int = Field(default=1_000_000, gt=0)

    def reads(self):
        return [*self.fields, *([self.time_field] if self.time_field else [])]


@transform_kind("dedupe")
class Dedupe(Transform):
    kind, settings = "dedupe", DedupeSpec

    def __init__(self, spec, env):
        super().__init__(spec, env)
        if spec.store and spec.store not in env.stores:
            from streams.transforms.base import config_error

            raise config_error("store", f"no state store named {spec.store!r}")
        self.store = env.stores[spec.store] if spec.store else TTLStore(spec.max_keys)

    def apply_frame(self, df):
        import time

        s = self.spec
        if df.height == 0:
            return df
        missing = [f for f in s.fields if f not in df.columns]
        if missing:
            return df  # no key -> nothing to dedupe on
        key = pl.concat_str([as_text(pl.col(f)) for f in s.fields], separator="\x1f")
        keys = df.select(key.fill_null("\x00null")).to_series().to_list()
        now = time.time()
        if s.time_field and s.time_field in df.columns:
            times = df.select(to_epoch_seconds(pl.col(s.time_field), df.schema[s.time_field], "ms", "Asia/Shanghai"))
            times = times.to_series().fill_null(now).to_list()
        else:
            times = now
        dup = self.store.check_and_add(keys, times, s.window_seconds)
        return df.filter(~pl.Series(dup, dtype=pl.Boolean))
