"""Rules and transforms that name columns their source does not have, as field errors (English and
Chinese), for a pipeline being saved and for a runner connector document being saved.

The columns come from `connectors.source_columns`; the column flow from `streams.column_check`.
When the columns cannot be read (no schema yet and no readable source), nothing is refused: the
checks that need data happen at run time as before.
"""

from __future__ import annotations

from typing import Any

from connectors.document import FieldError
from connectors.source_columns import SourceColumns, topic_columns
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


def runner_column_errors(spec, settings, store=None, tenant: str | None = None) -> list[FieldError]:
    """A runner connector (`runner.*`): each input topic's columns (its registry subject, else a
    source connector of the same tenant in `store` writing it) against its transforms and rules."""
    values: dict[str, Any] = spec.plugin_config.model_dump()
    errors: list[FieldError] = []
    for found in topic_columns(spec.topics, settings, store, tenant):
        errors += column_errors(values.get("transforms") or [], values.get("rules") or [], found)
    return errors
