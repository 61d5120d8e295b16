"""Encodes the rows of one file into an Avro object container file or a Parquet file (bytes)."""
from __future__ import annotations

import io
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from sinks.hdfs.schema import Column, arrow_schema, avro_schema, column_values, infer_columns

EXTENSIONS = {"avro": "avro", "parquet": "parquet"}


def encode_avro(rows: list[dict[str, Any]], record_name: str, codec: str = "null") -> bytes:
    """Rows are the sink's own dicts and are modified in place (converted values, Avro names)."""
    cols = infer_columns(rows)
    schema = avro_schema(record_name, cols)
    for col, field in zip(cols, schema["fields"]):
        _prepare(rows, col, field["name"])
    buf = io.BytesIO()
    # ~64 KiB blocks keep per-block overhead small yet let readers split the file.
    fastavro.writer(buf, fastavro.parse_schema(schema), rows, codec=codec, sync_interval=64 * 1024)
    return buf.getvalue()


def _prepare(rows: list[dict[str, Any]], col: Column, avro_name: str) -> None:
    name, f = col.name, col.convert
    if f is not None:
        for r in rows:
            v = r.get(name)
            if v is not None:
                r[name] = f(v)
    if avro_name != name:
        for r in rows:
            r[avro_name] = r.pop(name, None)


def encode_parquet(rows: list[dict[str, Any]], compression: str = "snappy") -> bytes:
    cols = infer_columns(rows)
    schema = arrow_schema(cols)
    arrays = [pa.array(column_values(rows, c), type=f.type) for c, f in zip(cols, schema)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=compression)
    return buf.getvalue()


def encode(fmt: str, rows: list[dict[str, Any]], record_name: str, *, avro_codec: str = "null",
           parquet_compression: str = "snappy") -> bytes:
    if fmt == "avro":
        return encode_avro(rows, record_name, avro_codec)
    if fmt == "parquet":
        return encode_parquet(rows, parquet_compression)
    raise ValueError(f"unknown format {fmt!r}")
