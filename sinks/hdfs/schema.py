"""Turns the rows of one file into an Arrow table, inferring one column type per file.

Change events carry no writer schema the sink can rely on, so each file gets the schema of
its own rows: a column's type is the type of its non-null values; a column whose values
disagree (or are nested) is stored as text (JSON for dicts and lists). Every column is nullable.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from operator import itemgetter
from typing import Any

import pyarrow as pa

_ARROW = {
    "boolean": pa.bool_(),
    "long": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "bytes": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_BY_TYPE = {
    bool: "boolean",
    int: "long",
    float: "double",
    str: "string",
    bytes: "bytes",
    bytearray: "bytes",
    date: "date",
    datetime: "timestamp",
}
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


def _kind_of(types: set[type]) -> tuple[str, Callable[[Any], Any] | None]:
    types.discard(type(None))
    if not types:
        return "string", None  # all nulls: any nullable type will do
    if len(types) == 1:
        (t,) = types
        kind = _BY_TYPE.get(t)
        if kind is not None:
            return kind, (bytes if t is bytearray else None)
        if t in (Decimal, uuid.UUID, time):
            return "string", str  # exact text: a decimal's scale is unknown here; Avro writers lack time
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
        cols.append(Column(name, *_kind_of(types)))
    return cols


def column_values(rows: list[dict[str, Any]], col: Column, same_keys: bool = False) -> list[Any]:
    vals = list(map(itemgetter(col.name), rows)) if same_keys else [r.get(col.name) for r in rows]
    if col.convert is not None:
        f = col.convert
        vals = [None if v is None else f(v) for v in vals]
    return vals


def avro_name(name: str) -> str:
    n = _NAME_BAD.sub("_", name)
    return n if n and not n[0].isdigit() else f"_{n}"


def to_arrow(rows: list[dict[str, Any]], meta: dict[str, pa.Array]) -> pa.Table:
    """The row columns (inferred) followed by the sink's metadata columns (which win on a name clash)."""
    first = rows[0].keys() if rows else None
    same_keys = all(r.keys() == first for r in rows)
    arrays, names = [], []
    for c in infer_columns(rows):
        if c.name not in meta:
            arrays.append(pa.array(column_values(rows, c, same_keys), type=_ARROW[c.kind]))
            names.append(c.name)
    return pa.Table.from_arrays(arrays + list(meta.values()), names=names + list(meta))
