"""The change-event envelope: SQL type mapping, Avro logical types, a round trip through the broker."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy.types as sa
from confluent_kafka import Consumer

from deploy.kafka import AckedProducer, ensure_topics
from schemas.envelope import envelope_schema, key_schema, make_event
from schemas.naming import clean_topic, key_subject, quarantine_topic, topic_name, value_subject
from schemas.serde import UndecodableRecord, WireCodec
from schemas.sqltypes import ColumnSpec, UnmappedTypeError

COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), nullable=False, primary_key=True),
    ColumnSpec("amount", sa.Numeric(12, 2)),
    ColumnSpec("born", sa.Date()),
    ColumnSpec("seen_at", sa.DateTime()),
    ColumnSpec("token", sa.Uuid()),
    ColumnSpec("name", sa.String(40)),
    ColumnSpec("active", sa.Boolean()),
]


def test_topic_names_follow_the_convention():
    t = topic_name("huiliu", "civil", "public", "population")
    assert t == "huiliu.civil.public.population"
    assert quarantine_topic(t) == "huiliu.civil.public.population.quarantine"
    assert clean_topic(t) == "huiliu.civil.public.population.clean"
    # a part Kafka does not allow is made valid and kept apart from the valid name it resembles (issue 14)
    assert topic_name("huiliu", "hr.sys", None, "a b") == "huiliu.hr_sys_2e1691.default.a_b_7dbde9"
    assert topic_name("huiliu", "hr_sys", None, "a_b") == "huiliu.hr_sys.default.a_b"


def test_sql_types_map_to_avro_logical_types():
    schema = envelope_schema("pg", "public", "payments", COLUMNS)
    row = schema["fields"][0]["type"][1]
    types = {f["name"]: f["type"] for f in row["fields"]}
    assert types["id"] == "long"
    assert types["amount"][1] == {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
    assert types["born"][1] == {"type": "int", "logicalType": "date"}
    assert types["seen_at"][1] == {"type": "long", "logicalType": "timestamp-micros"}
    assert types["token"][1] == {"type": "string", "logicalType": "uuid"}
    assert [f["name"] for f in key_schema("pg", "public", "payments", COLUMNS)["fields"]] == ["id"]


def test_unmapped_type_names_table_and_column_unless_passed_as_string():
    from sqlalchemy.dialects.postgresql import INTERVAL

    cols = [ColumnSpec("id", sa.Integer(), False, True), ColumnSpec("span", INTERVAL())]
    with pytest.raises(UnmappedTypeError, match=r"table 'jobs' column 'span'"):
        envelope_schema("pg", "public", "jobs", cols)
    passed = envelope_schema("pg", "public", "jobs", cols, unknown_types="string")
    assert passed["fields"][0]["type"][1]["fields"][1]["type"] == ["null", "string"]


def test_envelope_round_trip_through_the_broker(stack_settings):
    codec = WireCodec(stack_settings.schema_registry_url)
    topic = topic_name("huiliu", "finance", "public", f"payments_{uuid.uuid4().hex[:6]}")
    value_id = codec.register(value_subject(topic), envelope_schema("finance", "public", "payments", COLUMNS))
    key_id = codec.register(key_subject(topic), key_schema("finance", "public", "payments", COLUMNS))
    assert codec.register(value_subject(topic), envelope_schema("finance", "public", "payments", COLUMNS)) == value_id
    row = {
        "id": 7,
        "amount": Decimal("1234.50"),
        "born": date(1990, 3, 7),
        "seen_at": datetime(2026, 11, 25, 8, 30, 15, 123456, tzinfo=UTC),
        "token": str(uuid.uuid4()),
        "name": "张三",
        "active": True,
    }
    source = {
        "system": "finance",
        "database": "fin",
        "schema": "public",
        "table": "payments",
        "connector": "t",
        "position": '{"lsn": 42}',
        "sequence": 42,
        "snapshot": False,
    }
    event = make_event("c", None, row, 1764059415000, source)

    ensure_topics(stack_settings.kafka_bootstrap, [topic])
    producer = AckedProducer(stack_settings.kafka_bootstrap)
    producer.produce(topic, codec.encode(value_id, event), codec.encode(key_id, {"id": 7}))
    producer.flush_acked()

    consumer = Consumer(
        {
            "bootstrap.servers": stack_settings.kafka_bootstrap,
            "group.id": f"rt-{topic}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    try:
        msg = None
        for _ in range(60):
            msg = consumer.poll(1)
            if msg is not None and not msg.error():
                break
        assert msg is not None and not msg.error()
        assert msg.value()[0] == 0 and int.from_bytes(msg.value()[1:5], "big") == value_id  # Confluent framing
        schema_id, decoded = codec.decode(msg.value())
        assert schema_id == value_id
        # uuid logical type comes back as uuid.UUID
        assert decoded["after"] == {**row, "token": uuid.UUID(row["token"])}
        assert decoded["op"] == "c" and decoded["before"] is None
        assert decoded["source"]["position"] == '{"lsn": 42}'
        assert codec.decode(msg.key())[1] == {"id": 7}
    finally:
        consumer.close()


def test_undecodable_bytes_are_named(stack_settings):
    codec = WireCodec(stack_settings.schema_registry_url)
    with pytest.raises(UndecodableRecord, match="magic byte"):
        codec.decode(b"\x07\x00\x00\x00\x01abc")
    with pytest.raises(UndecodableRecord, match="unknown schema id 987654"):
        codec.decode(b"\x00" + (987654).to_bytes(4, "big") + b"\x02")
    with pytest.raises(UndecodableRecord, match="shorter"):
        codec.decode(b"\x00")
