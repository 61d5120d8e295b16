"""Row values <-> JSON for the relational capture modes.

Three users: offsets and positions (key values must survive a JSON round trip and come back as
the column's Python type, or keyset comparisons on resume compare a string to a date); the
trigger change log (the database wrote the row as JSON, the Avro encoder needs `date`,
`datetime`, `Decimal`...); and the diff state (a canonical text per row whose hash is compared
and which is decoded back into the before image).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy.types as sa
from sqlalchemy import and_, or_


def jsonable(value: Any) -> Any:
    """A JSON-safe form that `from_json` turns back into the column's type."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _default(value: Any) -> Any:
    out = jsonable(value)
    return str(out) if out is value else out


# One C encoder built once: json.dumps(..., default=...) builds a new encoder per call, which
# costs more than encoding a row (diff mode encodes every row of every round).
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    _C_ENCODER(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _C_ENCODER
    else None
)


def canonical(values: Iterable[Any]) -> str:
    """Compact, deterministic text of a row's values in column order (hashed and stored by diff mode).

    Native JSON types are written by the C encoder; only dates, decimals and bytes reach `_default`."""
    if _ENCODE is not None:
        return "".join(_ENCODE(list(values), 0))
    return json.dumps(list(values), default=_default, ensure_ascii=False, separators=(",", ":"))


def _is(t: Any, *names: str) -> bool:
    return type(t).__name__.upper() in names


def from_json(sql_type: Any, value: Any) -> Any:
    """Convert a JSON value (as the database or `jsonable` wrote it) to the column's Python type."""
    if value is None:
        return None
    t = sql_type
    if isinstance(t, sa.Boolean):
        return bool(value) if not isinstance(value, str) else value.lower() in ("t", "true", "1")
    if isinstance(t, sa.Integer):
        return int(value)
    if isinstance(t, sa.Float) or _is(t, "REAL", "DOUBLE", "DOUBLE_PRECISION"):
        return float(value)
    if isinstance(t, sa.Numeric):
        return Decimal(str(value))
    if isinstance(t, sa.DateTime):
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(t, sa.Date):
        return date.fromisoformat(value[:10])
    if isinstance(t, sa.Time):
        return time.fromisoformat(value)
    if isinstance(t, sa.LargeBinary) or _is(t, "BYTEA", "BLOB", "VARBINARY", "BINARY"):
        if isinstance(value, str) and value.startswith("\\x"):  # PostgreSQL's bytea text form
            return bytes.fromhex(value[2:])
        return base64.b64decode(value)
    if isinstance(t, (sa.String, sa.Text, sa.Enum)) or isinstance(t, sa.Uuid) or _is(t, "UUID"):
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # JSON and other unmapped types travel as text (unknown_types="string")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_row(columns: list[tuple[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """A row image from a JSON object, keeping only the (name, sql_type) columns given."""
    return {name: from_json(t, data.get(name)) for name, t in columns}


def loads(text: str | None) -> Any:
    """JSON text with decimals kept exact (float() would round NUMERIC(38,10) values)."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def keyset_after(key_cols: list, last: list[Any]):
    """WHERE (k1, k2, ...) > (v1, v2, ...) written out, so every dialect runs it and uses the index."""
    if len(key_cols) == 1:
        return key_cols[0] > last[0]
    ties = []
    for i in range(len(key_cols)):
        ties.append(and_(*[key_cols[j] == last[j] for j in range(i)], key_cols[i] > last[i]))
    return or_(*ties)
