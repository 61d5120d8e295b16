"""The sink's writer thread (sinks.writer) against the real broker and ClickHouse: the next batch is
read and decoded while one is being written, an offset is committed only once its batch is in
ClickHouse, and a failed write stops the sink with its message and nothing committed beyond the
last written batch, so a restart writes the rest exactly once."""

from __future__ import annotations

import threading
import time
import uuid

import sqlalchemy.types as sa
from confluent_kafka import Consumer, TopicPartition

from connectors.base import CapturedTable
from connectors.runtime import SourceRuntime
from deploy.kafka_security import client_config
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from sinks.base import FatalSinkError, SinkError
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask, backend_for
from sinks.runtime import SinkRunner
from sinks.writer import Batch, BatchWriter
from tests.sources import ListSourceTask, topic_ends, upsert

ROWS = 5000


class HeldTask(ClickHouseSinkTask):
    """The real ClickHouse task, with its second write held until released and its third failing."""

    def __init__(self, config, schema_of):
        super().__init__(config, schema_of)
        self.sizes: list[int] = []  # rows of each batch handed to the task
        self.holding, self.release = threading.Event(), threading.Event()

    def put_frames(self, frames):
        self.sizes.append(sum(f.frame.height for f in frames))
        super().put_frames(frames)

    def flush(self):
        if len(self.sizes) == 2:
            self.holding.set()
            assert self.release.wait(60)
        if len(self.sizes) == 3:
            self._pending.clear()
            raise FatalSinkError("third batch refused (injected)")
        super().flush()


def _wait(predicate, timeout=60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _committed(settings, group: str, topic: str, partitions: list[int]) -> int:
    """The group's committed offsets summed over the topic's partitions (0 where none is)."""
    reader = Consumer({**client_config(settings.kafka_bootstrap), "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in partitions]
        return sum(max(tp.offset, 0) for tp in reader.committed(parts, timeout=10))
    finally:
        reader.close()


def _count(settings, table: str, final: bool = True) -> int:
    backend = backend_for(settings.clickhouse_url)
    try:
        if not backend.execute(f"EXISTS TABLE {table}")[0][0]:
            return 0
        return backend.execute(f"SELECT count() FROM {table}{' FINAL' if final else ''}")[0][0]
    finally:
        backend.close()


def test_offsets_follow_written_batches_and_a_failed_write_commits_nothing_beyond(stack_settings):
    name = f"ovl_{uuid.uuid4().hex[:6]}"
    table = CapturedTable(
        "ledger", name, (ColumnSpec("id", sa.BigInteger(), False, True), ColumnSpec("name", sa.String(20))), "fin"
    )
    codec = WireCodec(stack_settings.schema_registry_url)
    source = SourceRuntime(
        ListSourceTask(f"src-{name}", [upsert(table, {"id": i, "name": f"n{i}"}, i) for i in range(1, ROWS + 1)]),
        bootstrap=stack_settings.kafka_bootstrap,
        codec=codec,
        control_db_url=stack_settings.resolved_control_db_url,
    )
    source.drain()
    topic, group = source.topic_of(table), f"sink-{name}"
    partitions = list(topic_ends(stack_settings.kafka_bootstrap, topic))

    def committed() -> int:
        return _committed(stack_settings, group, topic, partitions)

    def runner(task) -> SinkRunner:
        return SinkRunner(
            stack_settings.kafka_bootstrap,
            group,
            [topic],
            codec,
            task,
            batch_size=1000,
            batch_seconds=1.0,
            consumer_extra={"session.timeout.ms": 6000},
        )

    config = ClickHouseSinkConfig(url=stack_settings.clickhouse_url, table=name)
    task = HeldTask(config, codec.schema_of)
    first = runner(task)
    decoded: list[int] = []
    decode = first._decode
    first._decode = lambda messages: (decoded.append(len(messages)), decode(messages))[1]
    failure: list[BaseException] = []

    def run():
        try:
            first.run(threading.Event())
        except BaseException as exc:  # noqa: BLE001 - checked below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert task.holding.wait(90), "the second batch never reached the writer"
        # While the second batch is being written, the consumer thread reads and decodes the third.
        assert _wait(lambda: len(decoded) == 3), decoded
        written = task.sizes[0]
        assert _wait(lambda: committed() == written)
        time.sleep(1.5)  # the third batch is decoded and waits: still nothing committed past the first
        assert committed() == written == _count(stack_settings, name)
    finally:
        task.release.set()
    thread.join(60)
    assert not thread.is_alive()

    assert len(failure) == 1 and isinstance(failure[0], FatalSinkError), failure
    assert first.status.state == "failed" and "third batch refused" in first.status.last_error
    written = sum(task.sizes[:2])
    assert first.status.written == written
    assert committed() == written == _count(stack_settings, name)

    # Restarted with the same group: it resumes after the last written batch, nothing written twice.
    second = runner(ClickHouseSinkTask(config, codec.schema_of))
    stop = threading.Event()
    thread = threading.Thread(target=lambda: second.run(stop), daemon=True)
    thread.start()
    try:
        assert _wait(lambda: _count(stack_settings, name) == ROWS, 90)
        assert _wait(lambda: committed() == ROWS)
    finally:
        stop.set()
        thread.join(30)
    assert _count(stack_settings, name, final=False) == ROWS  # every row once, not just once in FINAL
    assert second.status.state == "stopped" and second.status.written == ROWS - written


def test_a_batch_finished_in_the_background_becomes_committable_only_once_its_wait_returned():
    """A store whose write returns a wait (the HDFS sink: files uploaded on a thread of its own) is
    handed the next batch before the writer waits for the one before; a batch is counted and its
    offsets become committable only once its wait returned True, and a wait that fails is retried."""
    log: list[str] = []
    durable = {1: threading.Event(), 2: threading.Event()}
    refusals = [SinkError("upload refused (injected)")]

    def write(n: int):
        log.append(f"put {n}")

        def wait(timeout: float | None) -> bool:
            if not durable[n].wait(timeout):
                return False
            if n == 2 and refusals:
                raise refusals.pop()
            log.append(f"durable {n}")
            return True

        return wait

    degraded: list[str] = []
    writer = BatchWriter(
        "bg", write, lambda batch, _s: log.append(f"written {batch.count}"), degraded.append, threading.Event()
    )

    def offsets(n: int) -> list[TopicPartition]:
        return [TopicPartition("t", 0, 10 * n)]

    def committable() -> list[TopicPartition] | None:
        got: list = []
        assert _wait(lambda: bool(got.append(writer.committable()) or got[-1]), 10), log
        return got[-1]

    try:
        assert writer.hand_over(Batch(1, 1, offsets(1)), 5)
        assert writer.hand_over(Batch(2, 2, offsets(2)), 5)  # taken although batch 1 is not durable
        assert _wait(lambda: "put 2" in log, 10)
        time.sleep(0.2)
        assert writer.committable() is None and log == ["put 1", "put 2"]
        durable[1].set()
        assert [(tp.topic, tp.offset) for tp in committable()] == [("t", 10)]
        assert writer.committable() is None  # batch 2 is still being finished
        durable[2].set()
        assert [(tp.topic, tp.offset) for tp in committable()] == [("t", 20)]
        assert degraded == ["upload refused (injected)"] and not writer.retrying
        assert log == ["put 1", "put 2", "durable 1", "written 1", "durable 2", "written 2"]
    finally:
        for event in durable.values():
            event.set()
        writer.close()
    writer.check()
