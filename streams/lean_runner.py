"""The lean runner: the same BatchProcessor as the Faust runner, on confluent-kafka directly.

Faust's per-event machinery (an asyncio task hop, an Event object and an ack per message) costs
more than the rules themselves at high rates; this runner consumes a batch, processes it,
publishes clean and quarantine outputs, waits for the broker's acks and only then commits the
input offsets (at-least-once). Scale out by running more processes in the same group.
"""

from __future__ import annotations

import logging
import threading

from deploy.kafka import AckedProducer, GroupMember, batch_consumer, bounded_prefetch
from streams.processor import BatchProcessor, RawBatch

log = logging.getLogger(__name__)


class LeanRunner:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        processor: BatchProcessor,
        *,
        batch_size: int = 5000,
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

    def run_once(self) -> int:
        messages = [m for m in self.consumer.consume(self.batch_size, self.batch_seconds) if not m.error()]
        if not messages:
            return 0
        batch = RawBatch.of_kafka(messages)
        result = self.processor.process(batch)
        self.producer.produce_columns(result.topics, result.values, result.keys)
        self.producer.flush_acked()  # outputs durable before the input is committed
        self.consumer.commit(asynchronous=False)  # the whole batch, now that its outputs are acknowledged
        self.processed += len(batch)
        if self.counters:
            self.counters.add("runner", result.counts())
        if self.metrics:
            self.metrics.observe()
        return len(batch)

    def run(self, stop: threading.Event) -> None:
        member = GroupMember(self.consumer, self.topics, bootstrap=self.bootstrap, group=self.group)
        try:
            while not stop.is_set():
                self.run_once()
        finally:
            member.close()
            if self.metrics:
                self.metrics.close()
