"""Membership rules: value in a code set, value exists in a reference (lookup) table."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field, model_validator

from quality_stream.frame import as_text
from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, null_safe, rule_kind


class InSetSpec(RuleSpec):
    kind: Literal["in_set"]
    fields: list[str] = Field(min_length=1)
    values: list[Any] | None = None
    # Name of a built-in code set (see quality_stream.standards.codesets), e.g. "gb2261_gender".
    code_set: str | None = None
    # Compare as text so 1 and "1" both match code "1" (CDC images mix the two).
    as_text: bool = True

    @model_validator(mode="after")
    def _one_source(self):
        if (self.values is None) == (self.code_set is None):
            raise ValueError("give exactly one of values or code_set")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        return self


@rule_kind
class InSet(Rule):
    kind = "in_set"
    settings = InSetSpec

    def __init__(self, spec):
        super().__init__(spec)
        if spec.code_set is not None:
            from quality_stream.standards.codesets import get_code_set

            try:
                values = list(get_code_set(spec.code_set))
            except KeyError as exc:
                err = ValueError(str(exc.args[0]))
                err.field = "code_set"  # type: ignore[attr-defined]
                raise err from None
        else:
            values = list(spec.values)
        self._values = [str(v) for v in values] if spec.as_text else values

    def field_mask(self, col, df, ctx):
        c = as_text(col).str.strip_chars() if self.spec.as_text else col
        return null_safe(~c.is_in(self._values))

    def describe_failure(self, field):
        src = self.spec.code_set or "the allowed values"
        return f"{field} is not in {src}"


class ReferenceSpec(RuleSpec):
    kind: Literal["reference"]
    fields: list[str] = Field(min_length=1)
    # Name of a LookupTable held by the RuleSet; the runner fills it.
    table: str = Field(min_length=1)
    # With no table loaded yet, failing every row would reject a whole stream on start-up.
    pass_when_empty: bool = True


@rule_kind
class Reference(Rule):
    kind = "reference"
    settings = ReferenceSpec
    default_dimension = "consistency"

    def field_mask(self, col, df, ctx):
        table = ctx.lookups.get(self.spec.table)
        if table is None or len(table) == 0:
            return pl.lit(not self.spec.pass_when_empty) & col.is_not_null()
        keys = table.keys_series()
        dtype = df.schema.get(col.meta.output_name())
        if keys.dtype != dtype:
            return null_safe(~as_text(col).is_in(keys.cast(pl.Utf8, strict=False).implode()))
        return null_safe(~col.is_in(keys.implode()))

    def describe_failure(self, field):
        return f"{field} not found in reference table {self.spec.table}"
