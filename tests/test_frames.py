"""Batch decoding into polars frames (schemas.frames) and the processor built on it: values equal
record-by-record fastavro decoding, bad records are named and isolated, input order is kept."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy.types as sa
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.envelope import envelope_schema, make_event
from schemas.frames import FrameDecoder
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.processor import BatchProcessor, RawMessage

COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), False, True),
    ColumnSpec("name", sa.String()),
    ColumnSpec("amount", sa.Numeric(12, 2)),
    ColumnSpec("born", sa.Date()),
    ColumnSpec("seen", sa.DateTime()),
    ColumnSpec("score", sa.Float()),
    ColumnSpec("ok", sa.Boolean()),
]
SOURCE = {
    "system": "t",
    "database": "d",
    "schema": "public",
    "table": "people",
    "connector": "c",
    "position": "{}",
    "sequence": 1,
    "snapshot": False,
}


def _codec() -> WireCodec:
    return WireCodec(SchemaRegistryClient.new_client({"url": f"mock://frames-{uuid.uuid4().hex}"}))


def _row(i: int, name: str | None = None, score: float = 1.5) -> dict:
    return {
        "id": i,
        "name": name if name is not None else f"n{i}",
        "amount": Decimal("12.34"),
        "born": date(1990, 5, 17),
        "seen": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "score": score,
        "ok": i % 2 == 0,
    }


def test_frame_values_equal_record_by_record_decoding():
    codec = _codec()
    sid = codec.register("people-value", envelope_schema("t", "public", "people", COLUMNS))
    events = [
        make_event("c", None, _row(1), 10, SOURCE),
        make_event("u", _row(1), _row(1, "x"), 11, SOURCE),
        make_event("d", _row(1, "x"), None, 12, SOURCE),
    ]
    values = [codec.encode(sid, e) for e in events]
    batch = FrameDecoder(codec).decode(values)
    assert not batch.errors and len(batch.runs) == 1 and batch.runs[0].positions == [0, 1, 2]
    assert batch.runs[0].frame.to_dicts() == [codec.decode(v)[1] for v in values]


def test_bad_records_are_named_and_the_rest_decoded_in_order():
    codec = _codec()
    v1 = codec.register("people-value", envelope_schema("t", "public", "people", COLUMNS))
    v2 = codec.register(
        "people-value", envelope_schema("t", "public", "people", COLUMNS + [ColumnSpec("note", sa.String())])
    )
    good = codec.encode(v1, make_event("c", None, _row(1), 10, SOURCE))
    newer = codec.encode(v2, make_event("c", None, {**_row(2), "note": "hi"}, 10, SOURCE))
    values = [
        good,
        b"\x00\x00\x0f\x42\x3f" + good[5:],
        good[:5] + b"\xff\xff\xff",
        good + b"\x01\x02",
        newer,
        None,
        good,
    ]
    batch = FrameDecoder(codec).decode(values)
    assert set(batch.errors) == {1, 2, 3, 5}
    assert "unknown schema id 999999" in batch.errors[1]
    assert "does not match schema id" in batch.errors[2]
    assert "bytes after the record" in batch.errors[3]
    assert "5-byte Confluent header" in batch.errors[5]
    runs = {run.schema_id: run for run in batch.runs}
    assert runs[v1].positions == [0, 6] and runs[v2].positions == [4]
    assert runs[v2].frame.get_column("after").struct.field("note").to_list() == ["hi"]


def test_transformed_rows_encoded_in_columns_are_the_record_paths_bytes():
    """Rows a transform changed are encoded from Arrow in one pass (decimal, date, timestamp, float,
    boolean columns); byte for byte what encoding each event on its own gives, in input order."""
    codec = _codec()
    sid = codec.register("people-value", envelope_schema("t", "public", "people", COLUMNS))
    processor = BatchProcessor(codec, [{"kind": "trim", "fields": ["name"]}], [])
    events = [
        make_event("c", None, _row(i, f"  n{i} " if i % 3 else f"n{i}", score=i / 7), 10, SOURCE) for i in range(60)
    ]
    messages = [RawMessage("t.people", 0, i, str(i).encode(), codec.encode(sid, e)) for i, e in enumerate(events)]
    one_by_one, encode = [], codec.encode
    codec.encode = lambda *a: one_by_one.append(a) or encode(*a)  # counts the record path's encodes
    result = processor.process(messages)
    codec.encode = encode
    assert len(one_by_one) == 1  # the reference the columns are checked against, not one per row
    expected = [codec.encode(sid, {**e, "after": {**e["after"], "name": f"n{i}"}}) for i, e in enumerate(events)]
    assert result.values == expected and result.valid == 60
    assert all(result.values[i] is messages[i].value for i in range(0, 60, 3))  # unchanged: the input's bytes


def test_processor_forwards_unchanged_bytes_reencodes_changed_rows_and_keeps_order():
    codec = _codec()
    sid = codec.register("people-value", envelope_schema("t", "public", "people", COLUMNS))
    processor = BatchProcessor(
        codec,
        [{"kind": "trim", "fields": ["name"]}],
        [
            {
                "id": "name_required",
                "kind": "required",
                "fields": ["name"],
                "dimension": "completeness",
                "severity": "reject",
                "message": "name is required",
            }
        ],
    )
    events = [
        make_event("c", None, _row(1), 10, SOURCE),  # unchanged
        make_event("c", None, _row(2, "  padded "), 10, SOURCE),  # trimmed
        make_event("c", None, _row(3, "   "), 10, SOURCE),  # blank after trim: rejected
        make_event("d", _row(4), None, 10, SOURCE),  # delete: passes through
        make_event("c", None, _row(5, score=-0.0), 10, SOURCE),
    ]  # -0.0 stays -0.0
    messages = [RawMessage("t.people", 0, i, str(i).encode(), codec.encode(sid, e)) for i, e in enumerate(events)]
    result = processor.process(messages + [RawMessage("t.people", 0, 9, b"9", b"junk")])
    assert (result.valid, result.quarantined) == (4, 2)
    clean = [o for o in result.outputs if not o.topic.endswith(".quarantine")]
    assert [o.key for o in clean] == [b"0", b"1", b"3", b"4"]
    assert clean[0].value is messages[0].value and clean[2].value is messages[3].value
    assert codec.decode(clean[1].value)[1]["after"]["name"] == "padded"
    assert str(codec.decode(clean[3].value)[1]["after"]["score"]) == "-0.0"
    quarantined = [codec.decode(o.value)[1] for o in result.outputs if o.topic.endswith(".quarantine")]
    assert [q["violations"][0]["rule_id"] if q["violations"] else q["reason"][:11] for q in quarantined] == [
        "name_required",
        "undecodable",
    ]
