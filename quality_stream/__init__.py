"""Inline data-quality rules for Huiliu streams (see README.md)."""

from quality_stream.errors import RuleConfigError
from quality_stream.expr import ExpressionError, compile_expr
from quality_stream.lookup import LookupTable
from quality_stream.model import BatchVerdict, RuleSpec, Violation
from quality_stream.rules.base import EvalContext, Rule, rule_kind, rule_kinds
from quality_stream.rules.custom import register_rule
from quality_stream.ruleset import RuleSet, compile_rule
from quality_stream.state import RedisStore, SeenStore, TTLStore

__all__ = [
    "RuleSet",
    "BatchVerdict",
    "Violation",
    "RuleConfigError",
    "RuleSpec",
    "Rule",
    "EvalContext",
    "rule_kind",
    "rule_kinds",
    "register_rule",
    "compile_rule",
    "LookupTable",
    "TTLStore",
    "RedisStore",
    "SeenStore",
    "compile_expr",
    "ExpressionError",
]
