"""Topics as people browse them (issue 18): their partitions, the
registry's versions of their value schema and the difference of two, and a page of messages decoded
from Avro and masked for the reader.

    partitions(bootstrap, budget)              -> {topic: [partition, ...]} of the broker
    subject_versions(registry_url, topic)      -> [1, 2, ...] ([] without a subject)
    schema_version(registry_url, topic, v)     -> {"version", "id", "schema", "fields"}
    schema_diff(registry_url, topic, a, b)     -> schemas.catalog.diff shape diff of the row's fields
    read_messages(bootstrap, registry_url, topic, partition, offset, limit) -> page
    masked_value(value, full, levels)          -> the value as the reader may see it

End offsets come from the caller (api/lag.end_offsets: tansu's high watermark is wrong, the tail is
read to confirm it). Masking: a reader without `data:view` sees every value as "****" (as the
quarantine browse); with it, fields the catalogue classifies `secret` are redacted and `sensitive`
ones partly hidden (streams/transforms/masking.py), the rest is clear.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.kafka_security import client_config
from schemas.catalog.diff import diff_shapes
from schemas.catalog.topics import row_fields
from schemas.naming import value_subject
from schemas.serde import WireCodec
from streams.transforms.masking import resolve

ALL_MASK = "****"
BY_LEVEL = {"secret": resolve("redact"), "sensitive": resolve({"fn": "keep", "first": 1, "last": 1})}
INTERNAL_TOPIC = ("__", "_schemas", "_tansu")


class NoSuchVersion(LookupError):
    pass


def partitions(bootstrap: str, budget: float = 5.0) -> dict[str, list[int]]:
    """Every user topic of the broker with its partition numbers."""
    admin = AdminClient(client_config(bootstrap))
    metadata = admin.list_topics(timeout=budget)
    return {
        name: sorted(meta.partitions)
        for name, meta in metadata.topics.items()
        if meta.error is None and not name.startswith(INTERNAL_TOPIC)
    }


def _registry(registry_url: str) -> httpx.Client:
    return httpx.Client(base_url=registry_url.rstrip("/"), timeout=10)


def subject_versions(registry_url: str, topic: str) -> list[int]:
    with _registry(registry_url) as client:
        r = client.get(f"/subjects/{quote(value_subject(topic), safe='')}/versions")
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return sorted(int(v) for v in r.json())


def schema_version(registry_url: str, topic: str, version: int) -> dict[str, Any]:
    with _registry(registry_url) as client:
        r = client.get(f"/subjects/{quote(value_subject(topic), safe='')}/versions/{int(version)}")
    if r.status_code == 404:
        raise NoSuchVersion(f"no schema version {version} of topic {topic!r}")
    r.raise_for_status()
    body = r.json()
    schema = json.loads(body["schema"])
    fields = [f.as_dict() for f in row_fields(schema)]
    for f in fields:
        f.pop("avro_type", None)
    return {"version": body["version"], "id": body["id"], "schema": schema, "fields": fields}


def schema_diff(registry_url: str, topic: str, a: int, b: int) -> dict[str, Any]:
    old, new = schema_version(registry_url, topic, a), schema_version(registry_url, topic, b)
    shape = lambda v: {"kind": "topic", "fields": v["fields"]}  # noqa: E731
    return {"from": a, "to": b, "diff": diff_shapes(shape(old), shape(new))}


def plain(value: Any) -> Any:
    """A decoded Avro value as JSON (bytes as base64, decimals and times as text)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def _key(codec: WireCodec, raw: bytes | None) -> Any:
    if raw is None:
        return None
    if raw[:1] == b"\x00" and len(raw) > 5:
        try:
            return plain(codec.decode(raw)[1])
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def read_messages(
    bootstrap: str,
    registry_url: str,
    topic: str,
    partition: int,
    offset: int,
    limit: int = 20,
    budget: float = 5.0,
) -> dict[str, Any]:
    """Up to `limit` messages of one partition from `offset`, decoded; `next` is where the next
    page starts (None at the end that was read). A record that does not decode is listed with
    its error instead of a value."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"huiliu-topic-browse-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    codec = WireCodec(registry_url)
    items: list[dict[str, Any]] = []
    at_end = False
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.time() + budget
        while len(items) < limit and not at_end and time.time() < deadline:
            for m in consumer.consume(limit - len(items), 0.3):
                if m.error():
                    at_end = at_end or m.error().code() == KafkaError._PARTITION_EOF
                    continue
                item: dict[str, Any] = {
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "timestamp_ms": m.timestamp()[1],
                    "key": _key(codec, m.key()),
                }
                try:
                    schema_id, record = codec.decode(m.value())
                    item.update(schema_id=schema_id, value=plain(record))
                except ValueError as exc:
                    item.update(schema_id=None, value=None, error=str(exc))
                items.append(item)
                if len(items) >= limit:
                    break
    finally:
        consumer.close()
    last = items[-1]["offset"] + 1 if items else offset
    return {"topic": topic, "partition": partition, "offset": offset, "items": items, "next": last, "at_end": at_end}


def _mask_row(row: dict[str, Any], full: bool, levels: dict[str, str | None]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        if value is None:
            out[name] = None
        elif not full:
            out[name] = ALL_MASK
        elif levels.get(name) in BY_LEVEL:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            out[name] = BY_LEVEL[levels[name]](text)
        else:
            out[name] = value
    return out


def masked_value(value: Any, full: bool, levels: dict[str, str | None]) -> Any:
    """A decoded record for a reader: a change event's `before`/`after` rows, or the record's own
    fields, masked by `full` (data:view) and the fields' classification `levels`."""
    if not isinstance(value, dict):
        return value if full or value is None else ALL_MASK
    if any(isinstance(value.get(image), dict) for image in ("before", "after")):
        out = dict(value)
        for image in ("before", "after"):
            if isinstance(out.get(image), dict):
                out[image] = _mask_row(out[image], full, levels)
        return out
    return _mask_row(value, full, levels)
