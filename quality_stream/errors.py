"""Configuration errors raised while compiling rule definitions, and `build_kind`, which builds a rule or a
transform from its definition the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError


class RuleConfigError(ValueError):
    """A rule definition is invalid; the message names the rule id and the field."""

    def __init__(self, rule_id: str | None, field: str | None, problem: str):
        self.rule_id = rule_id
        self.field = field
        self.problem = problem
        where = f"rule {rule_id!r}" if rule_id else "rule"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


def first_pydantic_problem(exc: ValidationError) -> tuple[str | None, str]:
    """Reduce a pydantic error to (dotted field path, message) for the first problem."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return (loc or None), err.get("msg", str(exc))


def build_kind(registry: Mapping[str, Any], cfg: Mapping, name: str, error: type[Exception], make: Callable):
    """A definition's `kind` looked up in `registry`, its settings validated by the kind's pydantic
    model, the object made by `make(cls, spec)`; every problem raised as `error(name, field, why)`
    (rules and transforms are built the same way)."""
    kind = cfg.get("kind")
    if kind not in registry:
        raise error(name, "kind", f"unknown kind {kind!r}; known kinds: {', '.join(sorted(registry))}")
    cls = registry[kind]
    try:
        spec = cls.settings.model_validate(dict(cfg))
    except ValidationError as exc:
        loc, msg = first_pydantic_problem(exc)
        raise error(name, loc, msg) from None
    try:
        return make(cls, spec)
    except error:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise error(name, getattr(exc, "field", None), str(exc)) from None
