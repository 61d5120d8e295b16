"""The one change-event envelope, modelled on Debezium's.

Every source emits `{before, after, op, ts_ms, source, transaction}`; the message key is the
primary key. `source.sequence` is a number that only grows for a given row's changes (the
log position, or the increment column in micro-seconds); sinks use it as the row version so
replays and duplicates collapse.

Column names that are not Avro names (Chinese, spaces, a leading digit) become the field names of
`schemas.naming.field_names` (pinyin); such a field keeps its source name as `doc` and as the property
`huiliu.original_name`, and the row record names its source `{system, schema, table}` in
`huiliu.original_name` when any of them was renamed. `row_fields(columns, table)` gives the mapping
(source name -> field name) that rows must be renamed with before encoding (connectors.runtime).
"""

from __future__ import annotations

from typing import Any

from schemas.naming import ORIGINAL_NAME, avro_name, field_names
from schemas.sqltypes import ColumnSpec, avro_field

OPS = ("c", "u", "d", "r")

SOURCE_SCHEMA = {
    "type": "record",
    "name": "Source",
    "namespace": "huiliu",
    "fields": [
        {"name": "system", "type": "string"},
        {"name": "database", "type": ["null", "string"], "default": None},
        {"name": "schema", "type": ["null", "string"], "default": None},
        {"name": "table", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "position", "type": "string", "doc": "source-specific resume position, JSON"},
        {"name": "sequence", "type": "long", "doc": "monotonic per row; the sink's row version"},
        {"name": "snapshot", "type": "boolean", "default": False},
    ],
}

TRANSACTION_SCHEMA = {
    "type": "record",
    "name": "Transaction",
    "namespace": "huiliu",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "total_order", "type": "long"},
        {"name": "data_collection_order", "type": "long"},
    ],
}


def _namespace(system: str, schema: str | None, table: str) -> str:
    return ".".join(avro_name(p) for p in ("huiliu", system, schema or "default", table))


def row_fields(columns: list[ColumnSpec], table: str = "") -> dict[str, str]:
    """Source column name -> Avro field name (NameCollision when two would be one)."""
    return field_names([c.name for c in columns], table)


def _fields(columns: list[ColumnSpec], table: str, unknown_types: str, names: dict[str, str]) -> list[dict]:
    fields = []
    for c in columns:
        field = avro_field(c, table, unknown_types)
        if names[c.name] != c.name:
            field = {**field, "name": names[c.name], "doc": c.name, ORIGINAL_NAME: c.name}
        fields.append(field)
    return fields


def _originals(system: str, schema: str | None, table: str) -> dict[str, Any]:
    parts = {"system": system, "schema": schema, "table": table}
    if all(p is None or avro_name(p) == p for p in parts.values()):
        return {}
    return {"doc": f"{system}.{schema or 'default'}.{table}", ORIGINAL_NAME: parts}


def value_schema(
    system: str, schema: str | None, table: str, columns: list[ColumnSpec], unknown_types: str = "error"
) -> dict[str, Any]:
    """The row image record for a table."""
    names = row_fields(columns, table)
    return {
        "type": "record",
        "name": "Value",
        "namespace": _namespace(system, schema, table),
        **_originals(system, schema, table),
        "fields": _fields(columns, table, unknown_types, names),
    }


def key_schema(
    system: str, schema: str | None, table: str, columns: list[ColumnSpec], unknown_types: str = "error"
) -> dict[str, Any] | None:
    keys = [c for c in columns if c.primary_key]
    if not keys:
        return None
    names = row_fields(columns, table)  # the same names as the row's fields
    return {
        "type": "record",
        "name": "Key",
        "namespace": _namespace(system, schema, table),
        "fields": _fields([ColumnSpec(c.name, c.sql_type, False, True) for c in keys], table, unknown_types, names),
    }


def envelope_schema(
    system: str, schema: str | None, table: str, columns: list[ColumnSpec], unknown_types: str = "error"
) -> dict[str, Any]:
    row = value_schema(system, schema, table, columns, unknown_types)
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": row["namespace"],
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": list(OPS)}},
            {"name": "ts_ms", "type": "long", "doc": "when the source committed the change"},
            {"name": "source", "type": SOURCE_SCHEMA},
            {"name": "transaction", "type": ["null", TRANSACTION_SCHEMA], "default": None},
        ],
    }


def make_event(
    op: str, before: dict | None, after: dict | None, ts_ms: int, source: dict, transaction: dict | None = None
) -> dict[str, Any]:
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    return {"before": before, "after": after, "op": op, "ts_ms": ts_ms, "source": source, "transaction": transaction}


QUARANTINE_SCHEMA = {
    "type": "record",
    "name": "Quarantined",
    "namespace": "huiliu",
    "doc": "A record that failed a rule or could not be processed, with why and the original bytes",
    "fields": [
        {"name": "reason", "type": "string"},
        {"name": "stage", "type": "string", "doc": "connector, runner or sink that quarantined it"},
        {
            "name": "violations",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Violation",
                    "fields": [
                        {"name": "rule_id", "type": "string"},
                        {"name": "field", "type": ["null", "string"], "default": None},
                        {"name": "message", "type": "string"},
                        {"name": "dimension", "type": ["null", "string"], "default": None},
                    ],
                },
            },
            "default": [],
        },
        {"name": "original_topic", "type": ["null", "string"], "default": None},
        {"name": "original_partition", "type": ["null", "int"], "default": None},
        {"name": "original_offset", "type": ["null", "long"], "default": None},
        {"name": "original_key", "type": ["null", "bytes"], "default": None},
        {"name": "original_value", "type": ["null", "bytes"], "default": None},
        {
            "name": "original_json",
            "type": ["null", "string"],
            "default": None,
            "doc": "the decoded event as JSON when it could be decoded",
        },
        {"name": "ts_ms", "type": "long"},
    ],
}
