"""Kafka plumbing shared by sources, runners and sinks: explicit topic creation and an acked producer.
Every client starts from `deploy.kafka_security.client_config` (servers, TLS, SASL)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.kafka_security import client_config
from deploy.settings import get_settings

log = logging.getLogger(__name__)


def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int = 1, replication: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create missing topics explicitly (brokers that auto-create pick their own partition count)."""
    admin = AdminClient(client_config(bootstrap))
    existing = set(admin.list_topics(timeout=15).topics)
    missing = [NewTopic(t, partitions, replication, config=config or {}) for t in topics if t not in existing]
    if not missing:
        return
    for future in admin.create_topics(missing, operation_timeout=15).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def delete_topics_and_groups(bootstrap: str, topics: list[str], groups: list[str]) -> None:
    """Remove topics and consumer groups that exist (what is already gone is fine)."""
    admin = AdminClient(client_config(bootstrap))
    existing = set(admin.list_topics(timeout=15).topics)
    gone = [t for t in topics if t in existing]
    futures = list(admin.delete_topics(gone, operation_timeout=15).values()) if gone else []
    futures += list(admin.delete_consumer_groups(groups).values()) if groups else []
    for future in futures:
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() not in (KafkaError.GROUP_ID_NOT_FOUND, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise


class DeliveryFailed(RuntimeError):
    pass


TANSU_CLUSTER_ID = "tansu_cluster"  # what tansu reports unless told otherwise (the local stack never does)


@lru_cache(maxsize=16)
def idempotence_for(bootstrap: str) -> bool:
    """Whether producers to `bootstrap` use Kafka's idempotence (setting kafka_producer_idempotence).

    tansu 0.6 records an idempotent batch's sequence number before it writes the batch: killed -9
    between the two, the producer's retry is answered DuplicateSequenceNumber, which the client
    takes for success, and the batch is gone while the source has moved on (4,020 of 1.47M
    acknowledged messages over six kills, found by tests/chaos; 0 of 2.0M without idempotence).
    So against tansu the producers run without it: at least once (a retried batch may be written
    twice; the sinks keep the last version per key), in order (one request in flight).
    When the broker does not answer, off: the safe side.
    """
    setting = get_settings().kafka_producer_idempotence
    if setting != "auto":
        return setting == "on"
    try:
        cluster = AdminClient(client_config(bootstrap)).list_topics(timeout=5).cluster_id
    except KafkaException:
        return False
    return cluster != TANSU_CLUSTER_ID


class AckedProducer:
    """A producer whose `flush_acked()` returns only when every message was acknowledged.

    Idempotence (where the broker keeps it, see `idempotence_for`) stops retries after a lost ack
    from duplicating; without it one request in flight keeps the order. Callers store their source
    offsets only after `flush_acked()` returned.
    """

    def __init__(self, bootstrap: str, idempotent: bool | None = None, extra: dict | None = None):
        self.idempotent = idempotence_for(bootstrap) if idempotent is None else idempotent
        # Only failed deliveries call back: a Python callback per acknowledged message cost ~1 µs each.
        conf = {
            **client_config(bootstrap),
            "enable.idempotence": self.idempotent,
            "linger.ms": 5,
            "compression.type": "lz4",
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "delivery.report.only.error": True,
            # one callback for the producer, not one passed with every message (~0.5 µs each)
            "on_delivery": self._on_delivery,
        }
        if not self.idempotent:
            conf["max.in.flight.requests.per.connection"] = 1  # a retry cannot overtake the batch after it
        conf.update(extra or {})
        self._producer = Producer(conf)
        self._errors: list[str] = []

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None, headers=None) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers)
                return
            except BufferError:  # local queue full: serve deliveries, then try again
                self._producer.poll(0.1)

    def produce_many(self, topic: str, values: list[bytes], keys: list[bytes | None] | None = None) -> None:
        """produce() of each value (with the key at the same index), in order."""
        self.produce_columns([topic] * len(values), values, keys if keys is not None else [None] * len(values))

    def produce_columns(self, topics: list[str], values: list[bytes | None], keys: list[bytes | None]) -> None:
        """produce() of values[i] to topics[i] with keys[i], in order."""
        produce = self._producer.produce
        for topic, value, key in zip(topics, values, keys):
            try:
                produce(topic, value, key)
            except BufferError:
                self.produce(topic, value, key)  # waits for room

    def flush_acked(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} messages not acknowledged within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed("delivery failed: " + "; ".join(errors[:5]))


def batch_consumer(bootstrap: str, group: str, extra: dict | None = None) -> Consumer:
    """A consumer for stages that read micro-batches and commit by hand once their outputs are
    durable (runners, sinks): call `consumer.commit(asynchronous=False)` after a batch, which
    commits the positions of everything `consume` returned so far.

    `queued.min.messages` keeps a deep prefetch queue: with librdkafka's default a consumer
    read 244k messages/s from the local broker, with this 1.3M (the queue stays capped at 64 MB
    by `queued.max.messages.kbytes`). `max.partition.fetch.bytes` (default 1 MB) lets one fetch
    bring 50 MB of a partition: with the default, a topic of 500-byte records arrived at ~11 MB/s,
    one broker round trip per megabyte. A stage often starts before its input topic exists (a sink
    deployed with its source): `topic.metadata.refresh.interval.ms` of 5 s makes it see the topic
    within seconds of the first record, where librdkafka's default waited up to 5 minutes.
    """
    conf = {
        **client_config(bootstrap),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 52428800,
        "queued.min.messages": 500000,
        "topic.metadata.refresh.interval.ms": 5000,
    }
    conf.update(extra or {})
    return Consumer(conf)


def bounded_prefetch(batch_size: int, batches: int = 4) -> dict:
    """Read-ahead for a stage that processes batches (runners, sinks): `batches` batches or 8 MB
    of records, fetched 1 MB at a time. batch_consumer's own deep queue (500,000 messages, 64 MB,
    50 MB fetches) grew a sink from 228 to 496 MB while ClickHouse was frozen (librdkafka keeps a
    few hundred bytes beside each queued message). Two batches ahead ran dry, four did not. Once
    the queue is full librdkafka waits `fetch.queue.backoff.ms` (1 s by default) before it fetches
    again, and a stage empties four batches well within that: a bare consumer with these settings
    read 296k records/s, 490-560k with 10-50 ms (the deep queue: 610-665k). A fetch is bounded
    compressed: 16 MB of lz4 batches of repetitive rows came to over 100 MB in memory; 4 MB fetches
    held a sink's peak RSS ~30 MB lower at the same rate, and 1 MB fetches with an 8 MB queue another
    ~90 MB (a consumer reading a 20,000-record batch: 110 -> 36 MB over its imports; the ClickHouse
    sink's peak 447-454 -> 359-362 MB at 325-435k vs 374-396k rows/s, bench_clickhouse_sink)."""
    return {
        "queued.min.messages": max(batches * batch_size, 20_000),
        "queued.max.messages.kbytes": 8_192,
        "fetch.max.bytes": 1_048_576,
        "max.partition.fetch.bytes": 1_048_576,
        "fetch.queue.backoff.ms": 50,
    }


def consume_records(consumer: Consumer, limit: int, timeout: float) -> list:
    """A batch of records: what `consume` returned less its error events, which are logged (not the
    end of a partition, which is no error); librdkafka goes on fetching after them by itself."""
    messages = consumer.consume(limit, timeout)
    records = [m for m in messages if not m.error()]
    if len(records) < len(messages):
        for m in messages:
            error = m.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                log.warning("consuming %s [%s]: %s", m.topic(), m.partition(), error)
    return records


def consumed_positions(consumer: Consumer) -> list[TopicPartition]:
    """Where the consumer stands in each assigned partition it has read from: the offsets to
    commit once everything consumed so far is done (asked of the consumer, not of each message)."""
    return [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused while a batch is consumed and worked on. librdkafka
    hands over one Message object per record, each tracked by the collector: 20,000 of them set off
    dozens of collections per batch, some walking the whole heap, for objects that hold no cycles
    and die together with the batch (reference counting frees them). Measured on 1M records in
    20,000-record batches: a sink's consuming thread spent 1.3-1.4 us a record in consume, 0.4-0.5
    with the collector paused. Paused process-wide, briefly; left alone when something else turned
    it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class GroupMember:
    """A consumer's membership of its group, left only from a settled generation, and watched.

    tansu (the local broker) never finishes a rebalance that its leader left in the middle of
    (LeaveGroup between its JoinGroup and SyncGroup): every later member of the group waits for
    ever. A task moved between workers at that moment ran without reading a record (found by
    tests/chaos). So a stage closing its consumer first lets the current rebalance finish (its
    assignment arrived, and no revocation since), bounded, which costs nothing on Kafka. When the
    group still ends up wedged (the wait ran out), a watcher that sees no assignment for
    `stuck_seconds` asks `deploy.kafka_groups.free_wedged_group` to free it; it acts only on
    tansu's own evidence, so on Kafka it never does anything.
    """

    def __init__(
        self,
        consumer: Consumer,
        topics: list[str],
        settle_seconds: float = 30.0,
        bootstrap: str | None = None,
        group: str | None = None,
        stuck_seconds: float = 30.0,
        before_revoke: Callable[[], None] | None = None,
    ):
        self.consumer = consumer
        self.topics = topics
        self.before_revoke = before_revoke  # e.g. commit what is done while the partitions are ours
        self.settle_seconds = settle_seconds
        self.freed: list[str] = []  # departed leaders the watcher freed the group from
        self._unsettled_since: float | None = time.monotonic()  # None once an assignment arrived
        self._closed = threading.Event()
        consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked)
        if bootstrap and group:
            args = (bootstrap, group, stuck_seconds)
            threading.Thread(target=self._watch, args=args, name=f"group-watch-{group}", daemon=True).start()

    @property
    def settled(self) -> bool:
        return self._unsettled_since is None

    def _assigned(self, consumer, partitions) -> None:  # the client assigns them after this returns
        self._unsettled_since = None

    def _revoked(self, consumer, partitions) -> None:  # a rebalance began: not settled until it ends
        self._unsettled_since = time.monotonic()
        if self.before_revoke:
            self.before_revoke()

    def _watch(self, bootstrap: str, group: str, stuck_seconds: float) -> None:
        from deploy.kafka_groups import free_wedged_group

        while not self._closed.wait(min(5.0, stuck_seconds / 2)):
            since = self._unsettled_since
            if since is None or time.monotonic() - since < stuck_seconds:
                continue
            try:
                leader = free_wedged_group(bootstrap, group, self.topics)
            except Exception as exc:  # the broker may be down right now: the next round tries again
                log.info("could not check consumer group %s: %s", group, exc)
                continue
            if leader:
                self.freed.append(leader)
            if self._unsettled_since == since:  # still unsettled: give the freed (or slow) group its time again
                self._unsettled_since = time.monotonic()

    def close(self) -> None:
        self._closed.set()
        deadline = time.monotonic() + self.settle_seconds
        while not self.settled and time.monotonic() < deadline:
            self.consumer.poll(0.2)  # nothing is committed after this: the next member reads it again
        self.consumer.close()
