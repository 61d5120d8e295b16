"""Inline data-quality rules for Huiliu streams (see README.md).

The names below are loaded on first use (PEP 562): a process importing only a submodule (the API's
routes need `quality_stream.errors`) does not load polars and what it brings (pyarrow, pandas)."""

from importlib import import_module

_WHERE = {
    "RuleConfigError": "quality_stream.errors",
    "ExpressionError": "quality_stream.expr",
    "compile_expr": "quality_stream.expr",
    "LookupTable": "quality_stream.lookup",
    "BatchVerdict": "quality_stream.model",
    "RuleSpec": "quality_stream.model",
    "Violation": "quality_stream.model",
    "EvalContext": "quality_stream.rules.base",
    "Rule": "quality_stream.rules.base",
    "rule_kind": "quality_stream.rules.base",
    "rule_kinds": "quality_stream.rules.registry",
    "register_rule": "quality_stream.rules.custom",
    "RuleSet": "quality_stream.ruleset",
    "compile_rule": "quality_stream.ruleset",
    "RedisStore": "quality_stream.state",
    "SeenStore": "quality_stream.state",
    "TTLStore": "quality_stream.state",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'quality_stream' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
