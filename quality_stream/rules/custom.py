"""Custom rules: Python functions registered by name and referenced from rule data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from pydantic import Field

from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, rule_kind

Mode = Literal["series", "value", "frame"]
_FUNCTIONS: dict[str, tuple[Callable[..., Any], Mode]] = {}


def register_rule(name: str, *, mode: Mode = "series"):
    """Register a check under `name` for {"kind": "custom", "function": name}.

    mode="series": fn(series, **params) -> bool Series, True = valid (vectorised; preferred)
    mode="value":  fn(value, **params) -> bool, called for non-null values only
    mode="frame":  fn(df, **params) -> bool Series over the whole batch (multi-field checks)
    Only registered code runs: rule files name a function, they never carry code.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _FUNCTIONS[name] = (fn, mode)
        return fn

    return deco


def registered_rules() -> list[str]:
    return sorted(_FUNCTIONS)


class CustomSpec(RuleSpec):
    kind: Literal["custom"]
    function: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


@rule_kind
class Custom(Rule):
    kind = "custom"
    settings = CustomSpec

    def __init__(self, spec):
        super().__init__(spec)
        if spec.function not in _FUNCTIONS:
            err = ValueError(f"no custom rule function registered as {spec.function!r}")
            err.field = "function"  # type: ignore[attr-defined]
            raise err
        self._fn, self._mode = _FUNCTIONS[spec.function]
        if self._mode != "frame" and not spec.fields:
            err = ValueError(f"{self._mode}-mode custom rules need fields")
            err.field = "fields"  # type: ignore[attr-defined]
            raise err

    def masks(self, df, ctx):
        p = self.spec.params
        if self._mode == "frame":
            ok = self._fn(df, **p)
            ok = ok if isinstance(ok, pl.Series) else df.select(ok).to_series()
            field = self.spec.fields[0] if len(self.spec.fields) == 1 else None
            return [(field, ~ok.fill_null(True))]
        out = []
        for f in self.spec.fields:
            s = df[f]
            if self._mode == "series":
                ok = self._fn(s, **p)
            else:
                ok = s.map_elements(lambda v: bool(self._fn(v, **p)), return_dtype=pl.Boolean)
            out.append((f, (~ok.fill_null(True)) & s.is_not_null()))
        return out

    def describe_failure(self, field):
        return f"{field} failed {self.spec.function}"
