"""Which columns a runner's transforms and rules name that its input does not carry.

Read without data, when a pipeline or runner connector is saved: the transforms' column flow
(`TransformSpec.reads` / `after`, in order, so a rename or derive before a rule counts) and each
rule's `columns()`. At run time a missing column would only be a column of nulls (the runner adds
it), so `required` would reject every row and the other rules would pass everything in silence.

Definitions that do not validate are skipped here: `runner_task.check_runner` reports those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from quality_stream.errors import RuleConfigError

if TYPE_CHECKING:
    from streams.transforms.base import TransformSpec

# The rule and transform kinds are imported where they are used: they load polars, which the API
# (importing this module to check a pipeline being saved) does not otherwise need.


@dataclass
class MissingColumn:
    field: str  # path in the runner document: "rules.2", "transforms.0"
    step: str  # "rule 'phone_format'" / "transform #0 (trim)"
    step_zh: str
    column: str
    available: list[str]  # the columns at that step
    at_source: bool  # False: the transforms before the step changed the columns


def _transform_spec(cfg: Any) -> TransformSpec | None:
    from streams.transforms.registry import transform_class

    cls = transform_class(cfg.get("kind")) if isinstance(cfg, Mapping) else None
    if cls is None:
        return None
    try:
        return cls.settings.model_validate(dict(cfg))
    except ValidationError:
        return None


def missing_columns(transforms: list[dict], rules: list[dict], columns: list[str]) -> list[MissingColumn]:
    """Every (step, column) where a step names a column not in its input; `columns`: the source's."""
    source, current = list(columns), list(columns)
    found: list[MissingColumn] = []
    for i, cfg in enumerate(transforms):
        spec = _transform_spec(cfg)
        if spec is None:  # invalid: reported by the runner's own check; the flow after it is unknown
            return found
        label = spec.id or f"#{i} ({spec.kind})"
        for column in dict.fromkeys(spec.reads()):
            if column not in current:
                found.append(
                    MissingColumn(
                        f"transforms.{i}", f"transform {label!r}", f"转换“{label}”", column, current, current == source
                    )
                )
        after = spec.after(current)
        if after is None:  # e.g. flatten: the columns after it depend on the data
            return found
        current = after
    from quality_stream.ruleset import compile_rule

    for i, cfg in enumerate(rules):
        try:
            rule = compile_rule(cfg, i)
        except RuleConfigError:
            continue
        for column in dict.fromkeys(rule.columns()):
            if column not in current:
                found.append(
                    MissingColumn(
                        f"rules.{i}", f"rule {rule.id!r}", f"规则“{rule.id}”", column, current, current == source
                    )
                )
    return found
