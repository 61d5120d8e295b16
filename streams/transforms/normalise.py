"""trim / normalise: strip, full-width -> half-width, whitespace collapse, case, empty -> null."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import model_validator

from streams.transforms.base import Transform, TransformSpec, transform_kind

# Full-width ASCII block U+FF01..U+FF5E maps to U+0021..U+007E; U+3000 is the ideographic space.
# Chinese forms often contain full-width digits and letters typed with a Chinese IME.
FULL_WIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"]
HALF_WIDTH = [chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)] + [" "]


def full_to_half(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_many(FULL_WIDTH, HALF_WIDTH)


def full_to_half_text(s: str) -> str:
    return s.translate(_TABLE)


_TABLE = {ord(f): h for f, h in zip(FULL_WIDTH, HALF_WIDTH)}
_ANY_FULL_WIDTH = "[\uff01-\uff5e\u3000]"  # a regex class of FULL_WIDTH


class NormaliseSpec(TransformSpec):
    kind: Literal["trim", "normalise"]
    fields: list[str] = []  # empty = every string column
    strip: bool = True
    full_to_half: bool = False
    collapse_whitespace: bool = False
    case: Literal["lower", "upper"] | None = None
    empty_to_null: bool = False

    def reads(self):
        return list(self.fields)

    @model_validator(mode="after")
    def _normalise_defaults(self):
        # "normalise" is "trim" with the Chinese-input clean-ups switched on unless overridden.
        if self.kind == "normalise":
            for f in ("full_to_half", "collapse_whitespace"):
                if f not in self.model_fields_set:
                    setattr(self, f, True)
        return self


@transform_kind("trim", "normalise")
class Normalise(Transform):
    kind = "normalise"
    settings = NormaliseSpec

    def apply_frame(self, df):
        s = self.spec
        cols = [c for c in (s.fields or df.columns) if c in df.columns and df.schema[c] == pl.Utf8]
        if not cols:
            return df
        exprs = []
        # replace_many builds its matcher of 95 patterns and scans each value on every call: a
        # column with no full-width character in the batch (the usual case) is left out of it.
        if s.full_to_half:
            wide = df.select(pl.col(c).str.contains(_ANY_FULL_WIDTH).any() for c in cols).row(0)
        else:
            wide = (False,) * len(cols)
        for c, has_wide in zip(cols, wide):
            e = pl.col(c)
            if has_wide:
                e = full_to_half(e)
            if s.collapse_whitespace:
                e = e.str.replace_all(r"\s+", " ")
            if s.strip:
                e = e.str.strip_chars()
            if s.case == "lower":
                e = e.str.to_lowercase()
            elif s.case == "upper":
                e = e.str.to_uppercase()
            if s.empty_to_null:
                e = pl.when(e == "").then(None).otherwise(e)
            exprs.append(e.alias(c))
        return df.with_columns(exprs)
