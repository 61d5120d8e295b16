"""Avro -> ClickHouse column types.

ClickHouse 18.16 (Debian's server) has no DateTime64: timestamps become DateTime (seconds) there;
on 20.1 and newer they become DateTime64(3|6). Decimals keep precision and scale; UUIDs and
bytes are String; unions with null become Nullable(T).
"""

from __future__ import annotations

from typing import Any


class UnsupportedAvroType(ValueError):
    pass


def _plain(avro: Any, modern: bool) -> str:
    if isinstance(avro, dict):
        logical = avro.get("logicalType")
        if logical == "decimal":
            return f"Decimal({avro['precision']}, {avro.get('scale', 0)})"
        if logical == "date":
            return "Date"
        if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
            if not modern:
                return "DateTime"
            return "DateTime64(3)" if "millis" in logical else "DateTime64(6)"
        if logical in ("time-millis", "time-micros"):
            return "Int64"
        if logical == "uuid":
            return "String"
        if avro.get("type") == "enum":
            return "String"
        return _plain(avro["type"], modern)
    mapping = {
        "boolean": "UInt8",
        "int": "Int32",
        "long": "Int64",
        "float": "Float32",
        "double": "Float64",
        "string": "String",
        "bytes": "String",
    }
    if avro in mapping:
        return mapping[avro]
    raise UnsupportedAvroType(f"Avro type {avro!r} has no ClickHouse column type")


def clickhouse_type(avro: Any, modern: bool) -> str:
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise UnsupportedAvroType(f"union {avro!r}: only [null, T] unions map to ClickHouse")
        inner = _plain(branches[0], modern)
        return f"Nullable({inner})" if "null" in avro else inner
    return _plain(avro, modern)


def is_modern(version: str) -> bool:
    """DateTime64 arrived in ClickHouse 20.1."""
    major = int(version.split(".")[0])
    return major >= 20
