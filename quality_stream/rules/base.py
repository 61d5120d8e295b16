"""Rule base class and the kind registry.

A rule compiles to "failure masks": boolean polars expressions (or Series) that are
True where a row violates the rule. RuleSet evaluates all masks of all rules in a
single DataFrame.select so polars can run them in parallel over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import polars as pl

from quality_stream.model import Dimension, RuleSpec

Mask = pl.Expr | pl.Series


@dataclass
class EvalContext:
    """Per-batch inputs that are not part of the rows: clock, lookup tables, state stores."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    lookups: dict[str, Any] = field(default_factory=dict)
    stores: dict[str, Any] = field(default_factory=dict)
    # What several rules of one batch derive from the same column (e.g. parsed ID numbers).
    cache: dict[Any, Any] = field(default_factory=dict)


class Rule:
    kind: ClassVar[str]
    settings: ClassVar[type[RuleSpec]]
    default_dimension: ClassVar[Dimension] = "validity"
    # Rules with side effects (uniqueness state) must only run once per batch.
    stateful: ClassVar[bool] = False

    def __init__(self, spec: RuleSpec):
        self.spec = spec
        self.dimension: str = spec.dimension or self.default_dimension

    @property
    def id(self) -> str:
        return self.spec.id

    def columns(self) -> list[str]:
        """Columns this rule reads; RuleSet adds missing ones as nulls."""
        return list(self.spec.fields)

    def masks(self, df: pl.DataFrame, ctx: EvalContext) -> list[tuple[str | None, Mask]]:
        """Return (field, failure mask) pairs; True means the row violates the rule."""
        return [(f, self.field_mask(pl.col(f), df, ctx)) for f in self.spec.fields]

    def field_mask(self, col: pl.Expr, df: pl.DataFrame, ctx: EvalContext) -> Mask:
        raise NotImplementedError

    def describe_failure(self, field: str | None) -> str:
        return f"{field} failed {self.kind} check" if field else f"failed {self.kind} check"

    def message_for(self, field: str | None) -> str:
        if self.spec.message:
            return self.spec.message.replace("{field}", field or "")
        return self.describe_failure(field)


_KINDS: dict[str, type[Rule]] = {}


def rule_kind(cls: type[Rule]) -> type[Rule]:
    """Class decorator registering a rule kind under cls.kind."""
    _KINDS[cls.kind] = cls
    return cls


def null_safe(mask: pl.Expr) -> pl.Expr:
    """A null comparison result means 'not checked', never a failure."""
    return mask.fill_null(False)
