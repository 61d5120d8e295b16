"""Reading a quarantine topic back: what the runners put aside, filtered and paged, for people.

    page = read_quarantine(bootstrap, registry_url, topic, rule=None, since_ms=None, until_ms=None,
                           limit=50, offset=0, max_scan=100_000, budget=10.0)
    page -> {"total", "items": [{partition, offset, ts_ms, stage, reason, violations, original_topic,
             original_partition, original_offset, event}], "scanned", "partial"}
    kept, scanned, partial = scan_quarantine(bootstrap, registry_url, topic, keep, start={partition: offset})

The topic is read from its beginning on every partition with a throw-away consumer (no group
offsets kept) until each partition's end, `max_scan` records or `budget` seconds; `partial` says
when the scan stopped before the end. Newest first. `event` is the original change event (the
decoded JSON the runner kept), or None when it could not be decoded.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from deploy.kafka_security import client_config
from quality_stream.frame import frame_to_rows
from schemas.frames import FrameDecoder
from schemas.serde import WireCodec


def _matches(rec: dict[str, Any], rule: str | None, since_ms: int | None, until_ms: int | None) -> bool:
    if rule and not any(v.get("rule_id") == rule for v in rec.get("violations") or []):
        return False
    ts = rec.get("ts_ms") or 0
    return (since_ms is None or ts >= since_ms) and (until_ms is None or ts < until_ms)


def quarantine_item(m, rec: dict[str, Any]) -> dict[str, Any]:
    try:
        event = json.loads(rec["original_json"]) if rec.get("original_json") else None
    except ValueError:
        event = None
    return {
        "partition": m.partition(),
        "offset": m.offset(),
        "ts_ms": rec.get("ts_ms"),
        "stage": rec.get("stage"),
        "reason": rec.get("reason"),
        "violations": rec.get("violations") or [],
        "original_topic": rec.get("original_topic"),
        "original_partition": rec.get("original_partition"),
        "original_offset": rec.get("original_offset"),
        "event": event,
    }


def scan_quarantine(
    bootstrap: str,
    registry_url: str,
    topic: str,
    keep,
    max_scan: int = 100_000,
    budget: float = 10.0,
    start: dict[int, int] | None = None,
) -> tuple[list[tuple[Any, dict[str, Any]]], int, bool]:
    """([(message, decoded record)] that `keep(message, record)` accepts, scanned, partial). `start`:
    partition -> first offset to read (default: every partition from its beginning)."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"huiliu-quarantine-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    decoder = FrameDecoder(WireCodec(registry_url))
    kept: list[tuple[Any, dict[str, Any]]] = []
    scanned = 0
    try:
        meta = consumer.list_topics(timeout=budget).topics.get(topic)  # all topics: asking for one may create it
        if meta is None or meta.error is not None:
            return [], 0, False
        parts = sorted(meta.partitions) if start is None else sorted(set(start) & set(meta.partitions))
        pending = set(parts)
        offsets = start or {}
        consumer.assign([TopicPartition(topic, p, offsets.get(p, OFFSET_BEGINNING)) for p in parts])
        deadline = time.time() + budget
        while pending and scanned < max_scan and time.time() < deadline:
            messages = []
            for m in consumer.consume(5000, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                    continue
                messages.append(m)
            scanned += len(messages)
            for m, rec in zip(messages, _decoded(decoder, messages)):
                if rec is not None and keep(m, rec):  # None: undecodable, skipped, not fatal
                    kept.append((m, rec))
    finally:
        consumer.close()
    return kept, scanned, bool(pending)


def _decoded(decoder: FrameDecoder, messages: list) -> list[dict[str, Any] | None]:
    """The records of a consumed batch, decoded together (polars' Avro reader: a bulk replay of a
    rule's quarantine spent half its time decoding record by record); None where undecodable."""
    out: list[dict[str, Any] | None] = [None] * len(messages)
    if messages:
        batch = decoder.decode([m.value() for m in messages])
        for run in batch.runs:
            for i, rec in zip(run.positions, frame_to_rows(run.frame)):
                out[i] = rec
    return out


def read_quarantine(
    bootstrap: str,
    registry_url: str,
    topic: str,
    rule: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    offset: int = 0,
    max_scan: int = 100_000,
    budget: float = 10.0,
) -> dict[str, Any]:
    kept, scanned, partial = scan_quarantine(
        bootstrap, registry_url, topic, lambda m, rec: _matches(rec, rule, since_ms, until_ms), max_scan, budget
    )
    matched = [quarantine_item(m, rec) for m, rec in kept]
    matched.sort(key=lambda i: (i["ts_ms"] or 0, i["partition"], i["offset"]), reverse=True)
    return {"total": len(matched), "items": matched[offset : offset + limit], "scanned": scanned, "partial": partial}


class MissingRecord(LookupError):
    """No quarantined record at this (partition, offset)."""

    def __init__(self, position: tuple[int, int]):
        super().__init__(f"no quarantined record at partition/offset {position} / 没有该隔离记录")
        self.position = position


def records_at(bootstrap: str, registry_url: str, topic: str, positions: set[tuple[int, int]]):
    """[(message, decoded record)] at exactly these (partition, offset) positions of a quarantine
    topic, each partition read from its lowest wanted offset; `MissingRecord` names one not there."""
    start: dict[int, int] = {}
    for part, off in positions:
        start[part] = min(off, start.get(part, off))
    kept, _, _ = scan_quarantine(
        bootstrap, registry_url, topic, lambda m, rec: (m.partition(), m.offset()) in positions, start=start
    )
    missing = sorted(positions - {(m.partition(), m.offset()) for m, _ in kept})
    if missing:
        raise MissingRecord(missing[0])
    return kept
