"""The lean runner: the same BatchProcessor as the Faust runner, on confluent-kafka directly.

Faust's per-event machinery (an asyncio task hop, an Event object and an ack per message) costs
more than the rules themselves at high rates; this runner consumes a batch, processes it,
publishes clean and quarantine outputs, waits for the broker's acks and only then commits the
input offsets (at-least-once). Scale out by running more processes in the same group.

While it runs, a batch is consumed and processed while the previous batch's outputs are still
on their way to the broker; only then does it wait for those acks and commit the previous
batch's offsets (the positions taken right after consuming it). The broker's round trips stop
idling the CPU, and an offset is still committed only once the outputs before it are durable.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import TopicPartition

from deploy.kafka import (
    AckedProducer,
    GroupMember,
    batch_consumer,
    bounded_prefetch,
    collector_paused,
    consume_records,
    consumed_positions,
)
from streams.processor import BatchProcessor, RawBatch
from streams.runner_task import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)


class LeanRunner:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        processor: BatchProcessor,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_seconds: float = 0.5,
        counters=None,
        consumer_extra: dict | None = None,
        metrics=None,
    ):
        self.consumer = batch_consumer(bootstrap, group, {**bounded_prefetch(batch_size), **(consumer_extra or {})})
        self.bootstrap, self.group = bootstrap, group
        self.producer = AckedProducer(bootstrap)
        self.topics = topics
        self.processor = processor
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.counters = counters
        self.processed = 0
        self.metrics = metrics  # quality_stream.metrics.writer.MetricsWriter: per-window rule counts
        self._pending: list[TopicPartition] | None = None  # offsets of the batch whose outputs are in flight

    def run_once(self) -> int:
        """One batch start to finish: its outputs acknowledged and its input offsets committed."""
        n = self.step()
        self.settle()
        return n

    def step(self, commit_asynchronously: bool = False) -> int:
        """One batch of the running loop: consume and process it while the previous one's outputs
        travel; then settle the previous one and send this one, left pending (settle() ends it)."""
        with collector_paused():  # a Message object per record: no cycles, freed with the batch
            messages = consume_records(self.consumer, self.batch_size, self.batch_seconds)
            if not messages:
                self.settle()
                return 0
            consumed = consumed_positions(self.consumer)
            batch = RawBatch.of_kafka(messages)
            result = self.processor.process(batch)
        self.settle(commit_asynchronously)
        self.producer.produce_columns(result.topics, result.values, result.keys)
        self._pending = consumed
        self.processed += len(batch)
        if self.counters:
            self.counters.add("runner", result.counts())
        if self.metrics:
            self.metrics.observe()
        return len(batch)

    def settle(self, asynchronously: bool = False) -> None:
        """The pending batch's outputs acknowledged, then its input offsets committed."""
        pending, self._pending = self._pending, None
        if pending:
            self.producer.flush_acked()
            self.consumer.commit(offsets=pending, asynchronous=asynchronously)

    def run(self, stop: threading.Event) -> None:
        member = GroupMember(
            self.consumer, self.topics, bootstrap=self.bootstrap, group=self.group, before_revoke=self.settle
        )
        try:
            while not stop.is_set():
                self.step(commit_asynchronously=True)  # the last commit, below, waits
            self.settle()
        finally:
            member.close()
            if self.metrics:
                self.metrics.close()
