"""The columnar Avro encoder (schemas.batch_avro) writes exactly fastavro's bytes, type by type,
and refuses what it cannot hold with an error instead of writing something else."""

from __future__ import annotations

import io
import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy.types as sa

from schemas.batch_avro import BatchEncodeError, BatchEncoder, UnsupportedSchema
from schemas.envelope import envelope_schema, make_event
from schemas.sqltypes import ColumnSpec

COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), False, True),
    ColumnSpec("small", sa.Integer()),
    ColumnSpec("name", sa.String()),
    ColumnSpec("blob", sa.LargeBinary()),
    ColumnSpec("ok", sa.Boolean()),
    ColumnSpec("score", sa.Float()),
    ColumnSpec("money", sa.Numeric(12, 2)),
    ColumnSpec("wide", sa.Numeric(30, 4)),
    ColumnSpec("born", sa.Date()),
    ColumnSpec("seen", sa.DateTime()),
    ColumnSpec("at", sa.Time()),
]


def _fastavro(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _row(rng: random.Random, i: int) -> dict:
    edge = [0, 1, -1, 63, 64, -64, -65, 2**31 - 1, -(2**31), 2**62, -(2**63), 2**63 - 1]
    maybe = lambda v: None if rng.random() < 0.2 else v  # noqa: E731
    cents = rng.choice([0, 1, -1, 127, 128, -128, -129, 32767, -32768, rng.randint(-(10**11), 10**11)])
    return {
        "id": edge[i % len(edge)] if i < len(edge) else rng.randint(-(2**63), 2**63 - 1),
        "small": maybe(rng.randint(-(2**31), 2**31 - 1)),
        "name": maybe(rng.choice(["", "张三", "欧阳娜娜", "a" * 200, "tab\tnew\nline"])),
        "blob": maybe(bytes(rng.randrange(256) for _ in range(rng.randint(0, 5)))),
        "ok": maybe(rng.random() < 0.5),
        "score": maybe(rng.choice([0.0, -0.0, 1.5, -2.25e300, 3.14159])),
        "money": maybe(Decimal(cents).scaleb(-2)),
        "wide": maybe(Decimal(rng.randint(-(10**29), 10**29)).scaleb(-4)),
        "born": maybe(date(1900, 1, 1) + timedelta(days=rng.randint(0, 60000))),
        "seen": maybe(datetime(1960, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 3 * 10**15))),
        "at": maybe(time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999999))),
    }


def _source(position: str) -> dict:
    return {
        "system": "gov",
        "database": None,
        "schema": "public",
        "table": "people",
        "connector": "c",
        "position": position,
        "sequence": 5,
        "snapshot": True,
    }


def test_envelopes_encode_byte_for_byte_like_fastavro():
    schema = envelope_schema("gov", "public", "people", COLUMNS)
    rng = random.Random(7)
    source = _source('{"lsn": 1}')
    events = []
    for i in range(600):
        op = rng.choice("cudr")
        before = _row(rng, i) if op in "ud" else None
        after = _row(rng, i) if op != "d" else None
        tx = {"id": "tx1", "total_order": i, "data_collection_order": 1} if i % 3 == 0 else None
        events.append(make_event(op, before, after, rng.randint(0, 2**41), source, tx))
    encoded = BatchEncoder(schema).encode(events, prefix=b"\x00\x00\x00\x00\x07")
    assert len(encoded) == len(events)
    for event, value in zip(events, encoded):
        assert value == b"\x00\x00\x00\x00\x07" + _fastavro(schema, event)


def test_a_value_the_schema_cannot_hold_is_refused():
    schema = envelope_schema("gov", "public", "people", COLUMNS[:3])
    source = {
        "system": "gov",
        "database": None,
        "schema": "public",
        "table": "people",
        "connector": "c",
        "position": "{}",
        "sequence": 1,
        "snapshot": False,
    }
    good = make_event("c", None, {"id": 1, "small": 2, "name": "x"}, 1, source)
    with pytest.raises(BatchEncodeError, match="'id' is null"):
        BatchEncoder(schema).encode([good, make_event("c", None, {"id": None, "small": 2, "name": "x"}, 1, source)])
    with pytest.raises(BatchEncodeError):
        BatchEncoder(schema).encode([good, make_event("c", None, {"id": 1, "small": 2**40, "name": "x"}, 1, source)])
    with pytest.raises(BatchEncodeError, match="not a symbol"):
        BatchEncoder(schema).encode([{**good, "op": "x"}])


def test_unsupported_constructs_are_named_when_the_encoder_is_built():
    with pytest.raises(UnsupportedSchema, match="'tags'"):
        BatchEncoder(
            {"type": "record", "name": "R", "fields": [{"name": "tags", "type": {"type": "map", "values": "string"}}]}
        )


def test_arrays_encode_like_fastavro():
    """Arrays (one block: count, items, 0; an empty one just 0) of strings, of arrays, of records,
    inside a nullable union, from dicts and from a sliced Arrow batch; the quarantine record is one."""
    from schemas.envelope import QUARANTINE_SCHEMA

    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "maybe", "type": ["null", {"type": "array", "items": "long"}]},
            {"name": "nested", "type": {"type": "array", "items": {"type": "array", "items": "int"}}},
        ],
    }
    rows = [
        {"tags": ["a", "bb"], "maybe": [1, -2, 300_000], "nested": [[1], [], [2, 3]]},
        {"tags": [], "maybe": [], "nested": []},
        {"tags": ["x"], "maybe": None, "nested": [[]]},
    ]
    assert BatchEncoder(schema).encode(rows) == [_fastavro(schema, r) for r in rows]
    empty = [{"tags": [], "maybe": None, "nested": []}] * 3
    assert BatchEncoder(schema).encode(empty) == [_fastavro(schema, r) for r in empty]

    quarantined = [
        {
            "reason": "r" * i,
            "stage": "runner",
            "violations": [
                {"rule_id": f"r{j}", "field": None if j % 2 else "f", "message": "m" * j, "dimension": None}
                for j in range(i % 4)
            ],
            "original_topic": "t" if i % 5 else None,
            "original_partition": i,
            "original_offset": i * 1000,
            "original_key": b"k" if i % 2 else None,
            "original_value": b"v" * i,
            "original_json": None if i % 3 else "{}",
            "ts_ms": 1_796_000_000_000 + i,
        }
        for i in range(50)
    ]
    encoder = BatchEncoder(QUARANTINE_SCHEMA)
    assert encoder.encode(quarantined) == [_fastavro(QUARANTINE_SCHEMA, q) for q in quarantined]
    sliced = pa.array(quarantined, type=encoder.arrow_type).slice(7, 30)
    assert encoder.encode_arrow(sliced) == [_fastavro(QUARANTINE_SCHEMA, q) for q in quarantined[7:37]]


def _dictionary_columns(records: pa.StructArray, names: set[str]) -> pa.StructArray:
    """`records` with the named leaf columns (at any depth) dictionary-encoded."""
    children = []
    for i, field in enumerate(records.type):
        child = records.field(i)
        if pa.types.is_struct(field.type):
            child = _dictionary_columns(child, names)
        elif field.name in names:
            child = pc.dictionary_encode(child)
        children.append(child)
    return pa.StructArray.from_arrays(children, names=[f.name for f in records.type], mask=records.is_null())


def _full_row(i: int) -> dict:
    """A row with no null, its integers and lengths below 64 (one-byte varints)."""
    return {
        "id": i,
        "small": i % 7 - 3,
        "name": f"名字{i}",
        "blob": bytes([i]),
        "ok": i % 2 == 0,
        "score": i / 4,
        "money": Decimal(i).scaleb(-2),
        "wide": Decimal(i).scaleb(-4),
        "born": date(2000, 1, 1) + timedelta(days=i),
        "seen": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        "at": time(0, 0, i),
    }


def test_batches_without_nulls_and_dictionary_columns_encode_like_fastavro():
    """What a snapshot chunk looks like: no null in a column (a union is then its branch byte and
    the value), small numbers only (one-byte varints), and the values every row shares given as
    one-entry dictionaries (connectors.runtime); a dictionary with several entries and nulls too."""
    schema = envelope_schema("gov", "public", "people", COLUMNS)
    encoder = BatchEncoder(schema)
    rng = random.Random(11)
    source = _source("{}")
    small = [make_event("r", None, _full_row(i), 1, source) for i in range(30)]
    mixed = [make_event(rng.choice("cudr"), None, _row(rng, i), rng.randint(0, 2**41), source) for i in range(300)]
    for events in (small, mixed, small[:1]):
        records = pa.array(events, type=encoder.arrow_type)
        as_dictionaries = _dictionary_columns(records, {"op", "system", "table", "connector", "name", "ts_ms"})
        for given in (records, as_dictionaries):
            encoded = encoder.encode_arrow(given, prefix=b"\x00\x00\x00\x00\x07")
            assert encoded == [b"\x00\x00\x00\x00\x07" + _fastavro(schema, e) for e in events]
