"""Reading a quarantine topic back: what the runners put aside, filtered and paged, for people.

    page = read_quarantine(bootstrap, registry_url, topic, rule=None, since_ms=None, until_ms=None,
                           limit=50, offset=0, max_scan=100_000, budget=10.0)
    page -> {"total", "items": [{partition, offset, ts_ms, stage, reason, violations, original_topic,
             original_partition, original_offset, event}], "scanned", "partial"}
    kept, scanned, partial = scan_quarantine(bootstrap, registry_url, topic, keep, start={partition: offset})
    scan = scan_rule(bootstrap, registry_url, topic, rule, start={partition: offset})   # columns, for bulk replay
    for scan in scan_rule_chunks(bootstrap, registry_url, topic, rule, chunk=50_000): ...  # one consumer, in chunks

The topic is read from its beginning on every partition with a throw-away consumer (no group
offsets kept) until each partition's end, `max_scan` records or `budget` seconds; `partial` says
when the scan stopped before the end. Newest first. `event` is the original change event (the
decoded JSON the runner kept), or None when it could not be decoded.

`scan_rule` is the bulk replay's reader: only the records a rule quarantined, and of them only
what replaying needs (position, original topic, key and value), taken from the decoded frames'
columns; no record becomes a dict (turning frames into dicts was a third of a bulk replay).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
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
    kept: list[tuple[Any, dict[str, Any]]] = []
    decoder = FrameDecoder(WireCodec(registry_url))
    with _Reader(bootstrap, topic, start, budget) as reader:
        for messages in reader.batches(max_scan, budget):
            for m, rec in zip(messages, _decoded(decoder, messages)):
                if rec is not None and keep(m, rec):  # None: undecodable, skipped, not fatal
                    kept.append((m, rec))
        return kept, reader.scanned, reader.partial


@dataclass
class RuleScan:
    """The records one rule quarantined, as columns: `positions[i]` is the (partition, offset) of the
    quarantine record whose original event is `values[i]`, from `topics[i]` with key `keys[i]`.
    `next_start`: partition -> the offset after the last one read (where a next scan goes on)."""

    positions: list[tuple[int, int]] = field(default_factory=list)
    topics: list[str | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    scanned: int = 0
    partial: bool = False
    next_start: dict[int, int] = field(default_factory=dict)


def scan_rule(
    bootstrap: str,
    registry_url: str,
    topic: str,
    rule: str,
    max_scan: int = 100_000,
    budget: float = 10.0,
    start: dict[int, int] | None = None,
    codec: WireCodec | None = None,
) -> RuleScan:
    """Every record of the quarantine topic with a violation of `rule`, in topic order per partition
    (what scan_quarantine keeps for `rule`, but as columns, filtered in the frame). `codec`: the
    caller's (its schema cache), else one for `registry_url`."""
    collect = _RuleCollector(codec or WireCodec(registry_url), rule, positions=True)
    with _Reader(bootstrap, topic, start, budget) as reader:
        for messages in reader.batches(max_scan, budget):
            collect(messages)
        return collect.result(reader)


def scan_rule_chunks(
    bootstrap: str,
    registry_url: str,
    topic: str,
    rule: str,
    chunk: int = 50_000,
    budget: float = 60.0,
    start: dict[int, int] | None = None,
    codec: WireCodec | None = None,
) -> Iterator[RuleScan]:
    """scan_rule over the whole topic with one consumer, a RuleScan per `chunk` records read (the
    last one has partial False), without positions (next_start says how far each one got).
    TimeoutError when a chunk reads nothing within `budget` seconds."""
    with _Reader(bootstrap, topic, start, budget) as reader:
        while True:
            before = reader.scanned
            collect = _RuleCollector(codec or WireCodec(registry_url), rule, positions=False)
            for messages in reader.batches(chunk, budget):
                collect(messages)
            scan = collect.result(reader)
            scan.scanned = reader.scanned - before
            yield scan
            if not scan.partial:
                return
            if not scan.scanned:
                raise TimeoutError(f"{topic}: nothing read in {budget:.0f}s before the end of the topic")


class _RuleCollector:
    """Keeps, of each consumed batch, the records with a violation of `rule` (filtered in the frame)."""

    def __init__(self, codec: WireCodec, rule: str, positions: bool):
        self.decoder = FrameDecoder(codec, columns=_REPLAY_COLUMNS)
        self.hit = (
            pl.col("violations").list.eval(pl.element().struct.field("rule_id") == rule).list.any().fill_null(False)
        )
        self.positions = positions
        self.out = RuleScan()

    def __call__(self, messages: list) -> None:
        out = self.out
        decoded = self.decoder.decode([m.value() for m in messages])  # undecodable ones: skipped, not fatal
        for run in decoded.runs:
            frame = run.frame
            if "violations" not in frame.columns:  # not a quarantine record
                continue
            mask = frame.select(self.hit).to_series().to_numpy()
            if not mask.any():
                continue
            kept = frame.filter(pl.Series(mask))
            if self.positions:
                picked = [messages[i] for i in np.asarray(run.positions)[mask].tolist()]
                out.positions += [(m.partition(), m.offset()) for m in picked]
            out.topics += _column(kept, "original_topic")
            out.keys += _column(kept, "original_key")
            out.values += _column(kept, "original_value")

    def result(self, reader: _Reader) -> RuleScan:
        self.out.scanned, self.out.partial, self.out.next_start = reader.scanned, reader.partial, dict(reader.offsets)
        return self.out


_REPLAY_COLUMNS = ["violations", "original_topic", "original_key", "original_value"]


def _column(frame: pl.DataFrame, name: str) -> list:
    return frame.get_column(name).to_list() if name in frame.columns else [None] * frame.height


class _Reader:
    """A throw-away consumer (no group offsets kept) reading a topic from `start` (partition ->
    offset; default every partition from its beginning) to each partition's end."""

    def __init__(self, bootstrap: str, topic: str, start: dict[int, int] | None, budget: float):
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"huiliu-quarantine-read-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        self.scanned = 0
        self.offsets = dict(start or {})  # partition -> the offset after the last one read
        self.pending: set[int] = set()
        self.assigned = 0
        try:
            meta = self.consumer.list_topics(timeout=budget).topics.get(topic)  # all topics: one may create it
            if meta is None or meta.error is not None:
                return
            parts = sorted(meta.partitions) if start is None else sorted(set(start) & set(meta.partitions))
            self.pending, self.assigned = set(parts), len(parts)
            self.consumer.assign([TopicPartition(topic, p, self.offsets.get(p, OFFSET_BEGINNING)) for p in parts])
        except BaseException:
            self.consumer.close()
            raise

    @property
    def partial(self) -> bool:
        return bool(self.pending)

    def batches(self, max_scan: int, budget: float) -> Iterator[list]:
        """Consumed batches of messages until every partition's end, `max_scan` more records or
        `budget` seconds."""
        limit, deadline = self.scanned + max_scan, time.time() + budget
        while self.pending and self.scanned < limit and time.time() < deadline:
            messages = []
            for m in self.consumer.consume(min(5000, limit - self.scanned), 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        self.pending.discard(m.partition())
                    continue
                messages.append(m)
            if messages:
                self.scanned += len(messages)
                seen: set[int] = set()
                for m in reversed(messages):  # the last message of each partition in the batch
                    part = m.partition()
                    if part not in seen:
                        seen.add(part)
                        self.offsets[part] = max(self.offsets.get(part, 0), m.offset() + 1)
                        if len(seen) == self.assigned:
                            break
                yield messages

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.consumer.close()


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
