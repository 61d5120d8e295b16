"""lookup / enrich: left-join columns from a provided reference table (e.g. a compacted topic)."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field

from streams.transforms.base import Transform, TransformSpec, config_error, transform_kind


class LookupSpec(TransformSpec):
    kind: Literal["lookup"]
    key: str  # row field holding the lookup key
    table: str  # LookupTable name in the build env (values: dicts or scalars)
    # Output column -> attribute of the looked-up value ("value" for scalar tables).
    fields: dict[str, str] = Field(min_length=1)
    defaults: dict[str, Any] = {}

    def reads(self):
        return [self.key]

    def after(self, columns):
        return list(dict.fromkeys([*columns, *self.fields]))


@transform_kind("lookup", "enrich")
class Lookup(Transform):
    kind, settings = "lookup", LookupSpec

    def __init__(self, spec, env):
        super().__init__(spec, env)
        if spec.table not in env.lookups:
            raise config_error("table", f"no lookup table named {spec.table!r} (pass lookups= to build_transforms)")
        self.table = env.lookups[spec.table]
        self._cache: tuple[int, pl.DataFrame] | None = None  # (table version, frame)

    def _frame(self) -> pl.DataFrame:
        # Rebuilt only when the table changed, so per-batch cost is one hash join. The version is
        # read before the data: a change racing with the copy makes the next batch rebuild.
        sig = self.table.version
        if self._cache is None or self._cache[0] != sig:
            data = self.table.as_dict()
            rows = []
            for k, v in data.items():
                attrs = v if isinstance(v, dict) else {"value": v}
                rows.append({"__lk": str(k), **{out: attrs.get(src) for out, src in self.spec.fields.items()}})
            frame = (
                pl.from_dicts(rows, infer_schema_length=None)
                if rows
                else pl.DataFrame({"__lk": []}, schema={"__lk": pl.Utf8})
            )
            for out in self.spec.fields:
                if out not in frame.columns:
                    frame = frame.with_columns(pl.lit(None).alias(out))
            self._cache = (sig, frame)
        return self._cache[1]

    def apply_frame(self, df):
        s = self.spec
        if s.key not in df.columns:
            return df.with_columns([pl.lit(s.defaults.get(o)).alias(o) for o in s.fields])
        right = self._frame()
        left = df.drop([o for o in s.fields if o in df.columns])
        out = (
            left.with_columns(pl.col(s.key).cast(pl.Utf8, strict=False).alias("__lk"))
            .join(right, on="__lk", how="left", maintain_order="left")
            .drop("__lk")
        )
        if s.defaults:
            out = out.with_columns([pl.col(o).fill_null(pl.lit(v)) for o, v in s.defaults.items() if o in out.columns])
        return out
