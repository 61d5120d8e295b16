"""The snapshot's pipeline (issue 19): PostgreSQL chunks read one ahead on a thread
(connectors.relational.prefetch) and offsets stored behind the producer (connectors.acks). Order
is kept, an error arrives in its turn, and a crash resumes after the last acknowledged chunk with
nothing lost and nothing twice."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from connectors.acks import AcksBehind
from connectors.relational.prefetch import ChunkPrefetch
from connectors.relational.snapshot_mode import SnapshotSourceConfig, SnapshotSourceTask
from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec
from tests.sources import CrashAfter, consume_settled


def test_chunks_read_ahead_come_in_order_and_a_read_error_in_its_turn():
    reads: list[int | None] = []

    def read(after):
        reads.append(after)
        start = 0 if after is None else after
        if start == 30:
            raise OSError("connection lost")
        return list(range(start + 1, start + 11)), start + 10

    prefetch = ChunkPrefetch(read, None, depth=1)
    assert prefetch.take() == (None, list(range(1, 11)))
    assert prefetch.take() == (10, list(range(11, 21)))
    assert prefetch.take() == (20, list(range(21, 31)))
    with pytest.raises(OSError, match="connection lost"):
        prefetch.take()
    prefetch.close()
    assert reads == [None, 10, 20, 30]


def test_read_ahead_stops_at_the_last_chunk_and_close_frees_a_waiting_reader():
    last = ChunkPrefetch(lambda after: (["only"], None), None)
    assert last.take() == (None, ["only"])
    with pytest.raises(LookupError):
        last.take()
    last.close()

    endless = ChunkPrefetch(lambda after: ([after], (after or 0) + 1), None, depth=1)
    deadline = time.time() + 5
    while endless._queue.qsize() < 1 and time.time() < deadline:  # the reader now waits on a full queue
        time.sleep(0.01)
    started = time.time()
    endless.close()
    assert time.time() - started < 2 and not endless._thread.is_alive()


def test_offsets_are_stored_in_order_and_none_after_a_failed_delivery():
    stored: list[dict] = []
    release = threading.Event()

    def store(offsets):
        release.wait(5)
        if offsets["t"]["n"] == 2:
            raise RuntimeError("delivery failed: broker down")
        stored.append(offsets)

    acks = AcksBehind(store, behind=1)
    acks.submit({"t": {"n": 1}})
    acks.submit({"t": {"n": 2}})  # queued while the first is stored
    blocked = threading.Thread(target=acks.submit, args=({"t": {"n": 3}},))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # a third waits: at most one batch behind the one being stored
    release.set()
    blocked.join(5)
    with pytest.raises(RuntimeError, match="broker down"):
        acks.wait()
    with pytest.raises(RuntimeError, match="broker down"):
        acks.submit({"t": {"n": 4}})
    acks.close()
    assert stored == [{"t": {"n": 1}}]  # neither 3 nor 4 after the failure of 2


def test_pipelined_snapshot_crashes_and_resumes_after_the_last_acknowledged_chunk(
    pg_url, stack_settings, tmp_path, monkeypatch
):
    table = f"pipe_{uuid.uuid4().hex[:6]}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(10,2))"))
        conn.execute(
            text(f"INSERT INTO {table} SELECT i, 'n' || i, i / 4.0 FROM generate_series(1, 2450) i ORDER BY random()")
        )
    engine.dispose()
    config = SnapshotSourceConfig(
        name=f"pipe-{table}", url=pg_url, system=table, chunk_size=100, tables={"include": [f"*.{table}"]}
    )
    reads_after: list = []
    original = SnapshotSourceTask._read_chunk

    def counted(self, unit, last):
        reads_after.append(last)
        return original(self, unit, last)

    monkeypatch.setattr(SnapshotSourceTask, "_read_chunk", counted)

    def runtime(task) -> SourceRuntime:
        return SourceRuntime(
            task,
            bootstrap=stack_settings.kafka_bootstrap,
            codec=WireCodec(stack_settings.schema_registry_url),
            control_db_url=f"sqlite:///{tmp_path / 'control.db'}",
        )

    first = runtime(CrashAfter(SnapshotSourceTask(config), 7, pipelined=True))
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.drain()
    first.task.close()
    (offset,) = first.offsets.load_all().values()
    # all 7 published chunks acknowledged and stored; the 8th was read ahead, never published
    assert offset["chunk_last_key"] == [700] and offset["rows"] == 700 and not offset["done"]
    assert [r if r is None else r[0] for r in reads_after[:8]] == [None, 100, 200, 300, 400, 500, 600, 700]

    read_first = len(reads_after)
    task = SnapshotSourceTask(config)
    second = runtime(task)
    assert second.drain() == 1750
    task.close()
    assert task.finished and second.offsets.load_all()[task.units[0].captured.partition]["rows"] == 2450
    assert reads_after[read_first:] == [[k] for k in range(700, 2401, 100)]  # after the stored chunk, in order
    events = consume_settled(stack_settings, second.topic_of(task.units[0].captured), 2450)
    assert [e["after"]["id"] for e in events] == list(range(1, 2451))  # key order, each row once
    assert events[41]["after"] == {"id": 42, "name": "n42", "amount": Decimal("10.50")}
