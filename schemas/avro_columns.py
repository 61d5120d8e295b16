"""Decode a batch of schemaless Avro records into Arrow columns, field by field for all records at once.

polars' Avro reader (schemas.frames) parses record by record, ~1.1-1.3 us a change-event envelope
of 8 columns on this machine while holding the GIL: the ClickHouse sink's largest cost after
consuming. Avro's binary encoding of a record is its fields' encodings one after the other, so a
batch can be read the other way round: a cursor per record, and each field read for every record
at once with numpy (zig-zag varints byte by byte across the batch, strings gathered from their
lengths, a [null, T] union's branch deciding which records read T). The decoder mirrors
schemas.batch_avro's encoder.

Supported: records, [null, T] unions, boolean, int, long, float, double, string, bytes, enum and
the logical types date, timestamp-millis/micros and decimal (bytes, precision <= 18). The frame is
the one `pl.read_avro` gives for the same block (tests/test_avro_columns.py compares them). Any
other construct raises UnsupportedSchema when the decoder is built (schemas.frames then uses
polars' reader); a batch whose records do not parse to their last byte raises UndecodableBatch
(schemas.frames then decodes its records one by one to name the bad ones).

Strings and bytes come out as Arrow views into the batch's own bytes (no copy of long values), so
a frame keeps its batch's bytes alive while it lives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from schemas.batch_avro import UnsupportedSchema

_PAD = 16  # bytes after the batch: a varint read near its end stays inside the buffer
_MAX_VIEW_OFFSET = 2**31 - 1  # an Arrow view's offset is an int32: a larger batch is read in halves
_MAX_DECIMAL_BYTES = 8  # precision <= 18: the unscaled value fits an int64


class UndecodableBatch(ValueError):
    """A record of the batch does not parse as the schema (or not to its last byte)."""


class _Cursor:
    """The batch's bytes, and per record where its next field starts and where it ends."""

    __slots__ = ("buf", "data", "windows", "pos", "ends", "size", "starts", "span")

    def __init__(self, values: list[bytes], skip: int):
        joined = b"".join([*values, bytes(_PAD)])
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths  # where each record's value begins in the batch
        self.pos = self.starts + skip
        self.span: tuple[np.ndarray, np.ndarray] | None = None  # the marked field's (start, end)
        self.size = len(joined) - _PAD
        self.buf = np.frombuffer(joined, dtype=np.uint8)
        self.data = pa.py_buffer(joined)  # what the string views point into
        self.windows = sliding_window_view(self.buf, 12)  # the 12 bytes from each position on

    def at(self, rows: np.ndarray | None) -> np.ndarray:
        return self.pos if rows is None else self.pos[rows]

    def move(self, rows: np.ndarray | None, pos: np.ndarray) -> None:
        if rows is None:
            self.pos = pos
        else:
            self.pos[rows] = pos

    def ends_of(self, rows: np.ndarray | None) -> np.ndarray:
        return self.ends if rows is None else self.ends[rows]


# A field's reader: the rows (indices into the batch; None: every row) that hold the field -> their
# values, the rows' cursors moved past them.
Reader = Callable[[_Cursor, np.ndarray | None], pa.Array]


def _varints(cur: _Cursor, rows: np.ndarray | None) -> np.ndarray:
    """The zig-zag varint at each row's cursor (int64), the cursors moved past it."""
    pos = cur.at(rows)
    if pos.size and pos.max() >= cur.size:
        raise UndecodableBatch("a record ends inside a field")
    byte = cur.buf[pos]
    if not (byte >= 0x80).any():  # one byte each: small numbers, lengths, union branches
        cur.move(rows, pos + 1)
        raw = byte.astype(np.int64)
        return (raw >> 1) ^ -(raw & 1)
    raw = (byte & 0x7F).astype(np.uint64)
    more = byte >= 0x80
    width = np.ones(pos.size, dtype=np.int64)
    for k in range(1, 10):
        byte = cur.buf[pos + k]
        raw |= ((byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)) * more
        width += more
        more &= byte >= 0x80
        if not more.any():
            break
    else:
        raise UndecodableBatch("a varint longer than 10 bytes")
    cur.move(rows, pos + width)
    return (raw >> np.uint64(1)).astype(np.int64) ^ -(raw & np.uint64(1)).astype(np.int64)


def _spans(cur: _Cursor, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of the length-prefixed bytes at each row's cursor, the cursors moved past them."""
    lengths = _varints(cur, rows)
    start = cur.at(rows)
    stop = start + lengths
    if lengths.size and ((lengths < 0).any() or (stop > cur.ends_of(rows)).any()):
        raise UndecodableBatch("a string or bytes value runs past its record")
    cur.move(rows, stop)
    return start, lengths


def _views_from_buffers() -> bool:
    """Whether this pyarrow builds a string view array from its buffers: the PyFlink venv's
    pyarrow 16 (pinned by apache-flink) does not, and its runner decodes with polars instead."""
    try:
        pa.Array.from_buffers(pa.string_view(), 0, [None, pa.py_buffer(b""), pa.py_buffer(b"")])
        return True
    except (ValueError, NotImplementedError, pa.ArrowException):
        return False


_VIEWS_FROM_BUFFERS = _views_from_buffers()
_KEEP = np.array([[0xFF] * k + [0] * (12 - k) for k in range(13)], dtype=np.uint8)  # a length's inline bytes


def _views(arrow_type: pa.DataType) -> Reader:
    """Arrow string (or binary) views into the batch's bytes: per value its length and either the
    value itself (up to 12 bytes, zero-padded) or its first 4 bytes and where it starts in the
    batch. Only the views are built; polars takes them as they are."""

    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        start, lengths = _spans(cur, rows)
        n = start.size
        views = np.empty((n, 16), dtype=np.uint8)
        views[:, 4:] = cur.windows[start] & _KEEP[np.minimum(lengths, 12)]
        words = views.view("<i4")
        words[:, 0] = lengths
        long = lengths > 12
        if long.any():  # the prefix stays; then buffer 0 (the batch's bytes) and the offset in it
            words[:, 2] = np.where(long, 0, words[:, 2])
            words[:, 3] = np.where(long, start, words[:, 3])
        arr = pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(views), cur.data])
        if arrow_type == pa.string_view():
            try:
                arr.validate(full=True)  # UTF-8: polars' reader refuses a record that is not
            except pa.ArrowInvalid as exc:
                raise UndecodableBatch(str(exc)) from exc
        return arr

    return read


def _fixed_width(cur: _Cursor, rows: np.ndarray | None, width: int, dtype: str) -> np.ndarray:
    pos = cur.at(rows)
    if pos.size and (pos + width > cur.ends_of(rows)).any():
        raise UndecodableBatch("a record ends inside a field")
    cur.move(rows, pos + width)
    return cur.buf[pos[:, None] + np.arange(width)].view(dtype).ravel()


def _integers(arrow_type: pa.DataType, bits: int) -> Reader:
    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        values = _varints(cur, rows)
        if bits == 32:
            if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
                raise UndecodableBatch("an int out of range")
            values = values.astype(np.int32)
        return pa.Array.from_buffers(arrow_type, values.size, [None, pa.py_buffer(values)])

    return read


def _boolean(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
    return pa.array(_fixed_width(cur, rows, 1, "u1") != 0, pa.bool_())


def _floating(width: int, dtype: str, arrow_type: pa.DataType) -> Reader:
    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        values = _fixed_width(cur, rows, width, dtype)
        return pa.Array.from_buffers(arrow_type, values.size, [None, pa.py_buffer(values)])

    return read


def _decimal(precision: int, scale: int) -> Reader:
    """Decimal (bytes): the unscaled value big-endian in two's complement, as Arrow's 128-bit decimal."""
    arrow_type = pa.decimal128(precision, scale)

    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        start, lengths = _spans(cur, rows)
        widest = int(lengths.max()) if lengths.size else 0
        if widest > _MAX_DECIMAL_BYTES:
            raise UndecodableBatch("a decimal wider than its precision")
        value = np.zeros(start.size, dtype=np.uint64)
        for k in range(widest):
            byte = cur.buf[start + k].astype(np.uint64)  # inside the buffer: spans were checked
            value = np.where(k < lengths, (value << np.uint64(8)) | byte, value)
        signed = value.view(np.int64)
        negative = (lengths > 0) & (lengths < 8) & (cur.buf[start] >= 0x80)
        if negative.any():  # sign-extend: the value less 2 ** (8 * length)
            signed = signed - np.where(negative, np.int64(1) << np.where(negative, 8 * lengths, 0), 0)
        words = np.empty((start.size, 2), dtype=np.int64)
        words[:, 0] = signed
        words[:, 1] = signed >> 63  # the high half: the sign extended
        return pa.Array.from_buffers(arrow_type, start.size, [None, pa.py_buffer(words)])

    return read


def _enum(symbols: list[str]) -> Reader:
    dictionary = pa.array(symbols, pa.large_string())

    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        index = _varints(cur, rows)
        if index.size and (index.min() < 0 or index.max() >= len(symbols)):
            raise UndecodableBatch("an enum index out of range")
        return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.uint32), pa.uint32()), dictionary)

    return read


def _branches(cur: _Cursor, rows: np.ndarray | None, null_branch: int) -> np.ndarray:
    """Which rows hold a [null, T] union's T (its branch index read, the cursors moved past it)."""
    branch = _varints(cur, rows)
    if branch.size and (branch.min() < 0 or branch.max() > 1):
        raise UndecodableBatch("a union branch out of range")
    return branch != null_branch


def _subset(rows: np.ndarray | None, present: np.ndarray) -> np.ndarray:
    return np.flatnonzero(present) if rows is None else rows[present]


def _nullable(null_branch: int, inner: Reader, arrow_type: pa.DataType) -> Reader:
    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        present = _branches(cur, rows, null_branch)
        if present.all():
            return inner(cur, rows)
        if not present.any():
            return pa.nulls(present.size, arrow_type)
        return _spread(inner(cur, _subset(rows, present)), present)

    return read


def _spread(values: pa.Array, present: np.ndarray) -> pa.Array:
    """`values` at the rows where `present` is True, nulls at the others. Arrow's take has no
    kernel for string views, so they (and structs, which may hold them) are spread here."""
    valid = present.copy()
    if values.null_count:
        valid[present] = values.is_valid().to_numpy(zero_copy_only=False)
    arrow_type = values.type
    if pa.types.is_struct(arrow_type):
        children = [_spread(values.field(i), present) for i in range(arrow_type.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(arrow_type), mask=pa.array(~valid))
    if arrow_type in (pa.string_view(), pa.binary_view()):
        views = np.zeros((present.size, 16), dtype=np.uint8)
        given = np.frombuffer(values.buffers()[1], dtype=np.uint8).reshape(-1, 16)
        views[present] = given[values.offset : values.offset + len(values)]
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.Array.from_buffers(arrow_type, present.size, [validity, pa.py_buffer(views), *values.buffers()[2:]])
    return values.take(pa.array(np.cumsum(present) - 1, mask=~present))


def _marked(inner: Reader | Skipper) -> Reader | Skipper:
    """A top-level field's reader (or skipper) that notes where the field starts and ends in every
    record (cur.span), so its bytes can be replaced without encoding the rest of the record again."""

    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array | None:
        start = cur.at(rows).copy()  # the cursors move in place under a union's subset
        out = inner(cur, rows)
        cur.span = (start, cur.at(rows).copy())
        return out

    return read


def _discarded(read: Reader) -> Skipper:
    """A field read (and so checked) and dropped."""

    def skip(cur: _Cursor, rows: np.ndarray | None) -> None:
        read(cur, rows)

    return skip


def _record(readers: list[Reader], arrow_type: pa.DataType) -> Reader:
    fields = [arrow_type.field(i) for i in range(arrow_type.num_fields)]

    def read(cur: _Cursor, rows: np.ndarray | None) -> pa.Array:
        arrays = [r(cur, rows) for r in readers]  # a skipped field's reader answers None
        return pa.StructArray.from_arrays([a for a in arrays if a is not None], fields=fields)

    return read


# -- skipping a field nobody asked for: the cursors moved past it, nothing built ------------------
def _skip_varint(cur: _Cursor, rows: np.ndarray | None) -> None:
    _varints(cur, rows)


def _skip_spans(cur: _Cursor, rows: np.ndarray | None) -> None:
    _spans(cur, rows)


def _skip_fixed(width: int) -> Skipper:
    def skip(cur: _Cursor, rows: np.ndarray | None) -> None:
        pos = cur.at(rows) + width
        if pos.size and (pos > cur.ends_of(rows)).any():
            raise UndecodableBatch("a record ends inside a field")
        cur.move(rows, pos)

    return skip


def _skip_nullable(null_branch: int, inner: Skipper) -> Skipper:
    def skip(cur: _Cursor, rows: np.ndarray | None) -> None:
        present = _branches(cur, rows, null_branch)
        if present.any():
            inner(cur, rows if present.all() else _subset(rows, present))

    return skip


def _skip_record(skippers: list[Skipper]) -> Skipper:
    def skip(cur: _Cursor, rows: np.ndarray | None) -> None:
        for s in skippers:
            s(cur, rows)

    return skip


Skipper = Callable[[_Cursor, np.ndarray | None], None]
# kind -> (Arrow type, reader, skipper)
_PRIMITIVES: dict[str, tuple[pa.DataType, Reader, Skipper]] = {
    "boolean": (pa.bool_(), _boolean, _skip_fixed(1)),
    "int": (pa.int32(), _integers(pa.int32(), 32), _skip_varint),
    "long": (pa.int64(), _integers(pa.int64(), 64), _skip_varint),
    "float": (pa.float32(), _floating(4, "<f4", pa.float32()), _skip_fixed(4)),
    "double": (pa.float64(), _floating(8, "<f8", pa.float64()), _skip_fixed(8)),
    "string": (pa.string_view(), _views(pa.string_view()), _skip_spans),
    "bytes": (pa.binary_view(), _views(pa.binary_view()), _skip_spans),
}
# What of a value to read: all of it (True), or of a record the fields named, each with what of it.
Keep = bool | dict[str, "Keep"]


def _compile(
    t: Any, keep: Keep = True, mark: str | None = None, check: bool = False
) -> tuple[pa.DataType, Reader, Skipper]:
    """The Arrow type, reader and skipper of a schema with its references inlined
    (frames.reader_view); `keep` a record's fields to read (the others skipped); `mark` a field
    of the record whose span the reader notes (_marked); `check`: the fields not kept are read
    and dropped rather than skipped, so a record is refused for anything a reader refuses (text
    that is not UTF-8, an enum index or an int out of range) whether its field is kept or not."""
    if isinstance(t, str):
        if t in ("string", "bytes") and not _VIEWS_FROM_BUFFERS:
            raise UnsupportedSchema(f"{t!r}: pyarrow {pa.__version__} builds no view array from buffers")
        if t in _PRIMITIVES:
            return _PRIMITIVES[t]
        raise UnsupportedSchema(f"type {t!r}")
    if isinstance(t, list):
        if len(t) == 2 and "null" in t:
            null_branch = t.index("null")
            arrow_type, inner, skip = _compile(t[1 - null_branch], keep, None, check)
            return arrow_type, _nullable(null_branch, inner, arrow_type), _skip_nullable(null_branch, skip)
        raise UnsupportedSchema(f"union {t!r}")
    kind, logical = t.get("type"), t.get("logicalType")
    if kind == "record":
        fields = [(f["name"], f["type"]) for f in t["fields"]]
        compiled = [
            (name, *_compile(ft, True if keep is True else keep.get(name, True), None, check)) for name, ft in fields
        ]
        wanted = [keep is True or name in keep for name, _ in fields]
        arrow_type = pa.struct([pa.field(name, at) for (name, at, _, _), w in zip(compiled, wanted) if w])
        readers = [
            read if w else _discarded(read) if check else skip for (_, _, read, skip), w in zip(compiled, wanted)
        ]
        readers = [_marked(r) if name == mark else r for r, (name, _) in zip(readers, fields)]
        return arrow_type, _record(readers, arrow_type), _skip_record([skip for _, _, _, skip in compiled])
    if kind == "enum":
        return pa.dictionary(pa.uint32(), pa.large_string()), _enum(list(t["symbols"])), _skip_varint
    if logical == "date" and kind == "int":
        return pa.date32(), _integers(pa.date32(), 32), _skip_varint
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        arrow_type = pa.timestamp("ms" if logical == "timestamp-millis" else "us", "UTC")
        return arrow_type, _integers(arrow_type, 64), _skip_varint
    if logical == "decimal" and kind == "bytes" and t.get("precision", 99) <= 18:
        precision, scale = t["precision"], t.get("scale", 0)
        return pa.decimal128(precision, scale), _decimal(precision, scale), _skip_spans
    if logical is None and isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    raise UnsupportedSchema(f"type {t!r}")


def keep_of(columns: list[str]) -> Keep:
    """`["after", "source.sequence"]` as a Keep: the whole of `after`, of `source` its `sequence`."""
    keep: dict[str, Keep] = {}
    for column in columns:
        head, _, rest = column.partition(".")
        if not rest:
            keep[head] = True
        elif keep.get(head) is not True:
            inner = keep.setdefault(head, {})
            inner.update(keep_of([rest]))  # type: ignore[union-attr]
    return keep


class BatchDecoder:
    def __init__(
        self, schema: dict, columns: list[str] | None = None, spans_of: str | None = None, check_all: bool = False
    ):
        """`schema`: a record schema with named references inlined (schemas.frames.reader_view);
        `columns`: the fields to read (`source.sequence`: of a record field only that one), in the
        schema's order, the others skipped (Avro has no lengths to jump over a field: each is
        parsed all the same, but nothing is built of it). None: every field. `spans_of`: a
        top-level field whose place in each record decode_spans() reports. `check_all`: the
        fields not asked for are read and dropped, so exactly the records whole reading refuses
        are refused (a skipped string is not checked for UTF-8, nor a skipped enum's index)."""
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise UnsupportedSchema("the top level is not a record")
        if spans_of is not None and spans_of not in {f["name"] for f in schema["fields"]}:
            raise UnsupportedSchema(f"no field {spans_of!r}")
        self.spans_of = spans_of
        keep = True if columns is None else keep_of(columns)
        self.arrow_type, self._read, _ = _compile(schema, keep, spans_of, check_all)

    def decode(self, values: list[bytes], skip: int = 5) -> pl.DataFrame:
        """The records, each after its first `skip` bytes (the Confluent header), as a frame."""
        return self.decode_spans(values, skip)[0]

    def decode_spans(self, values: list[bytes], skip: int = 5) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        """decode(), and where the `spans_of` field starts and ends in each value (byte offsets,
        the header counted; zeros without spans_of)."""
        cur = _Cursor(values, skip)
        if cur.size > _MAX_VIEW_OFFSET and len(values) > 1:
            half = len(values) // 2
            first, second = self.decode_spans(values[:half], skip), self.decode_spans(values[half:], skip)
            return pl.concat([first[0], second[0]]), *(np.concatenate([a, b]) for a, b in zip(first[1:], second[1:]))
        struct = self._read(cur, None)
        if not np.array_equal(cur.pos, cur.ends):
            raise UndecodableBatch("a record does not end where its last field does")
        start, end = cur.span if cur.span is not None else (cur.starts, cur.starts)
        return pl.from_arrow(pa.RecordBatch.from_struct_array(struct)), start - cur.starts, end - cur.starts
