"""Completeness and shape rules: required, not_blank, type, length, regex."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from quality_stream.frame import as_text
from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, null_safe, rule_kind


class FieldsSpec(RuleSpec):
    fields: list[str] = Field(min_length=1)


class RequiredSpec(FieldsSpec):
    kind: Literal["required"]
    # Blank strings count as missing by default: upstream systems often write "" for unknown.
    allow_blank: bool = False


@rule_kind
class Required(Rule):
    kind = "required"
    settings = RequiredSpec
    default_dimension = "completeness"

    def field_mask(self, col, df, ctx):
        missing = col.is_null()
        if not self.spec.allow_blank and df.schema.get(_name(col)) == pl.Utf8:
            missing = missing | (col.str.strip_chars() == "")
        return missing

    def describe_failure(self, field):
        return f"{field} is required"


class NotBlankSpec(FieldsSpec):
    kind: Literal["not_blank"]


@rule_kind
class NotBlank(Rule):
    """Present values must contain non-whitespace; nulls are left to `required`."""

    kind = "not_blank"
    settings = NotBlankSpec
    default_dimension = "completeness"

    def field_mask(self, col, df, ctx):
        return null_safe(as_text(col).str.strip_chars() == "")

    def describe_failure(self, field):
        return f"{field} must not be blank"


TypeName = Literal["string", "integer", "number", "boolean", "date", "datetime"]


class TypeSpec(FieldsSpec):
    kind: Literal["type"]
    type: TypeName
    # Accept strings that parse as the type (CDC from text columns) unless strict.
    strict: bool = False
    date_format: str | None = None


_STRICT_DTYPES = {
    "string": lambda d: d == pl.Utf8,
    "integer": lambda d: d.is_integer(),
    "number": lambda d: d.is_numeric() or isinstance(d, pl.Decimal),
    "boolean": lambda d: d == pl.Boolean,
    "date": lambda d: d == pl.Date,
    "datetime": lambda d: isinstance(d, pl.Datetime),
}


@rule_kind
class TypeCheck(Rule):
    kind = "type"
    settings = TypeSpec

    def field_mask(self, col, df, ctx):
        t = self.spec.type
        dtype = df.schema.get(_name(col), pl.Null)
        if dtype == pl.Null or _STRICT_DTYPES[t](dtype):
            return pl.lit(False)
        if self.spec.strict or t == "string":
            return col.is_not_null()
        text = as_text(col).str.strip_chars()
        if t == "integer":
            parsed = text.cast(pl.Int64, strict=False)
        elif t == "number":
            parsed = text.cast(pl.Float64, strict=False)
        elif t == "boolean":
            parsed = text.str.to_lowercase().is_in(["true", "false", "1", "0"]).replace(False, None)
        elif t == "date":
            parsed = text.str.to_date(self.spec.date_format, strict=False)
        else:
            parsed = text.str.to_datetime(self.spec.date_format, strict=False)
        return col.is_not_null() & parsed.is_null()

    def describe_failure(self, field):
        return f"{field} must be of type {self.spec.type}"


class LengthSpec(FieldsSpec):
    kind: Literal["length"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("length rule needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must be <= max")
        return self


@rule_kind
class Length(Rule):
    """Length in characters (not bytes): 张三 has length 2."""

    kind = "length"
    settings = LengthSpec

    def field_mask(self, col, df, ctx):
        n = as_text(col).str.len_chars()
        bad = pl.lit(False)
        if self.spec.min is not None:
            bad = bad | (n < self.spec.min)
        if self.spec.max is not None:
            bad = bad | (n > self.spec.max)
        return null_safe(bad)

    def describe_failure(self, field):
        lo, hi = self.spec.min, self.spec.max
        return f"{field} length must be within [{lo if lo is not None else 0}, {hi if hi is not None else '∞'}]"


class RegexSpec(FieldsSpec):
    kind: Literal["regex"]
    pattern: str
    # fullmatch anchors the pattern so "\d{6}" does not accept "1234567".
    fullmatch: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v


@lru_cache(maxsize=1024)  # asked once per rule per batch; the answer never changes
def rust_regex_ok(pattern: str) -> bool:
    """polars uses the Rust regex engine (no look-around/backrefs); detect that up front."""
    try:
        pl.Series([""]).str.contains(pattern)
        return True
    except Exception:
        return False


def regex_mask(col: pl.Expr, pattern: str) -> pl.Expr:
    """True where a present value does NOT match; falls back to Python re when needed."""
    text = as_text(col)
    if rust_regex_ok(pattern):
        return null_safe(~text.str.contains(pattern))
    rx = re.compile(pattern)
    return null_safe(~text.map_elements(lambda s: rx.search(s) is not None, return_dtype=pl.Boolean))


@rule_kind
class Regex(Rule):
    kind = "regex"
    settings = RegexSpec

    def __init__(self, spec):
        super().__init__(spec)
        p = spec.pattern
        self._pattern = f"^(?:{p})$" if spec.fullmatch else p

    def field_mask(self, col, df, ctx):
        return regex_mask(col, self._pattern)

    def describe_failure(self, field):
        return f"{field} does not match the required format"


def _name(col: pl.Expr) -> str:
    return col.meta.output_name()
