"""Cross-field consistency: an expression over fields that must hold for each row."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from quality_stream.expr import ExpressionError, compile_expr, validate_expr
from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, rule_kind


def _check_expr(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        validate_expr(v)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return v


class ExpressionSpec(RuleSpec):
    kind: Literal["expression"]
    expr: str
    # Only rows where `when` holds are checked (e.g. "status == 'closed'").
    when: str | None = None
    # A null result (a field is missing) is 'not checked' unless null_fails is set;
    # completeness belongs to `required` rules.
    null_fails: bool = False

    _v_expr = field_validator("expr", "when")(classmethod(lambda cls, v: _check_expr(v)))


@rule_kind
class Expression(Rule):
    kind = "expression"
    settings = ExpressionSpec
    default_dimension = "consistency"

    def __init__(self, spec):
        super().__init__(spec)
        _, cols = compile_expr(spec.expr)
        self._cols = set(cols)
        if spec.when:
            self._cols |= compile_expr(spec.when)[1]

    def columns(self):
        return sorted(self._cols | set(self.spec.fields))

    def masks(self, df, ctx):
        # Compiled per batch so today()/now() follow the batch clock.
        ok, _ = compile_expr(self.spec.expr, now=ctx.now.replace(tzinfo=None))
        bad = ~ok.fill_null(not self.spec.null_fails)
        if self.spec.when:
            cond, _ = compile_expr(self.spec.when, now=ctx.now.replace(tzinfo=None))
            bad = bad & cond.fill_null(False)
        field = self.spec.fields[0] if len(self.spec.fields) == 1 else None
        return [(field, bad)]

    def describe_failure(self, field):
        return f"consistency check failed: {self.spec.expr}"
