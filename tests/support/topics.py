"""A tenant's topic for the topics API and console tests: a developer's files connector names it (the
connector is paused: no worker runs here), the test gives it partitions, registers two versions of
its value schema and produces Avro records itself in one batch per partition (so tansu's high
watermark is below the end), harvests it into the catalogue through the API and classifies
`citizen_id` secret and `phone` sensitive.

    topic = tenant_topic(settings, base, op_key, dev_headers, tenant, system, connector, {0: 5, 1: 3})
"""

from __future__ import annotations

import time

import httpx
from confluent_kafka import Producer

from deploy.kafka import ensure_topics
from schemas.naming import topic_name, value_subject
from schemas.serde import WireCodec

V1 = {
    "type": "record",
    "name": "people",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "citizen_id", "type": ["null", "string"], "default": None},
        {"name": "name", "type": ["null", "string"], "default": None},
    ],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "phone", "type": ["null", "string"], "default": None}]}


def produce(settings, topic: str, per_partition: dict[int, int]) -> None:
    """Record n (from 1): citizen_id 37010219900101<nnnn>, name 张三<n>; each partition's first
    record is of schema v1 (no phone), the others v2 with phone 1381234<nnnn>."""
    codec = WireCodec(settings.schema_registry_url)
    v1 = codec.register(value_subject(topic), V1)
    v2 = codec.register(value_subject(topic), V2)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 200})
    n = 0
    for partition, count in per_partition.items():
        for i in range(count):
            n += 1
            row = {"id": n, "citizen_id": f"37010219900101{n:04d}", "name": f"张三{n}"}
            body = codec.encode(v1, row) if i == 0 else codec.encode(v2, {**row, "phone": f"1381234{n:04d}"})
            producer.produce(topic, value=body, key=str(n).encode(), partition=partition)
    assert producer.flush(30) == 0


def harvest(base: str, who: dict, op: dict, connector: str) -> None:
    r = httpx.post(f"{base}/metadata/harvest", headers=who, json={"connectors": [connector]}, timeout=60)
    assert r.status_code == 202, r.text
    deadline = time.time() + 120
    while time.time() < deadline:
        job = httpx.get(f"{base}/jobs/{r.json()['job_id']}", headers=op, timeout=30).json()
        if job["state"] not in ("queued", "running"):
            assert job["state"] == "succeeded", job
            return
        time.sleep(0.5)
    raise AssertionError(f"harvest of {connector} did not finish")


def tenant_topic(settings, base: str, key: str, dev: dict, tenant: str, system: str, connector: str, per_partition):
    root = settings.resolved_data_root / tenant
    (root / "in").mkdir(parents=True, exist_ok=True)
    config = {
        "connector.class": "files",
        "system": system,
        "table": "people",
        "store": {"root": str(root), "pattern": "in/*.csv"},
        "settle_seconds": 0,
        "columns": [{"name": "id", "type": "int", "key": True}, {"name": "name"}],
    }
    r = httpx.post(f"{base}/connectors", headers=dev, json={"name": connector, "config": config}, timeout=30)
    assert r.status_code == 201, r.text
    httpx.put(f"{base}/connectors/{connector}/pause", headers=dev, timeout=30)
    topic = topic_name(settings.topic_prefix, system, None, "people")
    ensure_topics(settings.kafka_bootstrap, [topic], partitions=len(per_partition))
    produce(settings, topic, per_partition)
    harvest(base, dev, {"X-API-Key": key}, connector)
    found = httpx.get(f"{base}/metadata/search", headers=dev, params={"q": topic}).json()["items"]
    urn = next(i["urn"] for i in found if i["name"] == topic)
    patch = {"fields": {"citizen_id": {"classification": "secret"}, "phone": {"classification": "sensitive"}}}
    r = httpx.patch(f"{base}/metadata/datasets/{urn}", headers=dev, json=patch)
    assert r.status_code == 200, r.text
    return topic
