"""The sink runtime: consume a clean topic, write batches, commit offsets after the store confirmed.

Batches are bounded by size and time (one `consume` call). A failed write is retried with
exponential backoff while the partitions are paused (back-pressure: nothing more is read and
nothing is committed), and the state shows `degraded` until the store answers again. A fatal
error (incompatible schema) stops the sink in state `failed` with the message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import polars as pl

from deploy.kafka import GroupMember, batch_consumer
from quality_stream.frame import frame_to_rows
from schemas.frames import DecodedBatch, FrameDecoder
from schemas.serde import UndecodableRecord, WireCodec
from sinks import latency
from sinks.base import FatalSinkError, SinkError, SinkFrame, SinkRecord, SinkTask

log = logging.getLogger(__name__)


@dataclass
class SinkState:
    state: str = "starting"  # starting | running | degraded | failed | stopped
    last_error: str | None = None
    written: int = 0
    batches: int = 0
    since: float = field(default_factory=time.time)

    def set(self, state: str, error: str | None = None) -> None:
        if state != self.state:
            self.since = time.time()
        self.state, self.last_error = state, error


def prefetch(batch_size: int) -> dict:
    """The sink's read-ahead, bounded by configuration: four batches or 32 MB of records, fetched
    16 MB at a time. deploy.kafka.batch_consumer's own (500,000 messages, 64 MB queued, 50 MB
    fetches) suits runners that never stop reading; a sink waits whenever its store is slow, and
    with that queue it grew from 228 to 496 MB while ClickHouse was frozen (librdkafka keeps a few
    hundred bytes beside each queued message). Measured (bench_clickhouse_sink, 50,000-row
    batches): two batches ahead ran dry (the next fetch arrived late: 164k rows/s), four did not
    (237k, as with the 500,000 default); 16 MB fetches keep the queue topped up in smaller steps."""
    return {
        "queued.min.messages": max(4 * batch_size, 20_000),
        "queued.max.messages.kbytes": 32_768,
        "fetch.max.bytes": 16_777_216,
        "max.partition.fetch.bytes": 16_777_216,
    }


class SinkRunner:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        codec: WireCodec,
        task: SinkTask,
        batch_size: int | None = None,
        batch_seconds: float | None = None,
        counters=None,
        consumer_extra: dict | None = None,
        max_backoff: float = 10.0,
    ):
        self.batch_size = batch_size or task.batch_bounds[0]  # the task's own bounds unless told otherwise
        self.batch_seconds = batch_seconds or task.batch_bounds[1]
        self.consumer = batch_consumer(bootstrap, group, {**prefetch(self.batch_size), **(consumer_extra or {})})
        self.bootstrap, self.group = bootstrap, group
        self.topics = topics
        self.codec = codec
        self.frames = FrameDecoder(codec)
        self.task = task
        self.counters = counters
        self.max_backoff = max_backoff
        self.status = SinkState()
        # One topic named outright (not a ^pattern): every message is from it, nothing to ask each one.
        only = set(topics)
        self._single_topic = next(iter(only)) if len(only) == 1 and not next(iter(only)).startswith("^") else None

    def _decode(self, messages) -> list[SinkRecord] | list[SinkFrame]:
        """Frames for a columnar task, records (in message order) for the others; both decoded
        in one native pass per schema (schemas.frames), rows made dicts only where needed."""
        batch = self._frames([m.value() for m in messages], messages, "")
        if self.task.columnar:
            return [frame for run in batch.runs for frame in self._sink_frames(run, messages)]
        keyed = [i for i, m in enumerate(messages) if m.key()]
        keys: list[dict | None] = [None] * len(messages)
        for run in self._frames([messages[i].key() for i in keyed], [messages[i] for i in keyed], "key: ").runs:
            for pos, row in zip(run.positions, frame_to_rows(run.frame)):
                keys[keyed[pos]] = row
        records: list[SinkRecord | None] = [None] * len(messages)
        for run in batch.runs:
            for i, value in zip(run.positions, frame_to_rows(run.frame)):
                m = messages[i]
                records[i] = SinkRecord(m.topic(), m.partition(), m.offset(), keys[i], value, run.schema_id)
        return records

    def _sink_frames(self, run, messages) -> list[SinkFrame]:
        """One SinkFrame per topic of a run, with each row's `_partition` and `_offset` when the
        task reads them (`frame_positions`): per-message Python work is the sink's largest cost
        after decoding, so a sink of one named topic asks nothing of each message here."""
        single = self._single_topic
        if single is not None:
            by_topic = {single: None}  # every row: the consumer reads this one topic
        else:
            by_topic: dict[str, list[int] | None] = {}
            for row, i in enumerate(run.positions):
                by_topic.setdefault(messages[i].topic(), []).append(row)
            if len(by_topic) == 1:
                by_topic = dict.fromkeys(by_topic)
        out = []
        for topic, rows in by_topic.items():
            frame = run.frame if rows is None else run.frame[rows]
            if self.task.frame_positions:
                picked = (
                    [messages[i] for i in run.positions] if rows is None else [messages[run.positions[r]] for r in rows]
                )
                frame = frame.with_columns(
                    pl.Series("_partition", [m.partition() for m in picked], dtype=pl.Int32),
                    pl.Series("_offset", [m.offset() for m in picked], dtype=pl.Int64),
                )
            first = messages[run.positions[0 if rows is None else rows[0]]]
            out.append(SinkFrame(topic, run.schema_id, self._first_key(first), frame))
        return out

    def _frames(self, values: list[bytes], messages, what: str) -> DecodedBatch:
        batch = self.frames.decode(values)
        for i, reason in batch.errors.items():
            # Clean topics only carry what a runner encoded; anything else is a bug upstream.
            m = messages[i]
            raise FatalSinkError(f"topic {m.topic()} partition {m.partition()} offset {m.offset()}: {what}{reason}")
        return batch

    def _first_key(self, message) -> dict | None:
        """The key of a frame's first record: it names the key fields when a table is created."""
        try:
            return self.codec.decode(message.key())[1] if message.key() else None
        except UndecodableRecord as exc:
            raise FatalSinkError(
                f"topic {message.topic()} partition {message.partition()} offset {message.offset()}: key: {exc}"
            ) from exc

    def _write(self, records: list[SinkRecord] | list[SinkFrame], stop: threading.Event) -> bool:
        """Write until it succeeds (True) or we are asked to stop (False)."""
        backoff = 0.5
        paused = False
        try:
            while True:
                try:
                    if self.task.columnar:
                        self.task.put_frames(records)
                    else:
                        self.task.put(records)
                    self.task.flush()
                    return True
                except SinkError as exc:
                    self.status.set("degraded", str(exc))
                    log.warning("sink write failed, retrying in %.1fs: %s", backoff, exc)
                    if not paused:
                        self.consumer.pause(self.consumer.assignment())
                        paused = True
                    deadline = time.time() + backoff
                    while time.time() < deadline:
                        self.consumer.poll(0.2)  # keeps group membership; paused, so returns nothing
                        if stop.is_set():
                            return False
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            if paused:
                self.consumer.resume(self.consumer.assignment())

    def run_once(self, stop: threading.Event) -> int:
        messages = [m for m in self.consumer.consume(self.batch_size, self.batch_seconds) if not m.error()]
        if not messages:
            return 0
        records = self._decode(messages)
        t0 = time.perf_counter()
        if not self._write(records, stop):
            return 0
        latency.observe(self.counters, latency.store_of(self.task), time.perf_counter() - t0)
        self.consumer.commit(asynchronous=False)  # everything consumed, now that the store confirmed it
        self.status.set("running")
        self.status.written += len(messages)
        self.status.batches += 1
        if self.counters:
            self.counters.add("sink", {"written": len(messages), "deleted": _deletes(records)})
        log.debug("wrote %d records in %.3fs", len(messages), time.perf_counter() - t0)
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        member = GroupMember(self.consumer, self.topics, bootstrap=self.bootstrap, group=self.group)
        self.status.set("running")
        try:
            while not stop.is_set():
                self.run_once(stop)
        except FatalSinkError as exc:
            self.status.set("failed", str(exc))
            log.error("sink stopped: %s", exc)
            raise
        finally:
            if self.status.state != "failed":
                self.status.set("stopped")
            self.task.close()
            member.close()


def _deletes(batch: list[SinkRecord] | list[SinkFrame]) -> int:
    if batch and isinstance(batch[0], SinkFrame):
        return sum(int((f.frame.get_column("op") == "d").sum()) for f in batch)
    return sum(r.op == "d" for r in batch)
