"""flatten: nested dict fields (polars structs) become parent.child columns."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from streams.transforms.base import Transform, TransformSpec, transform_kind


class FlattenSpec(TransformSpec):
    kind: Literal["flatten"]
    fields: list[str] | None = None  # None: every struct column
    separator: str = Field(default=".", min_length=1)
    max_depth: int = Field(default=8, ge=1)

    def reads(self):
        return list(self.fields or [])

    def after(self, columns):
        return None  # the new columns come from the structs' fields, known only from data


@transform_kind("flatten")
class Flatten(Transform):
    kind, settings = "flatten", FlattenSpec

    def apply_frame(self, df):
        s = self.spec
        targets = set(s.fields) if s.fields is not None else None
        for _ in range(s.max_depth):
            structs = [
                c
                for c, t in df.schema.items()
                if isinstance(t, pl.Struct)
                and (targets is None or c in targets or any(c.startswith(p + s.separator) for p in targets))
            ]
            if not structs:
                break
            exprs = []
            for c in df.columns:
                if c in structs:
                    exprs += [
                        pl.col(c).struct.field(f.name).alias(f"{c}{s.separator}{f.name}") for f in df.schema[c].fields
                    ]
                else:
                    exprs.append(pl.col(c))
            df = df.select(exprs)
        return df
