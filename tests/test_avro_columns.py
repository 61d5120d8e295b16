"""Avro decoded field by field across a batch (schemas.avro_columns): the same frame polars' reader
gives for the same records, whole or projected (`record.field` too), nulls, unicode, long strings,
negative numbers and decimals, deletes; a batch that does not parse is left to polars' reader,
which names the bad records; a schema it does not take is read by polars as before."""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import fastavro
import polars as pl
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas import avro_columns
from schemas.avro_columns import BatchDecoder, UndecodableBatch, keep_of
from schemas.batch_avro import UnsupportedSchema
from schemas.frames import FrameDecoder, reader_view
from schemas.serde import WireCodec

ROW = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "small", "type": ["null", "int"]},
        {"name": "text", "type": ["null", "string"]},
        {"name": "raw", "type": ["bytes", "null"]},
        {"name": "amount", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}]},
        {"name": "born", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "at_ms", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "score", "type": ["null", "double"]},
        {"name": "ratio", "type": "float"},
        {"name": "ok", "type": ["null", "boolean"]},
    ],
}
SCHEMA = {
    "type": "record",
    "name": "Envelope",
    "namespace": "t.columns",
    "fields": [
        {"name": "before", "type": ["null", ROW]},
        {"name": "after", "type": ["null", "Row"]},
        {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["c", "u", "d", "r"]}},
        {"name": "ts_ms", "type": "long"},
        {
            "name": "source",
            "type": {
                "type": "record",
                "name": "Source",
                "fields": [{"name": "position", "type": "string"}, {"name": "sequence", "type": "long"}],
            },
        },
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c"]}},
        {
            "name": "inner",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Inner",
                    "fields": [{"name": "label", "type": ["null", "string"]}, {"name": "n", "type": "long"}],
                },
            ],
        },
    ],
}
TEXTS = ["", "a", "twelve bytes", "thirteen byte", "张三", "长" * 40, "x" * 300, "ünïcødé and more than 12"]


def _row(rng: random.Random, i: int, nulls: bool) -> dict:
    def maybe(value):
        return None if nulls and rng.random() < 0.3 else value

    return {
        "id": rng.choice([0, 1, -1, 63, 64, -65, 2**31, -(2**62), 2**63 - 1, -(2**63), i]),
        "small": maybe(rng.choice([0, -1, 2**31 - 1, -(2**31), i])),
        "text": maybe(rng.choice(TEXTS)),
        "raw": maybe(bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 12, 13, 40])))),
        "amount": maybe(Decimal(rng.randrange(-(10**18) + 1, 10**18)).scaleb(-4)),
        "born": maybe(date(1970, 1, 1) + timedelta(days=rng.randrange(-30000, 60000))),
        "at_ms": maybe(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC) - timedelta(days=rng.randrange(20000))),
        "at_us": datetime(2026, 1, 2, 3, 4, 5, rng.randrange(10**6), tzinfo=UTC),
        "score": maybe(rng.uniform(-1e300, 1e300)),
        "ratio": 0.5,
        "ok": maybe(rng.random() < 0.5),
    }


def _events(n: int, seed: int, nulls: bool = True, deletes: bool = True) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        op = rng.choice("cud" if deletes else "cu")
        row = _row(rng, i, nulls)
        out.append(
            {
                "before": None if op == "c" else row,
                "after": None if op == "d" else row,
                "op": op,
                "ts_ms": 1_764_000_000_000 + i,
                "source": {"position": rng.choice(TEXTS), "sequence": i},
                "kind": rng.choice("abc"),
                "inner": None if nulls and rng.random() < 0.3 else {"label": rng.choice([None, *TEXTS]), "n": i},
            }
        )
    return out


def _framed(events: list[dict], schema_id: int = 1) -> list[bytes]:
    parsed = fastavro.parse_schema(SCHEMA)
    out = []
    for event in events:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, event)
        out.append(b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue())
    return out


def _polars(values: list[bytes]) -> pl.DataFrame:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(reader_view(SCHEMA)), [])
    header = buf.getvalue()
    bodies = [v[5:] for v in values]
    from schemas.batch_avro import encode_long

    block = b"".join([header, encode_long(len(bodies)), encode_long(sum(map(len, bodies))), *bodies, header[-16:]])
    return pl.read_avro(io.BytesIO(block))


@pytest.mark.parametrize(("nulls", "deletes"), [(True, True), (False, False), (True, False)])
def test_whole_records_equal_polars_reader(nulls, deletes):
    values = _framed(_events(500, seed=7, nulls=nulls, deletes=deletes))
    got = BatchDecoder(reader_view(SCHEMA)).decode(values)
    want = _polars(values)
    assert got.schema == want.schema
    assert got.equals(want)
    assert got.to_dicts() == want.to_dicts()


def test_a_batch_beyond_a_view_offset_is_read_in_halves(monkeypatch):
    values = _framed(_events(200, seed=9))
    monkeypatch.setattr(avro_columns, "_MAX_VIEW_OFFSET", 5000)  # a few records' worth
    assert BatchDecoder(reader_view(SCHEMA)).decode(values).equals(_polars(values))


def test_projection_reads_the_fields_asked_for():
    values = _framed(_events(300, seed=11))
    want = _polars(values)
    got = BatchDecoder(reader_view(SCHEMA), ["after", "op", "source.sequence"]).decode(values)
    assert got.columns == ["after", "op", "source"]
    assert got.get_column("source").struct.fields == ["sequence"]
    assert got.get_column("after").equals(want.get_column("after"))
    assert got.get_column("op").equals(want.get_column("op"))
    assert got.get_column("source").struct.field("sequence").to_list() == list(range(300))
    assert keep_of(["a", "b.c", "b.d", "e.f", "e"]) == {"a": True, "b": {"c": True, "d": True}, "e": True}


def test_frame_decoder_with_columns_matches_its_polars_path():
    """FrameDecoder's projected read (this decoder) and its polars path build the same frame."""
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://columns-{uuid.uuid4().hex}"}))
    sid = codec.register("t-value", SCHEMA)
    values = _framed(_events(400, seed=3), sid)
    columns = ["before", "after", "op", "ts_ms", "source.sequence"]
    columnar = FrameDecoder(codec, columns)
    got = columnar.decode(values).runs[0].frame
    assert columnar._columnar[sid] is not None
    plain = FrameDecoder(codec, columns)
    plain._container(sid)
    plain._columnar[sid] = None  # polars' reader, then the same projection
    want = plain.decode(values).runs[0].frame
    assert got.schema == want.schema and got.equals(want)


def test_a_batch_that_does_not_parse_falls_back_and_names_the_bad_records():
    """A truncated record, bytes after one, a bad union branch, an overlong varint: the batch is
    refused, and FrameDecoder names the record and decodes the rest, with columns (this decoder)
    and without (polars' reader, which panics on the truncated one). A string that is not UTF-8
    fails the batch too (as polars' reader does)."""
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://columns-{uuid.uuid4().hex}"}))
    sid = codec.register("t-value", SCHEMA)
    events = _events(50, seed=5, deletes=False)
    events[7]["source"]["position"] = "QQ"
    values = _framed(events, sid)
    not_utf8 = values[7].replace(b"QQ", b"\xff\xfe")
    decoder = BatchDecoder(reader_view(SCHEMA))
    cut, longer, branch = values[7][:-3], values[7] + b"\x00", values[7][:5] + b"\xff" * 12
    with pytest.raises(UndecodableBatch):
        decoder.decode(values[:7] + [not_utf8] + values[8:])
    for bad in (cut, longer, branch, values[7][:6] + b"\x7f" * 40):
        with pytest.raises(UndecodableBatch):
            decoder.decode(values[:7] + [bad] + values[8:])
        for columns in (["after", "source.sequence"], None):
            batch = FrameDecoder(codec, columns).decode(values[:7] + [bad] + values[8:])
            assert list(batch.errors) == [7]
            run = batch.runs[0]
            assert run.positions == [i for i in range(50) if i != 7]
            assert run.frame.get_column("source").struct.field("sequence").to_list() == run.positions


def test_schemas_it_does_not_take_are_read_by_polars():
    with pytest.raises(UnsupportedSchema):
        BatchDecoder(
            {"type": "record", "name": "A", "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}]}
        )
    schema = {
        "type": "record",
        "name": "A",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}, {"name": "n", "type": "long"}],
    }
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://columns-{uuid.uuid4().hex}"}))
    sid = codec.register("a-value", schema)
    values = [codec.encode(sid, {"xs": [1, 2, i], "n": i}) for i in range(5)]
    decoder = FrameDecoder(codec, ["n"])
    batch = decoder.decode(values)
    assert decoder._columnar[sid] is None
    assert batch.runs[0].frame.get_column("n").to_list() == list(range(5))


def test_a_pyarrow_without_view_arrays_from_buffers_reads_with_polars(monkeypatch):
    """The PyFlink venv's pyarrow (16, pinned by apache-flink) builds no string view array from
    buffers: there the decoder refuses string fields when built, and FrameDecoder reads the same
    frame through polars."""
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://columns-{uuid.uuid4().hex}"}))
    sid = codec.register("t-value", SCHEMA)
    values = _framed(_events(300, seed=13), sid)
    columns = ["after", "op", "source.sequence"]
    want = FrameDecoder(codec, columns).decode(values).runs[0].frame
    monkeypatch.setattr(avro_columns, "_VIEWS_FROM_BUFFERS", False)
    with pytest.raises(UnsupportedSchema, match="view array"):
        BatchDecoder(reader_view(SCHEMA))
    decoder = FrameDecoder(codec, columns)
    got = decoder.decode(values).runs[0].frame
    assert decoder._columnar[sid] is None
    assert got.schema == want.schema and got.equals(want)
