"""Validating a pipeline document with the code that will run it: the PipelineSpec shape, then each
stage's connector document (`connectors.pipeline.stage_documents`) parsed as a worker parses it — the
plugin's own settings model, and for the runner the transforms and rules compiled as the runner
builds them — so a saved document can actually run; then the columns its rules and transforms
name against the source's (connectors.column_errors). Errors name the field path in the document."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from connectors.column_errors import column_errors
from connectors.document import parse
from connectors.pipeline import PipelineSpec, stage_documents, stage_name
from connectors.sink_keys import clickhouse_key_errors
from connectors.source_columns import for_topic
from deploy.settings import Settings


class InvalidDocument(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid pipeline document")
        self.errors = errors


def _errors(exc: ValidationError, prefix: tuple) -> list[dict]:
    # Only type, location and message: pydantic's `input` could carry a connection password.
    return [{"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]


def _path(part: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in part.split(".")]


RUNNER_FIELDS = {
    "batch_size": ["runner", "batch_size"],
    "batch_seconds": ["runner", "within_seconds"],
    "checkpoint_interval_seconds": ["runner", "checkpoint_seconds"],
}


def _loc(stage: str, field: str) -> list[Any]:
    """Where a connector-document field lives in the pipeline document."""
    if field == "connector.class":
        return ["body", stage, "kind"] if stage != "runner" else ["body", "runner", "kind"]
    if stage == "runner":
        head = field.split(".", 1)[0]
        if head in ("transforms", "rules"):
            return ["body", *_path(field)]
        return ["body", *RUNNER_FIELDS.get(field, ["runner", field])]
    if field in ("topics", "pipeline"):
        return ["body", stage, field]
    return ["body", stage, "config", *_path(field)]


def _column_errors(spec: PipelineSpec, source, topic: str, settings: Settings, principal) -> list[dict]:
    """Rules and transforms naming columns the source does not have, and a ClickHouse sink's key
    that is not a column or is nullable, against the source's columns (its topic's registry
    subject, else the source connector's table or declared columns), in English and Chinese."""
    values = source.plugin_config.model_dump()
    found = for_topic(topic, settings, (source.plugin.name, source.config, values, settings, spec.tenant, principal))
    if found is None:
        return []
    errors = [
        {"type": "unknown_column", "loc": ["body", *_path(p.field)], "msg": p.message, "msg_zh": p.message_zh}
        for p in column_errors(spec.transforms, spec.rules, found)
    ]
    if spec.sink.kind == "clickhouse" and not spec.sink.topics:  # the clean topic carries the source's schema
        errors += [
            {"type": "invalid_key", "loc": ["body", "sink", "config", "key"], "msg": p.message, "msg_zh": p.message_zh}
            for p in clickhouse_key_errors(spec.sink.config.get("key"), found)
        ]
    return errors


def validate(document: dict[str, Any], settings: Settings, principal=None) -> PipelineSpec:
    try:
        spec = PipelineSpec.model_validate(document)
    except ValidationError as e:
        raise InvalidDocument(_errors(e, ("body",))) from None
    try:
        documents = stage_documents(spec, settings)
    except ValueError as exc:
        raise InvalidDocument([{"type": "value_error", "loc": ["body", "source", "topic"], "msg": str(exc)}]) from None
    errors: list[dict] = []
    parsed = {}
    for stage, config in documents.items():
        found, problems = parse(stage_name(spec.name, stage), config, settings)
        parsed[stage] = found
        errors += [{"type": "invalid", "loc": _loc(stage, p.field), "msg": p.message} for p in problems]
        expected = "processor" if stage == "runner" else stage
        if found is not None and found.kind != expected:
            errors.append(
                {
                    "type": "wrong_kind",
                    "loc": _loc(stage, "connector.class"),
                    "msg": f"{found.plugin.name} is not a {stage} plugin",
                }
            )
    if not errors:  # only a document that can run is worth reading the source's columns for
        errors = _column_errors(spec, parsed["source"], documents["runner"]["topics"][0], settings, principal)
    if errors:
        raise InvalidDocument(errors)
    return spec
