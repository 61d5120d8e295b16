"""The lean runner (confluent-kafka) over the real broker: clean/quarantine split with reasons,
undecodable bytes quarantined without stopping, and a restart in the middle losing nothing."""

from __future__ import annotations

import threading
import time
import uuid

import sqlalchemy.types as sa
from confluent_kafka import Producer

from connectors.base import CapturedTable
from connectors.runtime import SourceRuntime
from schemas.naming import clean_topic, quarantine_topic
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.lean_runner import LeanRunner
from streams.processor import BatchProcessor
from tests.sources import ListSourceTask, consume, upsert

RULES = [
    {
        "id": "name_required",
        "kind": "required",
        "fields": ["name"],
        "dimension": "completeness",
        "severity": "reject",
        "message": "name is required",
    },
    {
        "id": "phone_format",
        "kind": "regex",
        "fields": ["phone"],
        "pattern": r"^1[3-9]\d{9}$",
        "dimension": "validity",
        "severity": "reject",
        "message": "bad phone",
    },
]
TRANSFORMS = [{"kind": "trim", "fields": ["name", "phone"]}]


def _publish(settings, n: int) -> str:
    table = CapturedTable(
        "hr",
        f"staff_{uuid.uuid4().hex[:6]}",
        (
            ColumnSpec("id", sa.BigInteger(), False, True),
            ColumnSpec("name", sa.String(20)),
            ColumnSpec("phone", sa.String(20)),
        ),
        "hr",
        "public",
    )
    events = []
    for i in range(1, n + 1):
        name = None if i % 10 == 0 else f"  员工{i} "
        phone = "12345" if i % 10 == 5 else f" 138{i:08d}"
        events.append(upsert(table, {"id": i, "name": name, "phone": phone}, i))
    runtime = SourceRuntime(
        ListSourceTask(f"src-{table.table}", events, 500),
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
    )
    runtime.drain()
    return runtime.topic_of(table)


def _runner(settings, topic: str) -> LeanRunner:
    processor = BatchProcessor(WireCodec(settings.schema_registry_url), TRANSFORMS, RULES, stage="runner:test")
    return LeanRunner(
        settings.kafka_bootstrap,
        f"lean-{topic}",
        [topic],
        processor,
        batch_size=200,
        batch_seconds=0.3,
        consumer_extra={"session.timeout.ms": 6000},
    )


def test_lean_runner_splits_cleans_and_survives_a_restart(stack_settings):
    n = 2000
    topic = _publish(stack_settings, n)
    # A record that breaks the runner itself: not Confluent-framed Avro.
    raw = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    raw.produce(topic, value=b"not avro at all", key=b"k")
    raw.flush(10)

    first = _runner(stack_settings, topic)
    first.consumer.subscribe([topic])
    deadline = time.time() + 60
    while first.processed < 600 and time.time() < deadline:
        first.run_once()
    first.consumer.close()  # stop in the middle; the next runner resumes from committed offsets
    assert 0 < first.processed < n + 1

    second = _runner(stack_settings, topic)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: second.run(stop), daemon=True)
    thread.start()
    valid_ids = {i for i in range(1, n + 1) if i % 10 not in (0, 5)}
    clean = consume(stack_settings, clean_topic(topic), len(valid_ids))
    quarantined = consume(stack_settings, quarantine_topic(topic), n - len(valid_ids) + 1)
    stop.set()
    thread.join(30)

    assert {e["after"]["id"] for e in clean} == valid_ids  # nothing lost across the restart
    sample = next(e for e in clean if e["after"]["id"] == 7)["after"]
    assert sample == {"id": 7, "name": "员工7", "phone": "13800000007"}  # trimmed
    reasons = {q["violations"][0]["rule_id"] for q in quarantined if q["violations"]}
    assert reasons == {"name_required", "phone_format"}
    broken = [q for q in quarantined if q["reason"].startswith("undecodable")]
    assert len(broken) == 1 and broken[0]["original_value"] == b"not avro at all"
    assert "magic byte" in broken[0]["reason"]


def test_a_row_dropping_transform_is_refused_when_the_runner_is_built(stack_settings):
    import pytest

    from streams.transforms import TransformConfigError

    with pytest.raises(TransformConfigError, match="'filter'.*drops rows"):
        BatchProcessor(
            WireCodec(stack_settings.schema_registry_url), [{"kind": "filter", "expr": "phone != ''"}], RULES
        )


def test_the_running_loop_commits_only_what_the_broker_acknowledged(stack_settings):
    """run() sends a batch while the next is processed: when it stops, each input has exactly one
    output (nothing lost, nothing twice) and the group's committed offsets are the topic's end."""
    from confluent_kafka import Consumer, TopicPartition

    from tests.sources import topic_ends

    n = 3000
    topic = _publish(stack_settings, n)
    runner = _runner(stack_settings, topic)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run(stop), daemon=True)
    thread.start()
    deadline = time.time() + 90
    while runner.processed < n and time.time() < deadline:
        time.sleep(0.2)
    stop.set()
    thread.join(30)
    assert runner.processed == n and not thread.is_alive()

    valid = [i for i in range(1, n + 1) if i % 10 not in (0, 5)]
    clean = consume(stack_settings, clean_topic(topic), len(valid))
    quarantined = consume(stack_settings, quarantine_topic(topic), n - len(valid))
    assert sorted(e["after"]["id"] for e in clean) == valid
    codec = WireCodec(stack_settings.schema_registry_url)
    assert sorted(codec.decode(q["original_value"])[1]["after"]["id"] for q in quarantined) == sorted(
        set(range(1, n + 1)) - set(valid)
    )
    for out, count in ((clean_topic(topic), len(valid)), (quarantine_topic(topic), n - len(valid))):
        assert sum(topic_ends(stack_settings.kafka_bootstrap, out).values()) == count  # none twice
    ends = topic_ends(stack_settings.kafka_bootstrap, topic)
    probe = Consumer({"bootstrap.servers": stack_settings.kafka_bootstrap, "group.id": f"lean-{topic}"})
    try:
        committed = probe.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    finally:
        probe.close()
    assert {tp.partition: tp.offset for tp in committed} == ends
