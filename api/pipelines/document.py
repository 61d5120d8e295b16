"""Validating a pipeline document: the PipelineSpec shape, then the parts it leaves open
(source and sink settings, transform and rule kinds), so a saved document can actually run."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from deploy.pipeline import PipelineSpec
from deploy.settings import Settings
from sinks.clickhouse import ClickHouseSinkConfig


class InvalidDocument(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid pipeline document")
        self.errors = errors


def _errors(exc: ValidationError, prefix: tuple) -> list[dict]:
    # Only type, location and message: pydantic's `input` could carry a connection password.
    return [{"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]


@lru_cache(maxsize=1)
def known_kinds() -> tuple[frozenset[str], frozenset[str]]:
    from quality_stream import rule_kinds  # imported late: the engines pull in polars
    from streams.transforms import transform_kinds

    return frozenset(transform_kinds()), frozenset(rule_kinds())


def validate(document: dict[str, Any], settings: Settings) -> PipelineSpec:
    try:
        spec = PipelineSpec.model_validate(document)
    except ValidationError as e:
        raise InvalidDocument(_errors(e, ("body",)))
    errors: list[dict] = []
    try:
        spec.source_config(settings)
    except ValidationError as e:
        errors += _errors(e, ("body", "source", "config"))
    try:
        ClickHouseSinkConfig.model_validate({"url": settings.clickhouse_url, **spec.sink.config})
    except ValidationError as e:
        errors += _errors(e, ("body", "sink", "config"))
    transforms, rules = known_kinds()
    for where, items, kinds in (("transforms", spec.transforms, transforms), ("rules", spec.rules, rules)):
        for i, item in enumerate(items):
            if item.get("kind") not in kinds:
                errors.append(
                    {
                        "type": "unknown_kind",
                        "loc": ["body", where, i, "kind"],
                        "msg": f"unknown {where[:-1]} kind {str(item.get('kind'))[:100]!r}; see GET /components",
                    }
                )
    if errors:
        raise InvalidDocument(errors)
    return spec
