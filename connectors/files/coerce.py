"""Text (or spreadsheet/JSON) values to the Python values the Avro envelope expects, per ColumnSpec.

A value that does not fit its declared type raises `RowError`; the source turns that into a
quarantined row with file, line and reason instead of dropping it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import sqlalchemy.types as sa
from pydantic import BaseModel, ConfigDict, Field

from connectors.files.messages import looks_sensitive, quote, render
from schemas.sqltypes import ColumnSpec


class RowError(ValueError):
    """A row that cannot be parsed or typed; the message is the quarantine reason (English), `code`
    and `params` render it in other languages (connectors.files.messages)."""

    def __init__(self, message: str, code: str = "other", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = params if params is not None else {"detail": message}


class _Refused(ValueError):
    """A converter's refusal: catalogue code and params (column and value are added by RowTyper)."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


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
    format: str | list[str] | None = Field(
        None,
        description="strptime format(s) for date/datetime, tried in order, e.g. ['%Y/%m/%d', '%Y年%m月%d日']",
    )
    source: str | None = Field(
        None, description="field name in the file when it differs from `name`; JSON: a dotted path (a.b.c)"
    )
    thousands: str | None = Field(
        None, description="numbers: accept this thousands separator in groups of three (',': 1,000.00)"
    )
    fullwidth: bool = Field(False, description="accept full-width digits, signs and points (１２３．５ -> 123.5)")
    sensitive: bool | None = Field(
        None,
        description="mask this column's values in refusal reasons; default: guessed from names that look "
        "like ID numbers or phones (no data classification yet)",
    )

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


_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def preparer(fullwidth: bool, thousands: str | None) -> Callable[[str], str] | None:
    """The declared text normalisation of a column (None: none): full-width characters to ASCII,
    then a thousands separator removed where it groups digits by three (`1,000.00`; `1,00` stays
    and is refused)."""
    if not fullwidth and not thousands:
        return None
    grouped = (
        re.compile(rf"^\s*[+-]?[0-9]{{1,3}}({re.escape(thousands)}[0-9]{{3}})+(\.[0-9]*)?\s*$") if thousands else None
    )

    def prepare(text: str) -> str:
        if fullwidth:
            text = text.translate(_FULLWIDTH)
        if grouped is not None and grouped.match(text):
            text = text.replace(thousands, "")
        return text

    return prepare


def _converter(spec: ColumnSpec, fmt: str | list[str] | None, type_name: str = "") -> Callable[[Any], Any]:
    t = spec.sql_type
    formats = [fmt] if isinstance(fmt, str) else list(fmt or [])

    def refuse(v, kind: str):
        raise _Refused("type", type=kind, value=v)

    if isinstance(t, sa.Boolean):

        def conv(v):
            if isinstance(v, bool):
                return v
            s = _text(v).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            refuse(v, "boolean")

        return conv
    if isinstance(t, sa.Integer):

        def conv(v):
            if isinstance(v, int):
                return v
            try:
                return int(_text(v).strip())
            except ValueError:
                refuse(v, "integer")

        return conv
    if isinstance(t, sa.Float):

        def conv(v):
            if isinstance(v, (int, float)):
                return float(v)
            try:
                return float(_text(v).strip())
            except ValueError:
                refuse(v, "float")

        return conv
    if isinstance(t, sa.Numeric):
        scale = t.scale if t.scale is not None else 10
        quantum = Decimal(1).scaleb(-scale)

        def conv(v):
            try:
                d = v if isinstance(v, Decimal) else Decimal(_text(v).strip())
            except InvalidOperation:
                refuse(v, "decimal")
            if not d.is_finite():
                refuse(v, "decimal")
            if d.as_tuple().exponent >= -scale:
                return d
            q = d.quantize(quantum)
            if q != d:  # never rounded silently
                raise _Refused("decimals", value=v, scale=scale)
            return q

        return conv

    def parse_time(s: str, kind: str, iso):
        if not formats:
            try:
                return iso(s)
            except ValueError:
                refuse(s, kind)
        for f in formats:
            try:
                return datetime.strptime(s, f)
            except ValueError:
                continue
        raise _Refused("format", value=s, format=" | ".join(formats))

    if isinstance(t, sa.DateTime):

        def conv(v):
            if isinstance(v, datetime):
                return v
            return parse_time(_text(v).strip(), "datetime", datetime.fromisoformat)

        return conv
    if isinstance(t, sa.Date):

        def conv(v):
            if isinstance(v, datetime):
                return v.date()
            if isinstance(v, date):
                return v
            parsed = parse_time(_text(v).strip(), "date", date.fromisoformat)
            return parsed.date() if isinstance(parsed, datetime) else parsed

        return conv
    if isinstance(t, sa.Time):

        def conv(v):
            if isinstance(v, dtime):
                return v
            try:
                return dtime.fromisoformat(_text(v).strip())
            except ValueError:
                refuse(v, "time")

        return conv
    return _text


class ColumnPlan(NamedTuple):
    """How one column is filled: from which field, typed by `convert`."""

    name: str
    source: str
    nullable: bool
    convert: Callable[[Any], Any]
    is_text: bool
    spec: ColumnSpec
    prepare: Callable[[str], str] | None = None  # declared normalisation of the text (full-width, thousands)
    sensitive: bool = False  # values masked in reasons
    get: Callable[[dict], Any] | None = None  # the value of a record (a path into nested JSON)

    def value(self, record: dict) -> Any:
        return record.get(self.source) if self.get is None else self.get(record)


def path_getter(source: str) -> Callable[[dict], Any] | None:
    """For `a.b.c`: the field named so, else the nested value (dicts, list indexes); None for plain names."""
    if "." not in source:
        return None
    steps = source.split(".")

    def get(record: dict) -> Any:
        if source in record:
            return record[source]
        node: Any = record
        for step in steps:
            if isinstance(node, dict):
                node = node.get(step)
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return None
            if node is None:
                return None
        return node

    return get


class RowTyper:
    """Maps a parsed record (field -> raw value) onto the declared columns, typing each value."""

    def __init__(
        self,
        columns: tuple[ColumnSpec, ...],
        sources: dict[str, str] | None = None,
        formats: dict[str, Any] | None = None,
        strict_fields: bool = False,
        defs: list[ColumnDef] | None = None,
    ):
        self.columns = columns
        self.strict_fields = strict_fields  # columns were inferred: an unknown field is an error, not ignored
        formats = formats or {}
        sources = sources or {}
        by_name = {d.name: d for d in defs or []}
        self.plan = []
        for c in columns:
            d = by_name.get(c.name)
            src = sources.get(c.name, c.name)
            sensitive = d.sensitive if d is not None and d.sensitive is not None else looks_sensitive(c.name, src)
            self.plan.append(
                ColumnPlan(
                    c.name,
                    src,
                    c.nullable,
                    _converter(c, formats.get(c.name)),
                    isinstance(c.sql_type, (sa.String, sa.Text)) and not isinstance(c.sql_type, sa.Enum),
                    c,
                    preparer(d.fullwidth, d.thousands) if d is not None else None,
                    bool(sensitive),
                    path_getter(src),
                )
            )
        self.known = {p.source for p in self.plan}
        self._plain = all(p.prepare is None and p.get is None for p in self.plan)

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.strict_fields and len(record) > len(self.known):
            extra = sorted(set(record) - self.known)
            if extra:
                raise RowError(f"fields not in the column list: {extra}", "extra_fields", {"fields": extra})
        out = {}
        plain = self._plain
        for plan in self.plan:
            name, src, nullable, conv, is_text = plan[:5]
            v = record.get(src) if plain or plan.get is None else plan.get(record)
            if v is None or (v == "" and not is_text):
                if not nullable:
                    raise RowError(f"column {src!r} is required but empty", "required", {"column": src})
                out[name] = None
                continue
            if is_text and type(v) is str:  # the hot path of all-string CSV
                out[name] = v
                continue
            if plan.prepare is not None and type(v) is str:
                v = plan.prepare(v)
            try:
                out[name] = conv(v)
            except _Refused as exc:
                params = {"column": src, **exc.params}
                if "value" in params:
                    params["value"] = quote(params["value"], plan.sensitive)
                raise RowError(render(exc.code, params), exc.code, params) from None
            except (ValueError, TypeError, ArithmeticError) as exc:
                params = {"column": src, "detail": f"column {src!r}: {exc}"}
                raise RowError(params["detail"], "other", params) from None
        return out
