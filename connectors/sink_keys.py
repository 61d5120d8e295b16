"""A ClickHouse sink's key checked at save against the columns of what it reads (issue 21).

The sink orders its ReplacingMergeTree table by `key` (default: the topic's key fields), and
ClickHouse cannot order by a Nullable column: a key field that is nullable in the schema (or not a
column at all) would fail the sink at its first batch. Refused here with the reason instead, in
English and Chinese; when the columns cannot be read (connectors.source_columns) nothing is said.
"""

from __future__ import annotations

from connectors.document import FieldError
from connectors.source_columns import SourceColumns, topic_columns


def clickhouse_key_errors(key: list[str] | None, columns: SourceColumns) -> list[FieldError]:
    chosen = list(key or columns.keys or [])
    if not chosen:
        if columns.keys is None:  # the topic's key is not known yet
            return []
        return [
            FieldError(
                "key",
                f"no key fields: {columns.origin} has no key; set `key` to the columns that identify a row",
                f"没有主键字段：{columns.origin_zh}没有主键；请用 `key` 指定能唯一标识一行的列",
            )
        ]
    errors = []
    unknown = [k for k in chosen if k not in columns.names]
    if unknown:
        shown = columns.shown(columns.names)
        errors.append(
            FieldError(
                "key",
                f"key field(s) {', '.join(unknown)} are not columns of {columns.origin}; its columns: {shown}",
                f"主键字段 {', '.join(unknown)} 不是{columns.origin_zh}的列；现有的列：{shown}",
            )
        )
    nullable = [k for k in chosen if k in columns.nullable]
    if nullable:
        errors.append(
            FieldError(
                "key",
                f"key column(s) {', '.join(nullable)} are nullable in {columns.origin}; ClickHouse cannot order a "
                "table by nullable columns: declare them required at the source (NOT NULL, a key column, or "
                "nullable: false) or choose non-nullable key fields",
                f"主键列 {', '.join(nullable)} 在{columns.origin_zh}中可为空；ClickHouse 不能按可为空的列排序："
                "请在数据源把它们声明为必填（NOT NULL、主键列或 nullable: false），或选择不可为空的主键字段",
            )
        )
    return errors


def sink_key_errors(spec, settings, store=None, tenant: str | None = None) -> list[FieldError]:
    """A ClickHouse sink connector: its key against each of its topics' columns that can be read."""
    key = spec.plugin_config.model_dump().get("key")
    errors: list[FieldError] = []
    for columns in topic_columns(spec.topics, settings, store, tenant):
        errors += [e for e in clickhouse_key_errors(key, columns) if e not in errors]
    return errors
