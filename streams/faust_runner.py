"""The Faust runner (the default per the design): one agent per pipeline over its change-event topics.

Micro-batches come from `take_events(size, within)`; each batch goes through the shared
BatchProcessor; clean and quarantine records are published and acknowledged by the broker
before the agent takes the next batch. Faust acks a batch's events only after that, and commits
acked offsets, so delivery is at-least-once: a crash between publish and commit replays the
batch (sinks collapse the duplicates by version).

Faust consumes, balances partitions and commits; the outputs go through confluent-kafka's
producer (deploy.kafka.AckedProducer) in the executor, not Faust's `send`: one awaited send per
record through aiokafka held the runner near 1,700 events/s, the C producer publishes a whole
batch in a few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging

import faust

from deploy.kafka import AckedProducer, ensure_topics
from deploy.kafka_security import faust_credentials
from schemas.naming import clean_topic, quarantine_topic
from schemas.serde import WireCodec
from streams.processor import BatchProcessor, RawMessage

log = logging.getLogger(__name__)


def build_app(
    pipeline: str,
    topics: list[str],
    transforms: list[dict],
    rules: list[dict],
    *,
    bootstrap: str,
    registry_url: str,
    data_dir: str,
    batch_size: int = 1000,
    within_seconds: float = 0.5,
    session_timeout: float = 10.0,
    counters=None,
    partitions: int = 1,
    metrics_for=None,
) -> faust.App:
    """`metrics_for(processor)`: the quality metrics writer of the stage (see
    streams.runner_task.metrics_writer) or None; `app.huiliu_metrics` holds it for the shutdown."""
    app = faust.App(
        f"huiliu-runner-{pipeline}",
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store="memory://",
        datadir=data_dir,
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=1.0,
        broker_commit_every=batch_size,
        producer_acks=-1,
        broker_credentials=faust_credentials(),  # TLS / SASL of the settings (None: plaintext)
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    source = app.topic(*topics, **raw)
    # Created up front like Faust would (explicitly: auto-created topics may get another layout).
    ensure_topics(bootstrap, [out(t) for t in topics for out in (clean_topic, quarantine_topic)], partitions)
    producer = AckedProducer(bootstrap)

    def publish(result) -> None:
        producer.produce_columns(result.topics, result.values, result.keys)
        producer.flush_acked()

    processor = BatchProcessor(WireCodec(registry_url), transforms, rules, stage=f"runner:{pipeline}")
    metrics = metrics_for(processor) if metrics_for else None

    @app.agent(source, name="process")
    async def process(stream):
        async for events in stream.take_events(batch_size, within=within_seconds):
            batch = [
                RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in events
            ]
            # Decoding and rules are CPU work; the registry look-ups on first sight are blocking HTTP.
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, processor.process, batch)
            await loop.run_in_executor(None, publish, result)
            if counters:  # a control-DB write: kept off the event loop
                await loop.run_in_executor(None, counters.add, "runner", result.counts())
            if metrics:  # a dict difference of the rule counters; its thread writes ClickHouse
                metrics.observe()

    app.huiliu_processor = processor  # exposed for metrics (per-rule counters)
    app.huiliu_metrics = metrics
    return app


def run_worker(app: faust.App, loglevel: str = "warn") -> None:
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
