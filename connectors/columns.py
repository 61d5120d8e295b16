"""Rows a source fetched as tuples, turned into a RowFrame: one Arrow array per column, typed as
the table's Avro row schema wants it, so the runtime encodes them column by column.

`frame_of` returns None when a column's values do not convert exactly (a UUID in a string
column, an int beyond 64 bits, a type the columnar encoder does not cover): the source then
emits those rows one by one, as before, and the row encoder decides about each of them.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import CapturedTable, RowFrame
from schemas.batch_avro import BatchEncoder, UnsupportedSchema
from schemas.envelope import value_schema


@lru_cache(maxsize=256)
def row_type(table: CapturedTable) -> pa.StructType | None:
    """The Arrow type of the table's Avro row, or None if it is not batch-encodable."""
    try:
        return BatchEncoder(
            value_schema(table.system, table.schema, table.table, list(table.columns), table.unknown_types)
        ).arrow_type
    except (UnsupportedSchema, ValueError):
        return None


def frame_of(
    table: CapturedTable,
    names: list[str],
    rows: list[tuple],
    positions: pa.Array | list[str],
    sequence: int,
    ts_ms: int,
    snapshot: bool = False,
    op: str = "r",
) -> RowFrame | None:
    """`rows` (tuples in the order of `names`) as a frame of one op with one sequence, or None."""
    arrow_type = row_type(table)
    if arrow_type is None:
        return None
    index = {n: i for i, n in enumerate(names)}
    columns = list(zip(*rows)) if rows else [()] * len(names)
    try:
        arrays = [pa.array(columns[index[f.name]], f.type) for f in arrow_type]
        if not isinstance(positions, pa.Array):
            positions = pa.array(positions, pa.string())
    except (KeyError, pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return RowFrame(
        table,
        op,
        pa.Table.from_arrays(arrays, schema=pa.schema(list(arrow_type))),
        positions,
        pa.repeat(pa.scalar(sequence, pa.int64()), len(rows)),
        ts_ms,
        snapshot,
    )


def json_lists(head: str, columns: list[list], tail: str) -> pa.Array | None:
    """Per row, `head + json.dumps([v1, v2, ...]) + tail` for columns of Python ints (None
    otherwise: only integers print the same in Arrow and in JSON)."""
    if not columns or not all(type(v) is int for c in columns for v in c):
        return None
    parts: list = [head + "["]
    for i, c in enumerate(columns):
        parts += ([] if i == 0 else [", "]) + [pa.array(c, pa.int64()).cast(pa.string())]
    return pc.binary_join_element_wise(*parts, "]" + tail, "")
