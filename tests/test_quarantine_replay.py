"""Quarantine repair in bulk (issue 16): `corrected_many` (a batch decoded by polars, encoded in
columns) and `corrected_columns` (corrected in Arrow, no dicts) give byte for byte what `corrected`
gives record by record, in order, across writer schemas, and refuse what `corrected` refuses (a
delete, an unknown field, a value its type cannot hold, a record no rule quarantined);
`scan_rule` keeps what `scan_quarantine` keeps for a rule. The schema registry is the session's."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
import sqlalchemy.types as sa

from schemas.envelope import envelope_schema, make_event
from schemas.naming import value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.quarantine_replay import ReplayRefused, corrected, corrected_columns, corrected_many
from tests.sources import read_between, topic_ends

RUN = uuid.uuid4().hex[:6]
TOPIC = f"huiliu.hr.public.replay_{RUN}"
COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), False, True),
    ColumnSpec("name", sa.String(40)),
    ColumnSpec("phone", sa.String(20)),
    ColumnSpec("born", sa.Date()),
    ColumnSpec("updated_at", sa.DateTime()),
]


def _source(seq: int) -> dict:
    return {
        "system": "hr",
        "database": None,
        "schema": "public",
        "table": f"replay_{RUN}",
        "connector": "t",
        "position": "{}",
        "sequence": seq,
        "snapshot": False,
    }


def _record(codec: WireCodec, schema_id: int, i: int, op: str = "c") -> dict:
    row = {
        "id": i,
        "name": None if i % 3 == 0 else f"员工{i}",
        "phone": "12345",
        "born": dt.date(1980, 1, 1) + dt.timedelta(days=i),
        "updated_at": dt.datetime(2026, 12, 1, 8, 0, i % 60),
    }
    after = None if op == "d" else row
    value = codec.encode(
        schema_id, make_event(op, row if op == "d" else None, after, 1_700_000_000_000 + i, _source(i))
    )
    return {
        "violations": [{"rule_id": "phone", "field": "phone"}],
        "original_topic": TOPIC,
        "original_key": f"k{i}".encode(),
        "original_value": value,
    }


@pytest.fixture(scope="module")
def codec(stack_settings):
    return WireCodec(stack_settings.schema_registry_url)


def test_bulk_correction_equals_one_by_one(codec):
    first = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", COLUMNS))
    wider = COLUMNS + [ColumnSpec("email", sa.String(80))]
    second = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", wider))
    records = [_record(codec, first if i % 2 else second, i) for i in range(1, 41)]
    fix = {"phone": "13800138000", "name": "张三"}
    bulk = corrected_many(codec, records, fix)
    one_by_one = [corrected(codec, r, fix) for r in records]
    assert [(e.topic, e.key, e.value) for e in bulk] == [(e.topic, e.key, e.value) for e in one_by_one]
    schema_id, event = codec.decode(bulk[0].value)
    assert (schema_id, event["after"]["phone"], event["after"]["name"]) == (first, "13800138000", "张三")
    assert event["source"]["sequence"] == 2  # above the quarantined version
    assert bulk[1].key == b"k2" and codec.decode(bulk[1].value)[0] == second


def _columns(records: list[dict]) -> tuple[list, list, list]:
    return (
        [r["original_topic"] for r in records],
        [r.get("original_key") for r in records],
        [r["original_value"] for r in records],
    )


WIDE = COLUMNS + [
    ColumnSpec("salary", sa.Numeric(12, 2)),
    ColumnSpec("active", sa.Boolean()),
    ColumnSpec("score", sa.Float()),
    ColumnSpec("level", sa.Integer()),
]


def _wide_record(codec: WireCodec, schema_id: int, i: int) -> dict:
    rec = _record(codec, schema_id, i)
    _, event = codec.decode(rec["original_value"])
    event["after"].update(
        salary=None if i % 4 == 0 else decimal.Decimal(f"{i * 1000}.{i % 100:02d}"),
        active=i % 2 == 0,
        score=None if i % 5 == 0 else i / 3,
        level=i * 7,
    )
    return {**rec, "original_value": codec.encode(schema_id, event)}


def test_columnar_correction_equals_one_by_one(codec, monkeypatch):
    """corrected_columns, across three writer schemas interleaved (decimal, boolean, float, int,
    date, timestamp columns, nulls), and fixes of several kinds (a string, a null, a number), all
    in Arrow: the record path is never taken."""
    import streams.quarantine_replay as replay_module

    def no_record_path(*args):
        raise AssertionError("the record path was taken")

    monkeypatch.setattr(replay_module, "_corrected_rows", no_record_path)
    first = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", COLUMNS))
    wider = COLUMNS + [ColumnSpec("email", sa.String(80))]
    second = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", wider))
    wide = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", WIDE))
    records = [
        _wide_record(codec, wide, i) if i % 3 == 0 else _record(codec, first if i % 2 else second, i)
        for i in range(1, 61)
    ]
    for fix in ({"phone": "13800138000", "name": "张三"}, {"phone": None}, {"phone": "1", "born": None}):
        batch = corrected_columns(codec, *_columns(records), fix)
        one_by_one = [corrected(codec, r, fix) for r in records]
        assert (batch.topics, batch.keys) == ([e.topic for e in one_by_one], [e.key for e in one_by_one])
        assert batch.values == [e.value for e in one_by_one], fix
    only_wide = [r for i, r in enumerate(records, 1) if i % 3 == 0]
    fix = {"salary": decimal.Decimal("8888.50"), "active": False, "score": 2.5, "level": 3}
    batch = corrected_columns(codec, *_columns(only_wide), fix)
    assert batch.values == [corrected(codec, r, fix).value for r in only_wide]
    schema_id, event = codec.decode(batch.values[0])
    assert schema_id == wide and event["after"]["salary"] == decimal.Decimal("8888.50")
    assert event["source"]["sequence"] == 4 and event["after"]["level"] == 3  # record 3: above its version


def test_bulk_correction_refuses_what_one_by_one_refuses(codec):
    schema_id = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", COLUMNS))
    good = [_record(codec, schema_id, i) for i in range(1, 4)]
    cases = [
        (good + [_record(codec, schema_id, 9, "d")], {"phone": "13800138000"}, "records"),
        (good, {"mobile": "13800138000"}, "set.mobile"),
        (good, {"phone": 12}, "set.phone"),
        (good, {"id": None}, "set.id"),  # the key column is not nullable
        (good, {"born": "yesterday"}, "set.born"),
    ]
    for records, fix, field in cases:
        for bulk in (corrected_many, lambda c, r, f: corrected_columns(c, *_columns(r), f)):
            with pytest.raises(ReplayRefused) as refused:
                bulk(codec, records, fix)
            assert refused.value.field == field, (fix, refused.value)
    with pytest.raises(ReplayRefused) as refused:
        corrected_many(codec, good + [{**good[0], "violations": []}], {"phone": "13800138000"})
    assert refused.value.field == "records"
    topics, keys, values = _columns(good)
    with pytest.raises(ReplayRefused) as refused:
        corrected_columns(codec, topics, keys, values[:2] + [None], {"phone": "13800138000"})
    assert refused.value.field == "records"


def test_the_scan_decodes_a_batch_as_one_by_one(codec, stack_settings):
    """scan_quarantine decodes what it consumed together; each record equals its own decode, and an
    undecodable message is skipped, not fatal."""
    from deploy.kafka import AckedProducer, ensure_topics
    from schemas.envelope import QUARANTINE_SCHEMA
    from schemas.naming import quarantine_topic
    from streams.quarantine_read import scan_quarantine, scan_rule

    topic = quarantine_topic(TOPIC)
    ensure_topics(stack_settings.kafka_bootstrap, [topic], 2)
    qid = codec.register(value_subject(topic), QUARANTINE_SCHEMA)
    schema_id = codec.register(value_subject(TOPIC), envelope_schema("hr", "public", f"replay_{RUN}", COLUMNS))
    values = []
    for i in range(1, 31):
        rec = _record(codec, schema_id, i)
        violations = [{"rule_id": "phone", "field": "phone", "message": "bad phone", "dimension": "validity"}]
        if i % 4 == 0:
            violations.append({"rule_id": "name", "field": None, "message": "名字必填", "dimension": None})
        quarantined = {
            "reason": "phone: bad phone",
            "stage": "runner:t",
            "violations": violations,
            "original_topic": TOPIC,
            "original_partition": i % 2,
            "original_offset": i,
            "original_key": rec["original_key"],
            "original_value": rec["original_value"],
            "original_json": None if i % 5 == 0 else '{"after": {"phone": "12345"}}',
            "ts_ms": 1_700_000_000_000 + i,
        }
        values.append(codec.encode(qid, quarantined))
    producer = AckedProducer(stack_settings.kafka_bootstrap)
    for i, value in enumerate(values):
        producer.produce(topic, value, f"k{i}".encode())
        if i == 10:
            producer.produce(topic, b"not avro", b"x")
    producer.flush_acked()
    kept, scanned, partial = scan_quarantine(
        stack_settings.kafka_bootstrap, stack_settings.schema_registry_url, topic, lambda m, rec: True
    )
    assert (len(kept), scanned, partial) == (30, 31, False)
    by_value = {m.value(): rec for m, rec in kept}
    assert [by_value[v] for v in values] == [codec.decode(v)[1] for v in values]
    for rule in ("phone", "name", "nothing"):
        scan = scan_rule(stack_settings.kafka_bootstrap, stack_settings.schema_registry_url, topic, rule)
        expected = [
            ((m.partition(), m.offset()), rec["original_topic"], rec["original_key"], rec["original_value"])
            for m, rec in kept
            if any(v["rule_id"] == rule for v in rec["violations"])
        ]
        assert len(expected) == {"phone": 30, "name": 7, "nothing": 0}[rule]
        assert sorted(zip(scan.positions, scan.topics, scan.keys, scan.values)) == sorted(expected)
        assert (scan.scanned, scan.partial, sum(scan.next_start.values())) == (31, False, 31)

    # the bulk job: every record of the "name" rule, corrected and replayed to its raw topic, read 3
    # at a time (11 chunks); a fix the rows cannot take is refused before anything is replayed
    from streams.quarantine_replay import replay_rule

    ensure_topics(stack_settings.kafka_bootstrap, [TOPIC], 2)
    args = (stack_settings.kafka_bootstrap, stack_settings.schema_registry_url, topic, "name")
    before = topic_ends(stack_settings.kafka_bootstrap, TOPIC)
    with pytest.raises(ReplayRefused) as refused:
        replay_rule(*args, {"mobile": "13800138000"}, chunk=3)
    assert refused.value.field == "set.mobile"
    assert topic_ends(stack_settings.kafka_bootstrap, TOPIC) == before
    fix = {"phone": "13800138000"}
    done = replay_rule(*args, fix, chunk=3, codec=codec)
    assert (done.replayed, done.scanned, sum(done.next_start.values())) == (7, 31, 31)
    replayed = read_between(stack_settings.kafka_bootstrap, TOPIC, before)
    expected = [corrected(codec, rec, fix) for _, rec in kept if any(v["rule_id"] == "name" for v in rec["violations"])]
    assert sorted(replayed) == sorted((e.key, e.value) for e in expected)
