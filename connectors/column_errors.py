"""Rules and transforms that name columns their source does not have, as field errors (English and
Chinese), for a pipeline being saved and for a runner connector document being saved.

The columns come from `connectors.source_columns`; the column flow from `streams.column_check`.
When the columns cannot be read (no schema yet and no readable source), nothing is refused: the
checks that need data happen at run time as before.
"""

from __future__ import annotations

from typing import Any

from connectors.document import FieldError, parse
from connectors.source_columns import SourceColumns, for_topic, from_connector, from_registry
from streams.column_check import MissingColumn, missing_columns


def _messages(m: MissingColumn, columns: SourceColumns) -> tuple[str, str]:
    shown = columns.shown(m.available)
    if m.at_source:
        en = f"{m.step} names column {m.column!r}, which the source does not have; its columns: {shown}"
        zh = f"{m.step_zh}引用的列“{m.column}”在数据源中不存在；现有的列：{shown}"
    else:
        en = f"{m.step} names column {m.column!r}, which is not there after the transforms before it; columns there: {shown}"
        zh = f"{m.step_zh}引用的列“{m.column}”经过之前的转换后不存在；此处的列：{shown}"
    en += f" (read from {columns.origin})"
    zh += f"（取自{columns.origin_zh}）"
    renamed = columns.field_for(m.column)
    if renamed:  # named by the source's own (e.g. Chinese) name: rows carry the field name
        en += f"; the source column {m.column!r} is the field {renamed!r} in the rows"
        zh += f"；数据源的列“{m.column}”在数据中的字段名是“{renamed}”"
    return en, zh


def column_errors(transforms: list[dict], rules: list[dict], columns: SourceColumns) -> list[FieldError]:
    errors = []
    for m in missing_columns(transforms, rules, columns.names):
        en, zh = _messages(m, columns)
        errors.append(FieldError(m.field, en, zh))
    return errors


def pipeline_column_errors(
    topic: str, transforms: list[dict], rules: list[dict], source, settings, tenant: str | None, principal=None
) -> list[FieldError]:
    """`source`: the pipeline's parsed source connector (ConnectorSpec); `topic` its raw topic."""
    values = source.plugin_config.model_dump()
    found = for_topic(topic, settings, (source.plugin.name, source.config, values, settings, tenant, principal))
    return column_errors(transforms, rules, found) if found is not None else []


def _writer_columns(topic: str, settings, store, tenant: str | None) -> SourceColumns | None:
    """The columns of a stored source connector of `tenant` that writes `topic`."""
    from connectors.topics import connector_topics

    for record in store.all({tenant} if tenant is not None else None):
        if record.kind != "source" or topic not in connector_topics(record, settings):
            continue
        spec, _ = parse(record.name, record.config, settings)
        if spec is not None:
            values = spec.plugin_config.model_dump()
            found = from_connector(spec.plugin.name, record.config, values, settings, record.tenant)
            if found is not None:
                return found
    return None


def runner_column_errors(spec, settings, store=None, tenant: str | None = None) -> list[FieldError]:
    """A runner connector (`runner.*`): each input topic's columns (its registry subject, else a
    source connector of the same tenant in `store` writing it) against its transforms and rules."""
    values: dict[str, Any] = spec.plugin_config.model_dump()
    errors: list[FieldError] = []
    own = None  # a store opened here only when a topic has no schema, closed at the end
    try:
        for topic in spec.topics:
            found = from_registry(settings.schema_registry_url, topic)
            if found is None:
                if store is None and own is None:
                    from connectors.store import ConnectorStore

                    own = ConnectorStore.for_settings(settings)
                found = _writer_columns(topic, settings, store or own, tenant)
            if found is not None:
                errors += column_errors(values.get("transforms") or [], values.get("rules") or [], found)
    finally:
        if own is not None:
            own.engine.dispose()
    return errors
