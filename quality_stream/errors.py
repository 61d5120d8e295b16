"""Configuration errors raised while compiling rule definitions."""

from __future__ import annotations

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
