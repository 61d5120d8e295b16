"""standardise: map local codes to a standard code set (e.g. '男' -> GB/T 2261.1 '1')."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from streams.transforms.base import Transform, TransformSpec, config_error, transform_kind


class StandardiseSpec(TransformSpec):
    kind: Literal["standardise"]
    field: str
    mapping: dict[str, str] = Field(min_length=1)  # local value -> standard code
    code_set: str | None = None  # if given, every mapping target must be in it
    target: str | None = None  # output column (default: overwrite field)
    unmapped: Literal["keep", "null"] = "keep"

    def reads(self):
        return [self.field]

    def after(self, columns):
        return list(dict.fromkeys([*columns, self.target or self.field]))


@transform_kind("standardise", "standardize")
class Standardise(Transform):
    kind, settings = "standardise", StandardiseSpec

    def __init__(self, spec, env):
        super().__init__(spec, env)
        if spec.code_set:
            from quality_stream.standards import rules as _  # noqa: F401  registers GB code sets
            from quality_stream.standards.codesets import get_code_set

            try:
                allowed = set(get_code_set(spec.code_set))
            except KeyError as exc:
                raise config_error("code_set", str(exc.args[0])) from None
            bad = sorted({v for v in spec.mapping.values() if v not in allowed})
            if bad:
                raise config_error("mapping", f"targets not in code set {spec.code_set}: {bad}")

    def apply_frame(self, df):
        s = self.spec
        out = s.target or s.field
        if s.field not in df.columns:
            return df
        text = pl.col(s.field).cast(pl.Utf8, strict=False).str.strip_chars()
        default = text if s.unmapped == "keep" else pl.lit(None, dtype=pl.Utf8)
        mapped = text.replace_strict(list(s.mapping), list(s.mapping.values()), default=default, return_dtype=pl.Utf8)
        return df.with_columns(mapped.alias(out))
