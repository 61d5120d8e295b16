"""Map a change event onto HBase coordinates: column family, row key, cells."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sinks.base import FatalSinkError, SinkRecord

from .codec import encode_cell
from .rowkey import row_key
from .settings import HBaseSinkSettings

UPSERT_OPS = frozenset({"c", "u", "r"})
DELETE_OP = "d"
# Bookkeeping qualifiers written next to the row's columns (a source column with the same
# name is overwritten by them).
META_OP, META_TS, META_POSITION = b"_op", b"_ts_ms", b"_position"

_FAMILY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize_family(name: str) -> str:
    # HBase family names must be printable ASCII, without ':' and not start with '.'. Chinese table
    # names become pinyin + hash (schemas.naming.ascii_name): two tables never share one family.
    from schemas.naming import ascii_name

    safe = ascii_name(name, _FAMILY_UNSAFE.pattern)
    return "_" + safe[1:] if safe.startswith(".") else safe


def family_for(source: dict[str, Any], settings: HBaseSinkSettings) -> str:
    table = source.get("table")
    if not table:
        raise FatalSinkError("HBase sink: change event has no source.table, cannot pick a column family")
    if table in settings.family_map:
        return settings.family_map[table]
    if settings.family_naming == "schema_table":
        scope = source.get("schema") or source.get("database")
        if scope:
            return sanitize_family(f"{scope}_{table}")
    return sanitize_family(table)


@dataclass(frozen=True, slots=True)
class RowChange:
    """One record reduced to what the HBase write needs (values already encoded)."""

    row: bytes
    family: str
    delete: bool
    cells: dict[bytes, bytes]  # qualifier -> value; empty for deletes
    columns: frozenset[bytes]  # every qualifier the record names (None-valued ones included)


def to_change(record: SinkRecord, settings: HBaseSinkSettings) -> RowChange:
    value = record.value
    op = value.get("op")
    if op not in UPSERT_OPS and op != DELETE_OP:
        raise FatalSinkError(f"HBase sink: unsupported op {op!r} at {record.topic}[{record.partition}]@{record.offset}")
    if not record.key:
        # A row key is derived from the primary key; keyless tables cannot be upserted/deleted.
        raise FatalSinkError(f"HBase sink needs a primary key; {record.topic} has keyless records")
    source = value.get("source") or {}
    family = family_for(source, settings)
    key = row_key(record.key, settings.salt_buckets)

    images = [img for img in (value.get("before"), value.get("after")) if img]
    columns = frozenset(str(c).encode("utf-8") for img in images for c in img)
    if op == DELETE_OP:
        return RowChange(key, family, True, {}, columns)

    after = value.get("after") or {}
    cells = {str(c).encode("utf-8"): encode_cell(v) for c, v in after.items() if v is not None}
    meta = {META_OP: op, META_TS: value.get("ts_ms"), META_POSITION: source.get("position")}
    cells.update({q: encode_cell(v) for q, v in meta.items() if v is not None})
    return RowChange(key, family, False, cells, columns | frozenset(meta))
