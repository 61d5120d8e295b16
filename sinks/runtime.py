"""The sink runtime: consume a clean topic, write batches, commit offsets after the store confirmed.

Batches are bounded by size and time (one `consume` call). The consumer thread consumes and
decodes; a writer thread (sinks.writer) writes each batch while the next is read, so the store's
round trip overlaps consuming and decoding; a task whose flush finishes in the background
(`SinkTask.flush_started`: the HDFS sink's upload) is put the next batch meanwhile. The consumer
thread commits the offsets a batch ends at once the writer wrote it (and its flush finished): no
offset is committed before its batch is in the store. A failed write is retried with exponential backoff
while the partitions are paused (back-pressure: nothing more is read and nothing is committed),
and the state shows `degraded` until the store answers again. A fatal error (incompatible
schema), in either thread, stops the sink in state `failed` with the message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from confluent_kafka import KafkaException, TopicPartition

from deploy.kafka import (
    GroupMember,
    batch_consumer,
    bounded_prefetch,
    collector_paused,
    consume_records,
    consumed_positions,
)
from quality_stream.frame import frame_to_rows
from schemas.frames import DecodedBatch, FrameDecoder
from schemas.serde import UndecodableRecord, WireCodec
from sinks import latency
from sinks.base import FatalSinkError, SinkFrame, SinkRecord, SinkTask
from sinks.writer import Batch, BatchWriter

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
        self.consumer = batch_consumer(
            bootstrap, group, {**bounded_prefetch(self.batch_size), **(consumer_extra or {})}
        )
        self.bootstrap, self.group = bootstrap, group
        self.topics = topics
        self.codec = codec
        self.frames = FrameDecoder(codec, task.frame_columns if task.columnar else None)
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

    def _write(self, batch: list[SinkRecord] | list[SinkFrame]) -> Callable[[float | None], bool] | None:
        """One attempt at writing a batch (the writer thread retries a SinkError): None once it is
        durable, or what waits until it is (`SinkTask.flush_started`)."""
        if self.task.columnar:
            self.task.put_frames(batch)
        else:
            self.task.put(batch)
        return self.task.flush_started()

    def _written(self, batch: Batch, seconds: float) -> None:
        """The writer wrote a batch: state, counts, latency."""
        latency.observe(self.counters, latency.store_of(self.task), seconds)
        self.status.set("running")
        self.status.written += batch.count
        self.status.batches += 1
        if self.counters:
            self.counters.add("sink", {"written": batch.count, "deleted": batch.deleted})
        log.debug("wrote %d records in %.3fs", batch.count, seconds)

    def _commit_written(self, wait: bool = False) -> None:
        """Commit where the batches the writer finished end (nothing else ever is). Asynchronous
        while running: a commit lost with a crash only means those rows are written again, which
        FINAL collapses by version; synchronous on the way out and before partitions are revoked."""
        offsets = self.writer.committable()
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as exc:  # the next commit covers these too; until then a restart rewrites them
            log.warning("sink could not commit %s: %s", offsets, exc)

    def _degraded(self, error: str) -> None:
        self.status.set("degraded", error)

    def run_once(self, stop: threading.Event) -> int:
        """Consume and decode a batch and hand it to the writer; the number of records handed over."""
        self.writer.check()
        self._commit_written()
        with collector_paused():
            messages = consume_records(self.consumer, self.batch_size, self.batch_seconds)
            if not messages:
                return 0
            # What to commit once this batch (and so every earlier one, written in order) is in the store.
            offsets = consumed_positions(self.consumer)
            batch = Batch(self._decode(messages), len(messages), offsets)
            if self.counters:
                batch.deleted = _deletes(batch.data)
            del messages  # freed by reference counting while the collector is paused: it never walks them
        return batch.count if self._hand_over(batch, stop) else 0

    def _hand_over(self, batch: Batch, stop: threading.Event) -> bool:
        """Wait for the writer to take the batch. While the store is failing (the writer retries),
        the partitions are paused and polled, which keeps the group membership and reads nothing."""
        paused = False
        try:
            while not self.writer.hand_over(batch, 0.2):
                self._commit_written()
                if stop.is_set():
                    return False
                if self.writer.retrying:
                    self.consumer.pause(self.consumer.assignment())  # again each time: a rebalance may assign more
                    paused = True
                if paused:
                    self._poll_paused()
            return True
        finally:
            if paused:
                self.consumer.resume(self.consumer.assignment())

    def _poll_paused(self) -> None:
        message = self.consumer.poll(0.2)
        if message is not None and not message.error():
            # read from a partition assigned during this poll, before it was paused: read it again later
            self.consumer.seek(TopicPartition(message.topic(), message.partition(), message.offset()))

    def run(self, stop: threading.Event) -> None:
        self.writer = BatchWriter(self.group, self._write, self._written, self._degraded, stop, self.max_backoff)
        member = GroupMember(
            self.consumer, self.topics, before_revoke=self._before_revoke, bootstrap=self.bootstrap, group=self.group
        )
        self.status.set("running")
        try:
            while not stop.is_set():
                self.run_once(stop)
            self.writer.close()
            self.writer.check()
        except FatalSinkError as exc:
            self.status.set("failed", str(exc))
            log.error("sink stopped: %s", exc)
            raise
        finally:
            self.writer.close()  # no-op when already closed; after a failure: ends its retrying
            self._commit_written(wait=True)  # what was written before the stop or the failure
            if self.status.state != "failed":
                self.status.set("stopped")
            self.task.close()
            member.close()

    def _before_revoke(self) -> None:
        """Partitions are being taken away: let the batch in hand reach the store and its offsets
        the group first (bounded), so the next owner starts after it instead of writing it again."""
        self.writer.drain(timeout=30.0)
        self._commit_written(wait=True)


def _deletes(batch: list[SinkRecord] | list[SinkFrame]) -> int:
    if batch and isinstance(batch[0], SinkFrame):
        return sum(int((f.frame.get_column("op") == "d").sum()) for f in batch)
    return sum(r.op == "d" for r in batch)
