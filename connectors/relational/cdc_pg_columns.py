"""pgoutput Insert/Update/Delete messages of one table decoded in bulk into Arrow columns.

Decoding value by value (`read_tuple`, then psycopg's loader and a converter per value, then an
envelope dict per change) was ~half of the log capture's CPU a change. Here a table's messages are
joined into one buffer and each column of the row images is located for all rows at once with
numpy (TupleData is, per column, a kind byte and for a text value an int32 length and the text),
its texts gathered into one Arrow string array and cast by Arrow to the column's type.

Only types whose text output Arrow parses to the value psycopg's loader gives are taken
(`_cast`); a column of another type, a key-only before image, a binary value, a text Arrow
refuses (NaN numeric, infinity, BC dates) or a database not in UTF-8 returns None: the caller
decodes those changes one by one, as before. An unchanged TOASTed value ('u') takes the before
image's value, as the row-wise path does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.relational.cdc_pgoutput import Relation
from connectors.relational.pg_replication import XLOGDATA_HEADER

_N, _U, _T = ord("n"), ord("u"), ord("t")
_INSERT, _UPDATE, _DELETE = ord("I"), ord("U"), ord("D")
_OLD, _KEY, _NEW = ord("O"), ord("K"), ord("N")
_OP_INDEX = np.zeros(256, np.int32)  # message kind -> index into OPS
_OP_INDEX[_UPDATE], _OP_INDEX[_DELETE] = 1, 2
OPS = pa.array(["c", "u", "d"], pa.string())
_TEXT_OIDS = {25, 1042, 1043, 2950}  # text, bpchar, varchar, uuid: the text is the value
_INT_OIDS = {20, 21, 23}  # int8, int2, int4
_UTC_MICROS = pa.timestamp("us", tz="UTC")


def _cast(text: pa.Array, oid: int, target: pa.DataType) -> pa.Array | None:
    """The text output of type `oid` as Arrow `target`, or None where there is no bulk path.
    Raises pa.ArrowInvalid for a text Arrow does not parse."""
    if oid in _TEXT_OIDS and target == pa.string():
        return text
    if oid in _INT_OIDS and pa.types.is_integer(target):
        return text.cast(target)
    if oid in (700, 701) and target == pa.float64():  # float4 too: psycopg loads it as a Python float
        return text.cast(target)
    if oid == 1700 and pa.types.is_decimal(target):
        return text.cast(target)
    if oid == 16 and target == pa.bool_():
        return pc.equal(text, "t")
    if oid == 1082 and target == pa.date32():
        return text.cast(target)
    if oid == 1114 and target == _UTC_MICROS:  # naive, taken as UTC: as the encoder takes psycopg's datetime
        return text.cast(pa.timestamp("us")).cast(target)
    if oid == 1184 and target == _UTC_MICROS:  # the text carries its offset
        return text.cast(target)
    return None


class Images:
    """The changes of a run of messages of one relation: `ops` (index into OPS per row), `lsns`,
    `before` and `after` as struct arrays (null where the op has none)."""

    def __init__(self, ops: np.ndarray, lsns: np.ndarray, before: pa.StructArray, after: pa.StructArray):
        self.ops, self.lsns, self.before, self.after = ops, lsns, before, after


def decode_images(messages: list, rel: Relation, fields: list[pa.Field]) -> Images | None:
    """`messages` (XLogData of 'I', 'U', 'D' of relation `rel`) as row images with `fields` (source
    column name, Arrow type; a field the relation lacks is null), or None where the bulk path does
    not apply."""
    by_name = {name: (i, oid) for i, (name, oid) in enumerate(rel.columns)}
    if any(f.name in by_name and not _castable(by_name[f.name][1], f.type) for f in fields):
        return None
    n = len(messages)
    buf = np.frombuffer(b"".join(messages), np.uint8)
    starts = np.zeros(n, np.int64)
    np.cumsum(np.fromiter(map(len, messages), np.int64, n)[:-1], out=starts[1:])
    lsns = np.ascontiguousarray(buf[(starts + 1)[:, None] + np.arange(8)]).view(">u8").ravel()
    starts += XLOGDATA_HEADER  # the pgoutput messages
    kinds, markers = buf[starts], buf[starts + 5]
    if (markers == _KEY).any():  # key-only before images: not supported (the tables are FULL)
        return None
    natts = len(rel.columns)
    has_old = markers == _OLD
    old = _locate(buf, starts[has_old] + 6, natts)
    if old is None:
        return None
    has_new = kinds != _DELETE
    new_at = starts + 6
    new_at[has_old] = old[1] + 1  # an update's new image follows its old one and an 'N'
    if (buf[new_at[has_old & has_new] - 1] != _NEW).any():
        return None
    new = _locate(buf, new_at[has_new], natts)
    if new is None:
        return None
    before, after = [], []
    try:
        for f in fields:
            if f.name not in by_name:
                before.append(pa.nulls(n, f.type))
                after.append(pa.nulls(n, f.type))
                continue
            j, oid = by_name[f.name]
            o_kind, o_start, o_len = _spread(old[0][j], has_old, n)
            n_kind, n_start, n_len = _spread(new[0][j], has_new, n)
            unchanged = n_kind == _U  # not resent: the old image has it (and if not, null)
            n_kind = np.where(unchanged, o_kind, n_kind)
            n_start = np.where(unchanged, o_start, n_start)
            n_len = np.where(unchanged, o_len, n_len)
            old_values = _cast(_texts(buf, o_kind == _T, o_start, o_len), oid, f.type)
            new_values = _cast(_texts(buf, n_kind == _T, n_start, n_len), oid, f.type)
            if old_values is None or new_values is None:
                return None
            before.append(old_values)
            after.append(new_values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        return None  # a text Arrow does not parse as psycopg would (or invalid UTF-8): row by row
    names = [f.name for f in fields]
    return Images(
        _OP_INDEX[kinds],
        lsns.astype(np.uint64),
        pa.StructArray.from_arrays(before, names=names, mask=pa.array(~has_old)),
        pa.StructArray.from_arrays(after, names=names, mask=pa.array(~has_new)),
    )


@lru_cache(maxsize=256)
def _castable(oid: int, target: pa.DataType) -> bool:
    return _cast(pa.array([], pa.string()), oid, target) is not None


def _locate(buf: np.ndarray, at: np.ndarray, natts: int):
    """TupleData at each position in `at`: ([(kind, text start, text length) per column], end)."""
    if len(at) and (_be(buf, at, 2) != natts).any():
        return None
    pos = at + 2
    columns = []
    last = len(buf) - 4
    for _ in range(natts):
        kind = buf[pos]
        text = kind == _T
        if not (text | (kind == _N) | (kind == _U)).all():
            return None  # 'b' (binary) is never asked for
        length = np.where(text, _be(buf, np.minimum(pos + 1, last), 4), 0)
        columns.append((kind, pos + 5, length))
        pos = pos + 1 + np.where(text, 4 + length, 0)
    return columns, pos


def _be(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The big-endian signed integers of `width` bytes at each position."""
    raw = buf[at[:, None] + np.arange(width)]
    return np.ascontiguousarray(raw).view(">i2" if width == 2 else ">i4").ravel().astype(np.int64)


def _spread(column, rows: np.ndarray, n: int):
    """A column located for the rows in mask `rows`, as arrays over all n rows (kind 'n' elsewhere)."""
    kind, start, length = column
    all_kind = np.full(n, _N, np.uint8)
    all_start = np.zeros(n, np.int64)
    all_len = np.zeros(n, np.int64)
    all_kind[rows], all_start[rows], all_len[rows] = kind, start, length
    return all_kind, all_start, all_len


def _texts(buf: np.ndarray, valid: np.ndarray, start: np.ndarray, length: np.ndarray) -> pa.Array:
    """The text of each row (null where not `valid`) as an Arrow string array (UTF-8 checked)."""
    n = len(valid)
    length = np.where(valid, length, 0)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    total = int(offsets[-1])
    if total >= 1 << 31:
        raise OverflowError("more than 2 GiB of text in one column")
    data = buf[np.arange(total) + np.repeat(start - offsets[:-1], length)]
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    binary = pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )
    return binary.cast(pa.string())


def hex_upper(values: np.ndarray) -> pa.Array:
    """Each uint32 in upper-case hex without leading zeros ('0' for 0), as PostgreSQL prints LSNs."""
    v = values.astype(np.uint64)
    digits = np.empty((len(v), 8), np.uint8)
    for j in range(8):
        digits[:, 7 - j] = (v >> np.uint64(4 * j)) & np.uint64(0xF)
    chars = np.frombuffer(b"0123456789ABCDEF", np.uint8)[digits]
    width = np.ones(len(v), np.int64)
    for j in range(1, 8):
        width += v >= np.uint64(1 << (4 * j))
    data = chars[np.arange(8) >= (8 - width)[:, None]]
    offsets = np.zeros(len(v) + 1, np.int32)
    np.cumsum(width, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(v), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
