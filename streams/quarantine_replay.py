"""Repair and replay quarantined events: the original change event, corrected, back to its raw topic.

    events = [corrected(codec, record, changes) for record in quarantined]   # ReplayRefused says why not
    events = corrected_many(codec, quarantined, changes)                      # the same, a batch at a time
    replay(bootstrap, events)                                                # acknowledged, or DeliveryFailed
    batch = corrected_columns(codec, scan.topics, scan.keys, scan.values, changes)   # bulk: in Arrow
    replay_batch(bootstrap, batch)
    done = replay_rule(bootstrap, registry_url, quarantine_topic, rule, changes)     # a rule's whole quarantine
    done = replay_rule(..., progress=fn(done_so_far), cancelled=fn() -> bool)      # a job: steps, stop between

A replayed event keeps the original key (so it lands on the row's partition, in order with the
row's other changes) and gets `source.sequence` + 1: above the quarantined version, so the sinks'
row version takes it, and below any later change of the row, which keeps winning. It then flows
through the same runner and rules as any event: still wrong, it is quarantined again.

`corrected_columns` is the bulk replay's path (a rule's whole quarantine, streams.quarantine_read
.scan_rule): the original events are decoded into one Arrow struct array per writer schema, the
corrected fields replaced as columns, `source.sequence` + 1 added to its column and the result
encoded straight from Arrow; no event becomes a Python dict. Byte for byte what `corrected` gives:
each schema's first event is also corrected record by record and compared, and whatever the
columns cannot do (a delete, an unknown field, a value its field's type cannot hold, a schema the
columnar encoder does not cover) goes the record path, which refuses it as `corrected` does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy.kafka import AckedProducer
from quality_stream.frame import frame_to_rows
from schemas.frames import FrameDecoder, FrameRun
from schemas.serde import WireCodec
from streams.quarantine_read import scan_rule_chunks


class ReplayRefused(ValueError):
    def __init__(self, field: str, msg: str, msg_zh: str):
        super().__init__(f"{field}: {msg}")
        self.field, self.msg, self.msg_zh = field, msg, msg_zh


@dataclass
class Replayed:
    topic: str
    key: bytes | None
    value: bytes
    after: dict[str, Any]


@dataclass
class ReplayBatch:
    """Corrected events as columns: `values[i]` goes to `topics[i]` with key `keys[i]`."""

    topics: list[str] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


def corrected(codec: WireCodec, record: dict[str, Any], changes: dict[str, Any]) -> Replayed:
    """The quarantined record's original event with `changes` applied to its row image."""
    _check_quarantined(record)
    return _corrected_one(
        codec, record["original_topic"], record.get("original_key"), record["original_value"], changes
    )


def _corrected_one(codec: WireCodec, topic: str, key: bytes | None, value: bytes, changes: dict[str, Any]) -> Replayed:
    schema_id, event = codec.decode(value)
    _apply(event, changes)
    return Replayed(topic, key, _encode(codec, schema_id, event, changes), event["after"])


def corrected_many(codec: WireCodec, records: list[dict[str, Any]], changes: dict[str, Any]) -> list[Replayed]:
    """corrected() of every record, in order, decoded and encoded a batch at a time (polars' Avro
    reader, the columnar encoder): a bulk replay spent 4/5 of its time in per-record fastavro.
    The first record that cannot be replayed raises ReplayRefused, as corrected() would."""
    for record in records:
        _check_quarantined(record)
    return _corrected_rows(
        codec,
        [r["original_topic"] for r in records],
        [r.get("original_key") for r in records],
        [r["original_value"] for r in records],
        changes,
    )


def _corrected_rows(
    codec: WireCodec, topics: list[str], keys: list[bytes | None], values: list[bytes], changes: dict[str, Any]
) -> list[Replayed]:
    """The record path: each event a dict, corrected, encoded a schema's batch at a time."""
    decoded = FrameDecoder(codec).decode(values)
    out: list[Replayed | None] = [None] * len(values)
    for i in decoded.errors:  # decoded alone, so the error is the one corrected() gives
        out[i] = _corrected_one(codec, topics[i], keys[i], values[i], changes)
    for run in decoded.runs:
        events = frame_to_rows(run.frame)
        for event in events:
            _apply(event, changes)
        try:
            encoded = codec.encode_many(run.schema_id, events)
        except Exception:  # one value does not fit: encoded one by one, which names it
            encoded = [_encode(codec, run.schema_id, e, changes) for e in events]
        for i, event, value in zip(run.positions, events, encoded):
            out[i] = Replayed(topics[i], keys[i], value, event["after"])
    return out  # every slot filled: each input is an error or a row of one run


def corrected_columns(
    codec: WireCodec,
    topics: list[str | None],
    keys: list[bytes | None],
    values: list[bytes | None],
    changes: dict[str, Any],
) -> ReplayBatch:
    """corrected() of every (original topic, key, value) of quarantined events, in order, as
    columns (see the module's doc); ReplayRefused as corrected() would refuse the first bad one."""
    if None in topics or None in values or b"" in values:
        raise ReplayRefused(
            "records", "only events a runner's rules quarantined can be replayed", "只有被规则隔离的事件可以重放"
        )
    decoded = FrameDecoder(codec).decode(values)
    out: list[bytes | None] = [None] * len(values)
    for i in decoded.errors:  # decoded alone: the error corrected() gives
        out[i] = _corrected_one(codec, topics[i], keys[i], values[i], changes).value
    for run in decoded.runs:
        encoded = _corrected_run(codec, run, changes, topics, keys, values)
        if encoded is None:  # the record path, which refuses what cannot be replayed
            part = _corrected_rows(
                codec,
                [topics[i] for i in run.positions],
                [keys[i] for i in run.positions],
                [values[i] for i in run.positions],
                changes,
            )
            encoded = [e.value for e in part]
        if len(run.positions) == len(out):  # the common case: one schema, every event
            out = encoded
        else:
            for i, value in zip(run.positions, encoded):
                out[i] = value
    return ReplayBatch(list(topics), list(keys), out)


def _corrected_run(
    codec: WireCodec,
    run: FrameRun,
    changes: dict[str, Any],
    topics: list[str],
    keys: list[bytes | None],
    values: list[bytes],
) -> list[bytes] | None:
    """The run's events corrected in Arrow and encoded, or None when the record path must do it."""
    target = codec.arrow_type(run.schema_id)
    if target is None or target.get_field_index("after") < 0 or target.get_field_index("source") < 0:
        return None
    try:
        events = run.frame.to_arrow().to_struct_array()
        events = (events.combine_chunks() if isinstance(events, pa.ChunkedArray) else events).cast(target)
        after, source = events.field("after"), events.field("source")
        if events.null_count or after.null_count or source.null_count:  # a delete: no row to correct
            return None
        seq = source.type.get_field_index("sequence")
        if seq < 0 or any(after.type.get_field_index(name) < 0 for name in changes):
            return None
        n = len(events)
        row = [after.field(j) for j in range(after.type.num_fields)]
        for name, value in changes.items():
            j = after.type.get_field_index(name)
            row[j] = pa.repeat(pa.scalar(value, after.type.field(j).type), n)
        src = [source.field(j) for j in range(source.type.num_fields)]
        src[seq] = pc.add_checked(src[seq], pa.scalar(1, src[seq].type))
        top = [events.field(j) for j in range(target.num_fields)]
        top[target.get_field_index("after")] = pa.StructArray.from_arrays(row, fields=list(after.type))
        top[target.get_field_index("source")] = pa.StructArray.from_arrays(src, fields=list(source.type))
        encoded = codec.encode_arrow(run.schema_id, pa.StructArray.from_arrays(top, fields=list(target)))
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    first = run.positions[0]
    try:
        reference = _corrected_one(codec, topics[first], keys[first], values[first], changes).value
    except ReplayRefused:
        return None
    return encoded if encoded[0] == reference else None


def _check_quarantined(record: dict[str, Any]) -> None:
    if not record.get("violations") or not record.get("original_value") or not record.get("original_topic"):
        raise ReplayRefused(
            "records", "only events a runner's rules quarantined can be replayed", "只有被规则隔离的事件可以重放"
        )


def _apply(event: dict[str, Any], changes: dict[str, Any]) -> None:
    """The correction, and a version above the quarantined one (below any later change)."""
    after = event.get("after")
    if not isinstance(after, dict):
        raise ReplayRefused("records", "a delete event has no row to correct", "删除事件没有可修正的行")
    unknown = sorted(set(changes) - set(after))
    if unknown:
        raise ReplayRefused(f"set.{unknown[0]}", "the row has no such field", "行中没有该字段")
    event["after"] = {**after, **changes}
    event["source"] = {**event["source"], "sequence": int(event["source"]["sequence"]) + 1}


def _encode(codec: WireCodec, schema_id: int, event: dict[str, Any], changes: dict[str, Any]) -> bytes:
    try:
        return codec.encode(schema_id, event)
    except (ValueError, TypeError, AttributeError) as exc:  # fastavro: a value the field's type cannot hold
        field = next(iter(changes), "set")
        raise ReplayRefused(
            f"set.{field}", f"a value does not fit its field's type ({exc})"[:300], "取值与字段类型不符"
        ) from None


def replay(bootstrap: str, events: list[Replayed]) -> None:
    producer = AckedProducer(bootstrap)
    for e in events:
        producer.produce(e.topic, e.value, e.key)
    producer.flush_acked()


def replay_batch(bootstrap: str, batch: ReplayBatch, producer: AckedProducer | None = None) -> None:
    """Produces the batch in order (per topic) and waits for every acknowledgement; with a
    `producer`, only produces (the caller flushes)."""
    own = producer is None
    producer = producer or AckedProducer(bootstrap)
    topics = dict.fromkeys(batch.topics)
    if len(topics) == 1:
        producer.produce_many(next(iter(topics)), batch.values, batch.keys)
    else:  # a pipeline reading several raw topics: each topic's events in their order
        index = np.array(batch.topics, dtype=object)
        for topic in topics:
            picked = np.flatnonzero(index == topic).tolist()
            producer.produce_many(topic, [batch.values[i] for i in picked], [batch.keys[i] for i in picked])
    if own:
        producer.flush_acked()


@dataclass
class RuleReplay:
    """What replay_rule did: events replayed, quarantine records read, where each partition's read
    ended, and seconds spent waiting for the reader, correcting, producing and for the last acks.
    `steps`: chunks done; `complete`: False when `cancelled` stopped it before the topic's end
    (`next_start` is then where a later replay_rule(start=next_start) goes on)."""

    replayed: int = 0
    scanned: int = 0
    next_start: dict[int, int] = field(default_factory=dict)
    steps: int = 0
    complete: bool = False
    phases: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read_s", "correct_s", "produce_s", "ack_s"), 0.0)
    )


def replay_rule(
    bootstrap: str,
    registry_url: str,
    topic: str,
    rule: str,
    changes: dict[str, Any],
    chunk: int = 50_000,
    start: dict[int, int] | None = None,
    codec: WireCodec | None = None,
    ack_timeout: float = 300.0,
    progress: Callable[[RuleReplay], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RuleReplay:
    """Every record `rule` quarantined on the quarantine `topic` (from `start`, partition -> offset),
    corrected with `changes` and replayed, in bounded memory: a reader thread reads and filters the
    next `chunk` records (scan_rule_chunks) while this one is corrected (corrected_columns) and
    produced; one producer for all, every acknowledgement waited for at the end (DeliveryFailed
    otherwise). A chunk that cannot be corrected raises ReplayRefused once the chunks before it are
    acknowledged: the changes are the same for every record, so that is the first chunk unless a
    later record cannot take them (a delete).

    `progress(done)` is called after each chunk with the RuleReplay so far (its events produced,
    not yet all acknowledged); `cancelled()` is asked after each chunk: True stops there, the
    chunks read ahead are dropped, what was produced is acknowledged and `complete` stays False."""
    codec = codec or WireCodec(registry_url)
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for scan in scan_rule_chunks(bootstrap, registry_url, topic, rule, chunk, start=start, codec=codec):
                put(scan)
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller's thread
            put(exc)
        finally:
            put(None)

    out = RuleReplay(next_start=dict(start or {}))
    producer = AckedProducer(bootstrap)
    reader = threading.Thread(target=read, name="quarantine-reader", daemon=True)
    reader.start()
    try:
        while True:
            t0 = time.perf_counter()
            item = chunks.get()
            t1 = time.perf_counter()
            out.phases["read_s"] += t1 - t0
            if item is None:
                out.complete = True
                break
            if isinstance(item, BaseException):
                raise item
            if item.values:
                batch = corrected_columns(codec, item.topics, item.keys, item.values, changes)
                t2 = time.perf_counter()
                replay_batch(bootstrap, batch, producer)
                out.phases["correct_s"] += t2 - t1
                out.phases["produce_s"] += time.perf_counter() - t2
            out.replayed += len(item.values)
            out.scanned += item.scanned
            out.next_start = item.next_start
            out.steps += 1
            out.complete = not item.partial  # the last chunk: read to every partition's end
            if progress is not None:
                progress(out)
            if cancelled is not None and cancelled():
                break
    finally:
        stop.set()
        reader.join(30)
        t0 = time.perf_counter()
        producer.flush_acked(ack_timeout)  # what was produced is acknowledged, even before an error
        out.phases["ack_s"] += time.perf_counter() - t0
    return out
