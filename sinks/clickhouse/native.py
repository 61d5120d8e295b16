"""A frame's columns in ClickHouse's Native block layout, built from Arrow buffers with numpy.

clickhouse-driver writes an insert value by value in Python (a date turned into days through a
dict, a string encoded one by one, `struct.pack(*items)`): for the sink that was ~3-4 µs a row,
more than decoding the Avro. The Native layout of the types the sink uses is simple enough to
build from the columns' buffers directly: numbers as little-endian arrays, Date as UInt16 days,
DateTime as UInt32 seconds, Decimal as its scaled integer (Int32/Int64/Int128 by precision),
String as varint length + bytes, Nullable(T) as a byte per row (1 = null) then T with defaults.
`column_bytes` answers None for any other type or value it cannot take as it is; the driver then
writes that column from Python values as before (`insert_block`), so nothing changes for them.

Out-of-range values follow the driver: a Date outside 1970-01-01..2149-06-06 is written as 0
(the driver does the same); a DateTime outside UInt32 seconds also becomes 0 (the driver refused
the whole batch, which the sink then retried for ever).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from clickhouse_driver import defines
from clickhouse_driver.block import BlockInfo, ColumnOrientedBlock
from clickhouse_driver.columns.service import write_column
from clickhouse_driver.protocol import ClientPacketTypes
from clickhouse_driver.varint import write_varint
from clickhouse_driver.writer import write_binary_str, write_binary_uint8

_NUMBERS = {
    "Int8": (pl.Int8, "<i1"),
    "Int16": (pl.Int16, "<i2"),
    "Int32": (pl.Int32, "<i4"),
    "Int64": (pl.Int64, "<i8"),
    "UInt8": (pl.UInt8, "<u1"),
    "UInt16": (pl.UInt16, "<u2"),
    "UInt32": (pl.UInt32, "<u4"),
    "UInt64": (pl.UInt64, "<u8"),
    "Float32": (pl.Float32, "<f4"),
    "Float64": (pl.Float64, "<f8"),
}
_TEXT = (pl.String, pl.Categorical, pl.Enum)
_CAST_ERRORS = (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, OverflowError)


def _number(series: pl.Series, ch_type: str) -> bytes | None:
    dtype, layout = _NUMBERS[ch_type]
    if isinstance(series.dtype, pl.Time):
        series = series.cast(pl.Int64) // 1000  # micro-seconds, as the schema's time-micros
    elif not (series.dtype.is_numeric() or series.dtype == pl.Boolean) or isinstance(series.dtype, pl.Decimal):
        return None
    try:
        values = series.cast(dtype).fill_null(0).to_numpy()
    except _CAST_ERRORS:
        return None  # out of range for the column: the driver's own checks decide
    return values.astype(layout, copy=False).tobytes()


def _date(series: pl.Series) -> bytes | None:
    if series.dtype != pl.Date:
        return None
    days = series.cast(pl.Int32).fill_null(0).to_numpy()
    return np.where((days >= 0) & (days <= 65535), days, 0).astype("<u2").tobytes()


def _datetime(series: pl.Series) -> bytes | None:
    if not isinstance(series.dtype, pl.Datetime):
        return None
    seconds = series.dt.epoch("s").fill_null(0).to_numpy()
    return np.where((seconds >= 0) & (seconds <= 0xFFFFFFFF), seconds, 0).astype("<u4").tobytes()


def _decimal(series: pl.Series, ch_type: str) -> bytes | None:
    if not isinstance(series.dtype, pl.Decimal):
        return None
    precision, scale = (int(p) for p in ch_type[8:-1].split(","))
    if precision > 38:
        return None
    try:  # the column's scale; the value's integer is then exactly what ClickHouse stores
        array = series.cast(pl.Decimal(38, scale)).fill_null(0).to_arrow()
    except _CAST_ERRORS:
        return None
    words = np.frombuffer(array.buffers()[1], dtype="<i8").reshape(-1, 2)[array.offset : array.offset + len(array)]
    if precision > 18:
        return words.tobytes()  # Int128: low then high word, as Arrow keeps it
    return words[:, 0].astype("<i4" if precision <= 9 else "<i8").tobytes()


def _varints(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each length's unsigned LEB128 bytes: (bytes per length, byte k of each length by column k)."""
    sizes = np.ones(len(lengths), dtype=np.int64)
    for bits in (7, 14, 21, 28, 35, 42, 49, 56):
        sizes += lengths >= (1 << bits)
    width = int(sizes.max()) if len(sizes) else 1
    parts = np.empty((len(lengths), width), dtype=np.uint8)
    for k in range(width):
        more = np.where(sizes > k + 1, 0x80, 0)
        parts[:, k] = ((lengths >> (7 * k)) & 0x7F) | more
    return sizes, parts


def _strings(series: pl.Series) -> bytes | None:
    if not isinstance(series.dtype, _TEXT):
        return None
    array = series.cast(pl.String).fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
    n = len(array)
    if n == 0:
        return b""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    if len(lengths) and lengths.max() < 0x80:  # the common case: one length byte per string
        heads = offsets[:-1] - offsets[0] + np.arange(n)
        out = np.empty(n + data.size, dtype=np.uint8)
        body = np.ones(out.size, dtype=bool)
        body[heads] = False
        out[heads] = lengths
        out[body] = data
        return out.tobytes()
    sizes, parts = _varints(lengths)
    starts = offsets[:-1] - offsets[0] + np.cumsum(sizes) - sizes  # where each string's length begins
    out = np.empty(int(sizes.sum()) + data.size, dtype=np.uint8)
    body = np.ones(out.size, dtype=bool)
    for k in range(parts.shape[1]):
        has = sizes > k
        where = starts[has] + k
        out[where] = parts[has, k]
        body[where] = False
    out[body] = data
    return out.tobytes()


def column_bytes(series: pl.Series, ch_type: str) -> bytes | None:
    """The column's Native bytes for `ch_type` (the server's type), or None: the driver writes it."""
    if ch_type.startswith("Nullable("):
        inner = column_bytes(series, ch_type[9:-1])
        if inner is None:
            return None
        return series.is_null().cast(pl.UInt8).to_numpy().tobytes() + inner
    if ch_type in _NUMBERS:
        return _number(series, ch_type)
    if ch_type == "String":
        return _strings(series)
    if ch_type == "Date":
        return _date(series)
    if ch_type == "DateTime":
        return _datetime(series)
    if ch_type.startswith("Decimal("):
        return _decimal(series, ch_type)
    return None


def insert_block(
    client,
    table: str,
    columns: list[tuple[str, pl.Series]],
    python_values: Callable[[pl.Series, str], list[Any]],
) -> list[tuple[str, str]]:
    """INSERT one block over clickhouse-driver's connection, its columns written by `column_bytes`
    against the types the server announces for them, or by the driver from `python_values(series,
    type)` where it answers None. Returns the (column, type) the server announced.

    Follows the driver's own insert (Client.process_insert_query and send_data) packet by packet;
    errors are the driver's, and the connection is dropped on any of them."""
    names = ", ".join(f"`{name}`" for name, _ in columns)
    query = f"INSERT INTO `{table}` ({names}) VALUES"
    rows = len(columns[0][1]) if columns else 0
    with client.disconnect_on_error(query, None):
        connection = client.connection
        connection.send_query(query)
        connection.send_external_tables(None)
        sample = client.receive_sample_block()
        announced = list(sample.columns_with_types)
        revision = connection.server_info.used_revision
        write_varint(ClientPacketTypes.DATA, connection.fout)
        if revision >= defines.DBMS_MIN_REVISION_WITH_TEMPORARY_TABLES:
            write_binary_str("", connection.fout)
        out = connection.block_out.fout  # the compressing buffer when compression is on
        if revision >= defines.DBMS_MIN_REVISION_WITH_BLOCK_INFO:
            BlockInfo().write(out)
        write_varint(len(columns), out)
        write_varint(rows, out)
        for (name, ch_type), (_, series) in zip(announced, columns, strict=True):
            write_binary_str(name, out)
            write_binary_str(ch_type, out)
            if revision >= defines.DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION:
                write_binary_uint8(0, out)
            data = column_bytes(series, ch_type)
            if data is None:
                write_column(connection.context, name, ch_type, python_values(series, ch_type), out)
            else:
                out.write(data)
        connection.block_out.finalize()
        client.receive_profile_events()
        connection.send_data(ColumnOrientedBlock())  # an empty block ends the data
        client.receive_profile_events()
        client.receive_end_of_insert_query()
    return announced
