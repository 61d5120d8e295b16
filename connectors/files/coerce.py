"""Text (or spreadsheet/JSON) values to the Python values the Avro envelope expects, per ColumnSpec.

A value that does not fit its declared type raises `RowError`; the source turns that into a
quarantined row with file, line and reason instead of dropping it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import sqlalchemy.types as sa
from pydantic import BaseModel, ConfigDict, Field

from schemas.sqltypes import ColumnSpec


class RowError(ValueError):
    """A row that cannot be parsed or typed; the message is the quarantine reason."""


TYPES = {
    "string": sa.String,
    "text": sa.Text,
    "int": sa.Integer,
    "integer": sa.Integer,
    "bigint": sa.BigInteger,
    "float": sa.Float,
    "double": sa.Float,
    "decimal": sa.Numeric,
    "numeric": sa.Numeric,
    "date": sa.Date,
    "datetime": sa.DateTime,
    "timestamp": sa.DateTime,
    "bool": sa.Boolean,
    "boolean": sa.Boolean,
}
_TRUE = {"1", "true", "t", "y", "yes", "是", "真"}
_FALSE = {"0", "false", "f", "n", "no", "否", "假"}


class ColumnDef(BaseModel):
    """A typed column of a file/stream source: `{name: amount, type: decimal, precision: 12, scale: 2}`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str = Field("string", description="one of " + ", ".join(sorted(TYPES)))
    nullable: bool = True
    key: bool = Field(False, description="part of the message key")
    precision: int | None = None
    scale: int | None = None
    format: str | None = Field(None, description="strptime format for date/datetime, e.g. %Y%m%d")
    source: str | None = Field(None, description="field name in the file when it differs from `name`")

    def spec(self) -> ColumnSpec:
        kind = self.type.lower()
        if kind not in TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.type!r}; use one of {sorted(TYPES)}")
        t = (
            TYPES[kind](self.precision or 38, self.scale if self.scale is not None else 10)
            if kind in ("decimal", "numeric")
            else TYPES[kind]()
        )
        return ColumnSpec(self.name, t, self.nullable and not self.key, self.key)


def string_columns(names: list[str]) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(n, sa.String()) for n in names)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # Excel stores 12 as 12.0
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


def _converter(spec: ColumnSpec, fmt: str | None) -> Callable[[Any], Any]:
    t = spec.sql_type
    if isinstance(t, sa.Boolean):

        def conv(v):
            if isinstance(v, bool):
                return v
            s = _text(v).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(f"not a boolean: {v!r}")

        return conv
    if isinstance(t, sa.Integer):
        return lambda v: v if isinstance(v, int) else int(_text(v).strip())
    if isinstance(t, sa.Float):
        return lambda v: float(v) if isinstance(v, (int, float)) else float(_text(v).strip())
    if isinstance(t, sa.Numeric):
        scale = t.scale if t.scale is not None else 10
        quantum = Decimal(1).scaleb(-scale)

        def conv(v):
            try:
                d = v if isinstance(v, Decimal) else Decimal(_text(v).strip())
            except InvalidOperation:
                raise ValueError(f"not a decimal: {v!r}") from None
            if not d.is_finite():
                raise ValueError(f"not a finite decimal: {v!r}")
            if d.as_tuple().exponent >= -scale:
                return d
            q = d.quantize(quantum)
            if q != d:  # never rounded silently
                raise ValueError(f"{v!r} has more than {scale} decimals")
            return q

        return conv
    if isinstance(t, sa.DateTime):

        def conv(v):
            if isinstance(v, datetime):
                return v
            s = _text(v).strip()
            return datetime.strptime(s, fmt) if fmt else datetime.fromisoformat(s)

        return conv
    if isinstance(t, sa.Date):

        def conv(v):
            if isinstance(v, datetime):
                return v.date()
            if isinstance(v, date):
                return v
            s = _text(v).strip()
            return datetime.strptime(s, fmt).date() if fmt else date.fromisoformat(s)

        return conv
    if isinstance(t, sa.Time):
        return lambda v: v if isinstance(v, dtime) else dtime.fromisoformat(_text(v).strip())
    return _text


class ColumnPlan(NamedTuple):
    """How one column is filled: from which field, typed by `convert`."""

    name: str
    source: str
    nullable: bool
    convert: Callable[[Any], Any]
    is_text: bool
    spec: ColumnSpec


class RowTyper:
    """Maps a parsed record (field -> raw value) onto the declared columns, typing each value."""

    def __init__(
        self,
        columns: tuple[ColumnSpec, ...],
        sources: dict[str, str] | None = None,
        formats: dict[str, str | None] | None = None,
        strict_fields: bool = False,
    ):
        self.columns = columns
        self.strict_fields = strict_fields  # columns were inferred: an unknown field is an error, not ignored
        formats = formats or {}
        sources = sources or {}
        self.plan = [
            ColumnPlan(
                c.name,
                sources.get(c.name, c.name),
                c.nullable,
                _converter(c, formats.get(c.name)),
                isinstance(c.sql_type, (sa.String, sa.Text)) and not isinstance(c.sql_type, sa.Enum),
                c,
            )
            for c in columns
        ]
        self.known = {p.source for p in self.plan}

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.strict_fields and len(record) > len(self.known):
            extra = sorted(set(record) - self.known)
            if extra:
                raise RowError(f"fields not in the column list: {extra}")
        out = {}
        for name, src, nullable, conv, is_text, _ in self.plan:
            v = record.get(src)
            if v is None or (v == "" and not is_text):
                if not nullable:
                    raise RowError(f"column {name!r} is required but empty")
                out[name] = None
                continue
            if is_text and type(v) is str:  # the hot path of all-string CSV
                out[name] = v
                continue
            try:
                out[name] = conv(v)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise RowError(f"column {name!r}: {exc}") from None
        return out
