"""Infers one column schema per file from the rows it holds, for Avro and Parquet alike.

Change events carry no writer schema the sink can rely on, so each file gets the schema of
its own rows: a column's type is the type of its non-null values; a column whose values
disagree (or are nested) is stored as text (JSON for dicts and lists). In Avro a column is a
["null", T] union only if the file holds a null for it; Parquet columns are all nullable.
"""
from __future__ import annotations

import json
import re
import uuid
from operator import itemgetter
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable

import pyarrow as pa

# kind -> (Avro type, Arrow type)
_KINDS: dict[str, tuple[Any, pa.DataType]] = {
    "boolean": ("boolean", pa.bool_()),
    "long": ("long", pa.int64()),
    "double": ("double", pa.float64()),
    "string": ("string", pa.string()),
    "bytes": ("bytes", pa.binary()),
    "date": ({"type": "int", "logicalType": "date"}, pa.date32()),
    "time": ({"type": "long", "logicalType": "time-micros"}, pa.time64("us")),
    "timestamp": ({"type": "long", "logicalType": "timestamp-micros"}, pa.timestamp("us", tz="UTC")),
}
_BY_TYPE = {bool: "boolean", int: "long", float: "double", str: "string", bytes: "bytes",
            bytearray: "bytes", date: "date", time: "time", datetime: "timestamp"}
_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")


def to_text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str, sort_keys=True)
    return str(v)


@dataclass(frozen=True)
class Column:
    name: str  # as in the source row
    kind: str
    convert: Callable[[Any], Any] | None = None  # applied to non-null values before encoding
    nullable: bool = True


def _kind_of(types: set[type]) -> tuple[str, Callable[[Any], Any] | None]:
    if not types:
        return "string", None  # all nulls: any nullable type will do
    if len(types) == 1:
        (t,) = types
        kind = _BY_TYPE.get(t)
        if kind is not None:
            return kind, (bytes if t is bytearray else None)
        if t in (Decimal, uuid.UUID):
            return "string", str  # exact text; the scale of a decimal column is not known here
        return "string", to_text
    if types <= {int, float}:
        return "double", float
    return "string", to_text


def infer_columns(rows: list[dict[str, Any]]) -> list[Column]:
    names: dict[str, None] = dict.fromkeys(rows[0]) if rows else {}
    first = rows[0].keys() if rows else None
    same_keys = True
    for r in rows:
        if r.keys() != first:  # rare: columns added/dropped mid-file; keep the union, in order
            names.update(dict.fromkeys(r))
            same_keys = False
    cols = []
    for name in names:
        if same_keys:
            types = set(map(type, map(itemgetter(name), rows)))  # C-speed path for the common case
        else:
            types = {type(r.get(name)) for r in rows}
        nullable = type(None) in types or not same_keys
        types.discard(type(None))
        kind, convert = _kind_of(types)
        cols.append(Column(name, kind, convert, nullable))
    return cols


def column_values(rows: list[dict[str, Any]], col: Column) -> list[Any]:
    vals = [r.get(col.name) for r in rows]
    if col.convert is not None:
        f = col.convert
        vals = [None if v is None else f(v) for v in vals]
    return vals


def avro_name(name: str) -> str:
    n = _NAME_BAD.sub("_", name)
    return n if n and not n[0].isdigit() else f"_{n}"


def avro_schema(record_name: str, cols: list[Column]) -> dict[str, Any]:
    fields, seen = [], set()
    for c in cols:
        n = avro_name(c.name)
        while n in seen:  # two source names sanitized to the same Avro name
            n += "_"
        seen.add(n)
        # Non-null columns get a plain type: fastavro resolves a union per value, ~3x slower.
        # A reader schema with ["null", T] still reads such files (Avro schema resolution).
        field = {"name": n, "type": ["null", _KINDS[c.kind][0]], "default": None} if c.nullable else \
            {"name": n, "type": _KINDS[c.kind][0]}
        if n != c.name:
            field["huiliu.column"] = c.name  # the original column name, for readers that care
        fields.append(field)
    return {"type": "record", "name": avro_name(record_name), "namespace": "huiliu.hdfs", "fields": fields}


def arrow_schema(cols: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, _KINDS[c.kind][1], nullable=True) for c in cols])
