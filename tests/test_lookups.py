"""Reference tables fed from a compacted topic (streams/lookups.py) over the real broker:
the initial bounded load, values added later picked up, a tombstone removing one, and the
BatchProcessor wiring (reference rule and lookup transform share the table)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import sqlalchemy.types as sa
from confluent_kafka import Producer

from connectors.base import CapturedTable
from deploy.kafka import ensure_topics
from schemas.envelope import envelope_schema
from schemas.naming import value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.lookups import CompactedTopicLookup
from streams.processor import BatchProcessor, RawMessage
from tests.sources import upsert

RULES = [{"id": "org_known", "kind": "reference", "fields": ["org"], "table": "orgs"}]
TRANSFORMS = [{"kind": "lookup", "key": "org", "table": "orgs", "fields": {"org_name": "name"}}]


def _topic(settings) -> str:
    topic = f"ref_orgs_{uuid.uuid4().hex[:6]}"
    ensure_topics(settings.kafka_bootstrap, [topic], config={"cleanup.policy": "compact"})
    return topic


def _send(settings, topic: str, records: list[tuple[str, dict | None]]) -> None:
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 50})
    for key, value in records:
        p.produce(topic, key=key.encode(), value=None if value is None else json.dumps(value).encode())
    assert p.flush(15) == 0


def _eventually(check, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_initial_load_reads_to_the_end_then_follows(stack_settings):
    topic = _topic(stack_settings)
    # Several records per produced batch: tansu's high watermark would stop short of these.
    records = [(f"A{i:02d}", {"name": f"org {i}"}) for i in range(30)] + [("A00", {"name": "renamed"})]
    _send(stack_settings, topic, records)
    feed = CompactedTopicLookup(stack_settings.kafka_bootstrap, topic, settle_seconds=1.5).start()
    try:
        assert len(feed.table) == 30 and feed.table.get("A00") == {"name": "renamed"}
        _send(stack_settings, topic, [("B01", {"name": "late"}), ("A05", None)])
        _eventually(lambda: "B01" in feed.table and "A05" not in feed.table)
        assert len(feed.table) == 30
    finally:
        feed.stop()


def test_empty_topic_loads_without_waiting_for_the_timeout(stack_settings):
    topic = _topic(stack_settings)
    t0 = time.time()
    feed = CompactedTopicLookup(stack_settings.kafka_bootstrap, topic, settle_seconds=1.0, load_timeout=60).start()
    try:
        assert len(feed.table) == 0 and time.time() - t0 < 45
        _send(stack_settings, topic, [("X", {"name": "x"})])
        _eventually(lambda: "X" in feed.table)
    finally:
        feed.stop()


@pytest.fixture
def people(stack_settings):
    codec = WireCodec(stack_settings.schema_registry_url)
    table = CapturedTable(
        "hr",
        f"staff_{uuid.uuid4().hex[:6]}",
        (
            ColumnSpec("id", sa.BigInteger(), False, True),
            ColumnSpec("org", sa.String(10)),
            ColumnSpec("org_name", sa.String(40)),
        ),
        "hr",
        "public",
    )
    topic = f"huiliu.hr.public.{table.table}"
    sid = codec.register(value_subject(topic), envelope_schema("hr", "public", table.table, list(table.columns)))
    offsets = iter(range(10_000))

    def batch(orgs: list[str]) -> list[RawMessage]:
        out = []
        for i, org in enumerate(orgs):
            ev = upsert(table, {"id": i, "org": org, "org_name": None}, i)
            envelope = {
                "before": None,
                "after": ev.after,
                "op": ev.op,
                "ts_ms": ev.ts_ms,
                "transaction": None,
                "source": {
                    "system": "hr",
                    "database": "hr",
                    "schema": "public",
                    "table": table.table,
                    "connector": "test",
                    "position": "{}",
                    "sequence": i,
                    "snapshot": False,
                },
            }
            out.append(RawMessage(topic, 0, next(offsets), str(i).encode(), codec.encode(sid, envelope)))
        return out

    return codec, batch


def test_reference_rule_and_enrich_follow_the_compacted_topic(stack_settings, people):
    codec, batch = people
    topic = _topic(stack_settings)
    _send(stack_settings, topic, [("ORG1", {"name": "Jinan Bureau"}), ("ORG2", {"name": "Qingdao Bureau"})])
    processor = BatchProcessor(
        codec, TRANSFORMS, RULES, stage="runner:test", lookups={"orgs": topic}, bootstrap=stack_settings.kafka_bootstrap
    )
    try:
        # The same table object behind the rule and the transform.
        assert processor.rules.lookup("orgs") is processor.lookups["orgs"] is processor.transforms.steps[0].table
        r = processor.process(batch(["ORG1", "ORG2", "ORG3"]))
        assert (r.valid, r.quarantined, r.by_rule) == (2, 1, {"org_known": 1})
        clean = [codec.decode(o.value)[1]["after"] for o in r.outputs if o.topic.endswith(".clean")]
        assert [c["org_name"] for c in clean] == ["Jinan Bureau", "Qingdao Bureau"]

        # ORG3 arrives later, ORG1 is deleted (tombstone).
        _send(stack_settings, topic, [("ORG3", {"name": "Zibo Bureau"}), ("ORG1", None)])
        feed = processor.lookup_feeds["orgs"]
        _eventually(lambda: "ORG3" in feed.table and "ORG1" not in feed.table)
        r = processor.process(batch(["ORG1", "ORG2", "ORG3"]))
        assert (r.valid, r.quarantined, r.by_rule) == (2, 1, {"org_known": 1})
        quarantined = [codec.decode(o.value)[1] for o in r.outputs if o.topic.endswith(".quarantine")]
        assert json.loads(quarantined[0]["original_json"])["after"]["org"] == "ORG1"
        clean = [codec.decode(o.value)[1]["after"] for o in r.outputs if o.topic.endswith(".clean")]
        assert [c["org_name"] for c in clean] == ["Qingdao Bureau", "Zibo Bureau"]
    finally:
        processor.close()
