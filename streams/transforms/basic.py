"""Row/column shaping: filter, project, rename, cast, derive, default."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator

from quality_stream.expr import ExpressionError, compile_expr
from streams.transforms.base import Transform, TransformSpec, ensure_columns, transform_kind


def _valid_expr(v: str) -> str:
    try:
        compile_expr(v)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return v


class FilterSpec(TransformSpec):
    kind: Literal["filter"]
    expr: str  # rows where it is true are kept; null counts as false

    _v = field_validator("expr")(classmethod(lambda cls, v: _valid_expr(v)))

    def reads(self):
        return sorted(compile_expr(self.expr)[1])


@transform_kind("filter")
class Filter(Transform):
    kind, settings = "filter", FilterSpec

    def apply_frame(self, df):
        expr, cols = compile_expr(self.spec.expr)
        return ensure_columns(df, cols).filter(expr.fill_null(False)).select(df.columns)


class ProjectSpec(TransformSpec):
    kind: Literal["project"]
    fields: list[str] | None = None  # keep these, in this order
    drop: list[str] = []
    rename: dict[str, str] = {}

    def reads(self):
        return list(dict.fromkeys([*(self.fields or []), *self.drop, *self.rename]))

    def after(self, columns):
        kept = list(self.fields) if self.fields is not None else [c for c in columns if c not in self.drop]
        return [self.rename.get(c, c) for c in kept]


@transform_kind("project")
class Project(Transform):
    kind, settings = "project", ProjectSpec

    def apply_frame(self, df):
        s = self.spec
        if s.fields is not None:
            df = ensure_columns(df, s.fields).select(s.fields)
        if s.drop:
            df = df.drop([c for c in s.drop if c in df.columns])
        if s.rename:
            df = df.rename({k: v for k, v in s.rename.items() if k in df.columns})
        return df


class RenameSpec(TransformSpec):
    kind: Literal["rename"]
    mapping: dict[str, str] = Field(min_length=1)

    def reads(self):
        return list(self.mapping)

    def after(self, columns):
        return [self.mapping.get(c, c) for c in columns]


@transform_kind("rename")
class Rename(Transform):
    kind, settings = "rename", RenameSpec

    def apply_frame(self, df):
        return df.rename({k: v for k, v in self.spec.mapping.items() if k in df.columns})


CastType = Literal["string", "integer", "float", "decimal", "boolean", "date", "datetime"]
_DTYPES: dict[str, pl.DataType] = {
    "string": pl.Utf8,
    "integer": pl.Int64,
    "float": pl.Float64,
    "decimal": pl.Decimal(38, 6),
    "boolean": pl.Boolean,
    "date": pl.Date,
    "datetime": pl.Datetime("us"),
}


class CastSpec(TransformSpec):
    kind: Literal["cast"]
    types: dict[str, CastType] = Field(min_length=1)
    # Non-strict: values that do not convert become null (a quality rule can flag them).
    strict: bool = False
    date_format: str | None = None

    def reads(self):
        return list(self.types)


@transform_kind("cast")
class Cast(Transform):
    kind, settings = "cast", CastSpec

    def apply_frame(self, df):
        s = self.spec
        exprs = []
        for c, t in s.types.items():
            if c not in df.columns:
                continue
            col = pl.col(c)
            if df.schema[c] == pl.Utf8 and t in ("date", "datetime"):
                col = col.str.strip_chars()
                e = (
                    col.str.to_date(s.date_format, strict=s.strict)
                    if t == "date"
                    else col.str.to_datetime(s.date_format, time_unit="us", strict=s.strict)
                )
            elif df.schema[c] == pl.Utf8 and t in ("integer", "float", "decimal"):
                e = col.str.strip_chars().cast(_DTYPES[t], strict=s.strict)
            else:
                e = col.cast(_DTYPES[t], strict=s.strict)
            exprs.append(e.alias(c))
        return df.with_columns(exprs)


class DeriveSpec(TransformSpec):
    kind: Literal["derive"]
    fields: dict[str, str] = Field(min_length=1)  # new field -> expression

    @field_validator("fields")
    @classmethod
    def _exprs(cls, v: dict[str, str]) -> dict[str, str]:
        for name, text in v.items():
            try:
                compile_expr(text)
            except ExpressionError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return v

    def reads(self):
        made: set[str] = set()  # sequential: a field may use one derived before it
        names: list[str] = []
        for name, text in self.fields.items():
            names += [c for c in sorted(compile_expr(text)[1]) if c not in made]
            made.add(name)
        return list(dict.fromkeys(names))

    def after(self, columns):
        return list(dict.fromkeys([*columns, *self.fields]))


@transform_kind("derive")
class Derive(Transform):
    kind, settings = "derive", DeriveSpec

    def apply_frame(self, df):
        # Sequential so a derived field can use one derived before it.
        for name, text in self.spec.fields.items():
            expr, cols = compile_expr(text)
            df = ensure_columns(df, cols).with_columns(expr.alias(name))
        return df


class DefaultSpec(TransformSpec):
    kind: Literal["default"]
    values: dict[str, Any] = Field(min_length=1)
    blank_as_null: bool = True  # "" is treated as missing, common in legacy systems

    def reads(self):  # fills a column's missing values: a new constant column is `derive`'s job
        return list(self.values)


@transform_kind("default")
class Default(Transform):
    kind, settings = "default", DefaultSpec

    def apply_frame(self, df):
        df = ensure_columns(df, self.spec.values)
        exprs = []
        for c, v in self.spec.values.items():
            col = pl.col(c)
            if self.spec.blank_as_null and df.schema[c] == pl.Utf8:
                col = pl.when(col.str.strip_chars() == "").then(None).otherwise(col)
            if df.schema[c] == pl.Null:
                exprs.append(pl.lit(v).alias(c))
            else:
                exprs.append(col.fill_null(pl.lit(v)).alias(c))
        return df.with_columns(exprs)
