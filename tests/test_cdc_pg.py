"""Log-based CDC from PostgreSQL (AGG-02) through SourceRuntime, the real broker and registry.

Every captured row carries a version column `ver` the writers bump by one per update, so the
events of a key must read r/c(v0), u(v0->v0+1), u(v0+1->v0+2)..., d(last): a lost change is a
gap, a duplicate a repeat. The topic replayed this way must equal the table at the end.
The reconnect test restarts the real server (pg_ctlcluster); HUILIU_TEST_RESTART_DB=0 kills the
task's connections server-side instead (what a restart looks like to the client), for machines
where other sessions share the server and must not be disturbed.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
import uuid

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.relational.pg_logical import PgLogicalConfig, PgLogicalTask
from connectors.runtime import SourceRuntime
from deploy.servers import PG_ADMIN, PG_CLUSTER, ensure_pg_logical
from schemas.serde import WireCodec
from tests.conftest import PG_TEST_DB as TEST_DB  # noqa: E402 - the session's own database

RESTART_DB = os.environ.get("HUILIU_TEST_RESTART_DB", "1") != "0"


def _drop_test_slots() -> None:
    # a slot left behind would keep DROP DATABASE (the pg_url fixture) from working next session
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active",
            (TEST_DB,),
        )


@pytest.fixture(scope="session", autouse=True)
def logical_pg():
    ensure_pg_logical()
    _drop_test_slots()
    yield
    _drop_test_slots()


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --- shared helpers (the MySQL tests use them too) ---------------------------------------------
def make_runtime(settings, task, control_db: str) -> SourceRuntime:
    return SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=control_db,
        topic_prefix=f"cdc{uuid.uuid4().hex[:6]}",
    )


def pump(runtime: SourceRuntime, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if not runtime.run_once():
            time.sleep(0.05)


def pump_until(runtime: SourceRuntime, done, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not done():
        if not runtime.run_once():
            time.sleep(0.05)


def drain_quiet(runtime: SourceRuntime, quiet: float = 1.5, timeout: float = 40.0) -> None:
    """Run until nothing new arrived for `quiet` seconds (covers a reconnect backoff)."""
    deadline, last = time.time() + timeout, time.time()
    while time.time() < deadline and time.time() - last < quiet:
        if runtime.run_once():
            last = time.time()
        else:
            time.sleep(0.05)


def consume(settings, topic: str, idle: float = 2.5, timeout: float = 60.0) -> list[dict]:
    codec = WireCodec(settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"cdc-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join: tansu's is slow
    out: list[dict] = []
    deadline, last = time.time() + timeout, time.time()
    try:
        while time.time() < deadline and time.time() - last < idle:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(codec.decode(msg.value())[1])
            last = time.time()
    finally:
        consumer.close()
    return out


def replay(events: list[dict], key: str = "id") -> dict[int, int]:
    """Apply the events in topic order, asserting each key's versions run without gap or repeat."""
    state: dict[int, int] = {}
    seen: set[int] = set()
    for ev in events:
        img = ev["after"] if ev["after"] is not None else ev["before"]
        k, op = img[key], ev["op"]
        if op in ("r", "c"):
            assert k not in state and (op == "r" or k not in seen), f"key {k}: {op} twice: {ev['source']}"
            assert op == "r" or ev["after"]["ver"] == 0, f"key {k}: insert with ver {ev['after']['ver']}"
            state[k] = ev["after"]["ver"]
        else:
            assert k in state, f"key {k}: {op} without an earlier image (lost insert?)"
            assert ev["before"]["ver"] == state[k], f"key {k}: before ver {ev['before']['ver']} != {state[k]}"
            if op == "u":
                assert ev["after"]["ver"] == state[k] + 1, f"key {k}: ver {state[k]} -> {ev['after']['ver']}"
                state[k] = ev["after"]["ver"]
            else:
                del state[k]
        seen.add(k)
    return state


class Writer(threading.Thread):
    """Random small transactions (insert new key / bump ver / delete); survives lost connections."""

    def __init__(self, connect, table: str, first_new_id: int, low_id: int = 10, pause: float = 0.002):
        super().__init__(daemon=True)
        self.connect, self.table, self.next_id, self.low_id, self.pause = connect, table, first_new_id, low_id, pause
        self.stop, self.commits, self.rnd = threading.Event(), 0, random.Random(7)

    def step(self, cur) -> None:
        t, k = self.table, self.rnd.randint(self.low_id, self.next_id - 1)
        choice = self.rnd.random()
        if choice < 0.3:
            cur.execute(f"INSERT INTO {t} (id, ver, note) VALUES ({self.next_id}, 0, 'new')")
            self.next_id += 1
        elif choice < 0.9:
            cur.execute(f"UPDATE {t} SET ver = ver + 1, note = 'u' WHERE id = {k}")
        else:
            cur.execute(f"DELETE FROM {t} WHERE id = {k}")

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or self.connect()
                cur = conn.cursor()
                for _ in range(self.rnd.randint(1, 3)):
                    self.step(cur)
                conn.commit()
                self.commits += 1
            except Exception:  # server went away: reconnect; the outcome of that commit does not matter
                conn = None
                time.sleep(0.2)
            time.sleep(self.pause)


# --- PostgreSQL ----------------------------------------------------------------------------
def _table(pg_url: str, name: str, rows: int) -> None:
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, ver int NOT NULL, note text, "
            "amount numeric(12, 2) DEFAULT 1.50, changed timestamp DEFAULT now())"
        )
        conn.execute(f"INSERT INTO {name} (id, ver, note) SELECT g, 0, 'seed' FROM generate_series(1, {rows}) g")


def _db_state(pg_url: str, name: str) -> dict[int, int]:
    with psycopg.connect(libpq(pg_url)) as conn:
        return dict(conn.execute(f"SELECT id, ver FROM {name}").fetchall())


def _config(pg_url: str, name: str, table: str, **kw) -> PgLogicalConfig:
    return PgLogicalConfig(name=name, url=pg_url, system="cdcpg", tables=[table], **kw)


def _writer(pg_url: str, table: str, first_new_id: int) -> Writer:
    return Writer(lambda: psycopg.connect(libpq(pg_url)), table, first_new_id)


class HandOverTask(PgLogicalTask):
    """Puts one transaction on each side of the hand-over, deterministically."""

    def _begin_snapshot(self) -> None:
        url = libpq(self.config.url)
        t = self.config.tables[0]
        in_flight = psycopg.connect(url)  # open across the snapshot: invisible to it, must be streamed
        in_flight.execute(f"UPDATE {t} SET ver = ver + 1 WHERE id = 1")
        with psycopg.connect(url, autocommit=True) as conn:  # after the slot, before the snapshot: skipped
            conn.execute(f"UPDATE {t} SET ver = ver + 1 WHERE id = 2")
        super()._begin_snapshot()
        in_flight.commit()
        in_flight.close()


def test_snapshot_then_stream_no_gap_no_duplicate(stack_settings, pg_url, tmp_path):
    _table(pg_url, "acct", 3000)
    task = HandOverTask(_config(pg_url, "pg-handover", "acct", batch_size=300))
    runtime = make_runtime(stack_settings, task, f"sqlite:///{tmp_path}/control.db")
    writer = _writer(pg_url, "acct", 3001)
    writer.start()  # writes before, during and after the snapshot
    try:
        pump_until(runtime, lambda: task._snap is None, 40.0)
        writer_was = writer.commits
        assert task._snap is None, "snapshot did not finish"
        pump_until(runtime, lambda: writer.commits >= writer_was + 100, 40.0)  # and stream with it going
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime)
    topic = runtime.topic_of(next(iter(task.tables.values())))
    events = consume(stack_settings, topic)
    assert writer.commits >= 100
    assert replay(events) == _db_state(pg_url, "acct")
    assert task.handover_skipped >= 1
    by_key = {}
    for ev in events:
        by_key.setdefault((ev["after"] or ev["before"])["id"], []).append(ev)
    assert [(e["op"], e["after"]["ver"]) for e in by_key[2]] == [("r", 1)]  # in the snapshot, not streamed
    assert [(e["op"], e["after"]["ver"]) for e in by_key[1]] == [("r", 0), ("u", 1)]
    streamed = [e for e in events if e["op"] != "r"]
    assert all(e["transaction"] and e["source"]["sequence"] > 0 for e in streamed)
    assert len({e["source"]["position"] for e in streamed}) == len(streamed)
    runtime.task.drop_slot()
    runtime.task.close()


def test_restart_resumes_from_stored_offsets(stack_settings, pg_url, tmp_path):
    _table(pg_url, "acct2", 300)
    control = f"sqlite:///{tmp_path}/control.db"
    first = make_runtime(stack_settings, PgLogicalTask(_config(pg_url, "pg-restart", "acct2")), control)
    drain_quiet(first, quiet=0.5)
    writer = _writer(pg_url, "acct2", 301)
    with psycopg.connect(libpq(pg_url)) as conn:
        for _ in range(100):
            writer.step(conn.cursor())
            conn.commit()
    first.task._advance = lambda lsn: None  # crash window: offsets stored, slot never confirmed
    drain_quiet(first, quiet=0.5)
    first.task.close()
    with psycopg.connect(libpq(pg_url)) as conn:  # changes while the connector is down
        for _ in range(100):
            writer.step(conn.cursor())
            conn.commit()
    second = make_runtime(stack_settings, PgLogicalTask(_config(pg_url, "pg-restart", "acct2")), control)
    second.topic_prefix = first.topic_prefix
    drain_quiet(second)
    topic = first.topic_of(next(iter(second.task.tables.values())))
    assert replay(consume(stack_settings, topic)) == _db_state(pg_url, "acct2")
    second.task.drop_slot()
    second.task.close()


def test_source_restart_during_streaming(stack_settings, pg_url, tmp_path):
    _table(pg_url, "acct3", 300)
    task = PgLogicalTask(_config(pg_url, "pg-reconnect", "acct3"))
    runtime = make_runtime(stack_settings, task, f"sqlite:///{tmp_path}/control.db")
    drain_quiet(runtime, quiet=0.5)
    writer = _writer(pg_url, "acct3", 301)
    writer.start()
    try:
        pump(runtime, 1.5)
        before = writer.commits
        if RESTART_DB:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "restart"], check=True)
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (TEST_DB,),
                ).fetchone()[0]
            assert killed >= 1
        pump_until(runtime, lambda: writer.commits > before + 50, 40.0)
        pump(runtime, 1.0)
        assert writer.commits > before + 50, "the writer did not get going again"
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime, quiet=3.0)
    assert task.backoff.delay == 0.0 and task.conn is not None, "task did not reconnect"
    topic = runtime.topic_of(next(iter(task.tables.values())))
    assert replay(consume(stack_settings, topic)) == _db_state(pg_url, "acct3")
    task.drop_slot()
    task.close()


def test_idle_slot_still_advances_with_heartbeat(pg_url):
    """Only other tables change: the heartbeat lets the slot confirm past their WAL."""
    _table(pg_url, "quiet", 5)
    _table(pg_url, "busy", 5)
    task = PgLogicalTask(_config(pg_url, "pg-heartbeat", "quiet", heartbeat_seconds=0.2))
    task.start({})
    batch = task.poll()
    task.committed(batch.offsets)
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        for _ in range(20):
            conn.execute("UPDATE busy SET ver = ver + 1")
        written = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
    deadline = time.time() + 20
    while time.time() < deadline and task.confirmed < written:
        batch = task.poll()
        assert not batch.events
        task.committed(batch.offsets)
        time.sleep(0.1)
    assert task.confirmed >= written
    task.drop_slot()
    task.close()


def test_xid_visibility_matches_the_snapshot_rules():
    from connectors.relational.pg_logical import _xid_visible

    snap = {"xmin": 100, "xmax": 105, "xip": [101, 103]}
    assert all(_xid_visible(x, snap) for x in (99, 102, 104))  # committed before the snapshot
    assert not any(_xid_visible(x, snap) for x in (101, 103, 105, 200))  # in progress or later
    epoch = 3 << 32  # 32-bit xids from pgoutput against 64-bit snapshot xids, across a wrap-around
    assert _xid_visible(0xFFFFFFF0, {"xmin": epoch + 5, "xmax": epoch + 10, "xip": []})
    assert not _xid_visible(11, {"xmin": epoch + 5, "xmax": epoch + 10, "xip": []})
