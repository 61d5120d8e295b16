"""Types a batch of parsed records column by column: the hot path of file imports.

`RowTyper` (coerce.py) stays the authority. Text, integer, float and decimal columns are cast
for the whole batch at once with Arrow compute (polars would add ~50 MB to an import's memory),
and only values in forms both read alike ("12", "-1.5e3", "0.25"); any other value is typed
again by RowTyper, which gives the quarantine reason. If RowTyper accepts it ("+1_000", "inf"),
the batch is typed row by row instead, so both paths always give the same values. Other types
(dates, times, booleans) use RowTyper's converters value by value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy.types as sa

from connectors.files.coerce import ColumnPlan, RowError, RowTyper
from connectors.files.formats import Refusal


@dataclass
class TypedBatch:
    rows: pa.Table  # the good records, typed, in batch order
    good: np.ndarray  # their indexes in the batch
    bad: dict[int, str]  # index -> why the record was refused (a formats.Refusal)


# Forms the Arrow casts below read exactly as Python does; anything else is left to RowTyper.
_INTEGER = r"^[+-]?[0-9]{1,18}$"  # 18 digits always fit int64
_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _decimal_pattern(precision: int, scale: int) -> str:
    """Plain decimals with at most `scale` digits after the point (a cast would round the rest)."""
    whole = rf"[0-9]{{1,{max(precision - scale, 1)}}}"
    fraction = rf"(\.[0-9]{{0,{scale}}})?|\.[0-9]{{1,{scale}}}" if scale else r"\.?"
    return rf"^[+-]?({whole}{fraction})$"


def _cast_where(text: pa.Array, pattern: str, arrow_type: pa.DataType) -> pa.Array:
    """Values matching `pattern` cast to `arrow_type`, others null."""
    plain = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return pc.cast(pc.if_else(plain, pc.replace_substring_regex(text, r"^\+", ""), None), arrow_type)


def _cast(plan: ColumnPlan, text: pa.Array, empty: np.ndarray) -> tuple[pa.Array, np.ndarray] | None:
    """(typed column, rows whose value the cast refused), or None when this column cannot be
    typed as a whole (values of mixed Python types)."""
    t = plan.spec.sql_type
    if plan.is_text:
        return text, np.zeros(len(text), bool)
    if isinstance(t, (sa.Integer, sa.Float, sa.Numeric)):
        stripped = pc.utf8_trim_whitespace(text)
        if isinstance(t, sa.Integer):
            typed = _cast_where(stripped, _INTEGER, pa.int64())
        elif isinstance(t, sa.Float):
            typed = _cast_where(stripped, _FLOAT, pa.float64())
        else:
            scale = t.scale if t.scale is not None else 10
            precision = min(t.precision or 38, 38)
            typed = _cast_where(stripped, _decimal_pattern(precision, scale), pa.decimal128(38, scale))
        return typed, typed.is_null().to_numpy(zero_copy_only=False) & ~empty
    values: list[Any] = []
    refused = np.zeros(len(text), bool)
    for i, v in enumerate(text.to_pylist()):
        try:
            values.append(None if empty[i] else plan.convert(v))
        except (ValueError, TypeError, ArithmeticError):
            values.append(None)
            refused[i] = True
    try:
        return pa.array(values), refused
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def type_batch(typer: RowTyper, records: list[dict[str, Any]]) -> TypedBatch | None:
    """The batch typed in columns, or None: type it row by row (see the module doc)."""
    n = len(records)
    suspect = np.zeros(n, bool)
    if typer.strict_fields:
        known = len(typer.known)
        suspect |= np.fromiter((len(r) > known for r in records), bool, n)
    columns: dict[str, pa.Array] = {}
    for plan in typer.plan:
        values = [r.get(plan.source) for r in records] if plan.get is None else [plan.get(r) for r in records]
        if plan.prepare is not None and not plan.is_text:  # declared normalisation, as RowTyper does it
            prepare = plan.prepare
            values = [prepare(v) if type(v) is str else v for v in values]
        try:
            text = pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None  # not all text (JSON numbers, nested XML): row by row
        empty = text.is_null().to_numpy(zero_copy_only=False)
        if not plan.is_text:
            empty = empty | pc.equal(text.fill_null(""), "").to_numpy(zero_copy_only=False)
        if not plan.nullable:
            suspect |= empty
        cast = _cast(plan, text, empty)
        if cast is None:
            return None
        columns[plan.name], refused = cast
        suspect |= refused
    bad: dict[int, str] = {}
    for i in np.flatnonzero(suspect):
        try:
            typer(records[i])
        except RowError as exc:
            bad[int(i)] = Refusal(exc.code, **exc.params)  # the text, with its catalogue entry
            continue
        return None  # RowTyper accepts what the cast refused: row by row keeps one behaviour
    good = np.flatnonzero(~suspect)
    table = pa.table(columns)
    return TypedBatch(table.take(good) if bad else table, good, bad)
