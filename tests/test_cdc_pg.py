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
import subprocess
import threading
import time

import psycopg
import pytest

from connectors.relational.pg_logical import PgLogicalConfig, PgLogicalTask
from deploy.servers import PG_ADMIN, PG_CLUSTER, ensure_pg_logical
from tests.conftest import PG_TEST_DB as TEST_DB  # noqa: E402 - the session's own database
from tests.support.cdc import Writer, consume, drain_quiet, libpq, make_runtime, pump, pump_until, replay

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


@pytest.mark.serial  # restarts the machine's PostgreSQL (unless HUILIU_TEST_RESTART_DB=0)
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
        if RESTART_DB:  # restarted while the capture runs, as a worker would go on polling
            took = []
            restart = threading.Thread(target=lambda: took.append(_timed_restart()))
            restart.start()
            while restart.is_alive():
                pump(runtime, 0.3)
            # a walsender whose client never confirms the WAL it sent holds a fast shutdown until
            # wal_sender_timeout (1 min here): the capture confirms a keepalive's end of WAL
            assert took and took[0] < 20, f"the restart took {took}s: the capture's walsender held the shutdown"
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


def _timed_restart() -> float:
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "restart"], check=True)
    return time.monotonic() - started


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
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:  # the server took the stream's status update
        server_confirmed = conn.execute(
            "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s", (task.slot,)
        ).fetchone()[0]
    assert server_confirmed == task.confirmed
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
