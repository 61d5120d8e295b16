"""A SourceTask that replays a given list of change events: lets sink tests publish through the
real SourceRuntime (schemas registered, Avro envelopes, acked produce) without a database."""

from __future__ import annotations

import time
import uuid

from connectors.base import CapturedTable, ChangeEvent, SourceBatch, SourceTask


class ListSourceTask(SourceTask):
    def __init__(self, name: str, events: list[ChangeEvent], batch_size: int = 5000):
        self.name = name
        self.events = events
        self.batch_size = batch_size
        self.pos = 0

    def start(self, offsets):
        self.pos = int((offsets.get("list") or {}).get("pos", 0))

    def poll(self) -> SourceBatch:
        chunk = self.events[self.pos : self.pos + self.batch_size]
        if not chunk:
            return SourceBatch()
        self.pos += len(chunk)
        return SourceBatch(chunk, {"list": {"pos": self.pos}})


class CrashAfter:
    """Wraps a source task; its poll raises after `n` polls, as a crash between two chunks would.
    pipelined=True runs it as the runtime runs a pipelined task (the snapshot): the crash comes
    while the next chunk is read ahead and the last one's acks may be outstanding."""

    def __init__(self, task, n: int, pipelined: bool = False):
        self.task, self.n, self.name, self.pipelined = task, n, task.name, pipelined

    def start(self, offsets):
        self.task.start(offsets)

    def poll(self):
        if self.n == 0:
            raise RuntimeError("simulated crash")
        self.n -= 1
        return self.task.poll()

    def committed(self, offsets):
        self.task.committed(offsets)

    def close(self):
        self.task.close()


def upsert(table: CapturedTable, row: dict, seq: int, op: str = "c") -> ChangeEvent:
    return ChangeEvent(table, op, None, row, 1_700_000_000_000 + seq, {"seq": seq}, seq)


def delete(table: CapturedTable, row: dict, seq: int) -> ChangeEvent:
    return ChangeEvent(table, "d", row, None, 1_700_000_000_000 + seq, {"seq": seq}, seq)


def raw_messages(settings, topic: str, expected: int, timeout: float = 90.0) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of `topic`'s messages from the start, once `expected` arrived (or the deadline passed)."""
    import time
    import uuid

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    out, deadline = [], time.time() + timeout
    try:
        while len(out) < expected and time.time() < deadline:
            msg = consumer.poll(1)
            if msg is not None and not msg.error():
                out.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def consume(settings, topic: str, expected: int, timeout: float = 90.0) -> list[dict]:
    """Decoded envelopes of `topic` from the start, once `expected` arrived (or the deadline passed)."""
    from schemas.serde import WireCodec

    codec = WireCodec(settings.schema_registry_url)
    return [codec.decode(value)[1] for _, value in raw_messages(settings, topic, expected, timeout)]


def consume_settled(settings, topic: str, n: int, timeout: float = 60) -> list[dict]:
    """Decoded values of `topic` once `n` arrived and two polls came back empty (extras are caught too)."""
    from confluent_kafka import Consumer

    from schemas.serde import WireCodec

    codec = WireCodec(settings.schema_registry_url)
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )  # tansu joins in ~half of it
    c.subscribe([topic])
    out, deadline, idle = [], time.time() + timeout, 0
    try:
        while time.time() < deadline and (len(out) < n or idle < 2):
            msg = c.poll(1)
            if msg is None or msg.error():
                idle += 1
                continue
            idle = 0
            out.append(codec.decode(msg.value())[1])
    finally:
        c.close()
    return out


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> end offset, confirmed by a tail read (tansu's watermark is the last batch's base + 1)."""
    from confluent_kafka import Consumer

    from api.lag import end_offsets
    from deploy.kafka_security import client_config

    c = Consumer({**client_config(bootstrap), "group.id": f"t-{uuid.uuid4().hex[:6]}"})
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
    finally:
        c.close()
    return {p: end for (_, p), (_, end, _) in end_offsets(bootstrap, [(topic, p) for p in parts]).items()}


def read_between(bootstrap: str, topic: str, start: dict[int, int]) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every message from `start` (partition -> offset) to each partition's end."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from deploy.kafka_security import client_config

    c = Consumer({**client_config(bootstrap), "group.id": f"t-{uuid.uuid4().hex[:6]}", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    pending, out = set(start), []
    try:
        while pending:
            for m in c.consume(1000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                    continue
                out.append((m.key(), m.value()))
    finally:
        c.close()
    return out
