"""route / split: name a route per row from ordered conditions (first match wins)."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from quality_stream.expr import ExpressionError, compile_expr
from quality_stream.frame import rows_to_frame
from streams.transforms.base import Transform, TransformSpec, ensure_columns, transform_kind


class RouteCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    when: str

    @field_validator("when")
    @classmethod
    def _expr(cls, v):
        try:
            compile_expr(v)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return v


class RouteSpec(TransformSpec):
    kind: Literal["route"]
    routes: list[RouteCase] = Field(min_length=1)
    default: str = "default"
    route_field: str = "_route"

    def reads(self):
        return sorted({c for case in self.routes for c in compile_expr(case.when)[1]})

    def after(self, columns):
        return list(dict.fromkeys([*columns, self.route_field]))


@transform_kind("route", "split")
class Route(Transform):
    kind, settings = "route", RouteSpec

    def route_expr(self, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.Expr]:
        chain = None
        for case in self.spec.routes:
            cond, cols = compile_expr(case.when)
            df = ensure_columns(df, cols)
            cond = cond.fill_null(False)
            chain = pl.when(cond).then(pl.lit(case.name)) if chain is None else chain.when(cond).then(pl.lit(case.name))
        return df, chain.otherwise(pl.lit(self.spec.default))

    def apply_frame(self, df):
        full, expr = self.route_expr(df)
        return df.with_columns(full.select(expr.alias(self.spec.route_field)))

    def routes(self, rows: list[dict]) -> list[str]:
        """Route name per input row (rows unchanged)."""
        if not rows:
            return []
        df, expr = self.route_expr(rows_to_frame(rows))
        return df.select(expr).to_series().to_list()

    def split(self, rows: list[dict]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for row, name in zip(rows, self.routes(rows)):
            out.setdefault(name, []).append(row)
        return out
