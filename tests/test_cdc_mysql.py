"""Log-based CDC from MariaDB's ROW binlog (AGG-02) through SourceRuntime, the real broker and registry.

Same checks as tests/test_cdc_pg.py: each key's `ver` must run without gap or repeat across
snapshot, hand-over, runtime restart and a lost server connection, and the replayed topic must
equal the table. The reconnect test restarts the real server;
HUILIU_TEST_RESTART_DB=0 kills the task's connections instead (a shared server).
"""

from __future__ import annotations

import json
import os
from datetime import time
from decimal import Decimal

import pymysql
import pytest

from connectors.relational.mysql_binlog import MysqlBinlogConfig, MysqlBinlogTask
from deploy.servers import ensure_mariadb_binlog, restart_mariadb
from tests.support.cdc import Writer, consume, drain_quiet, make_runtime, pump, pump_until, replay

RESTART_DB = os.environ.get("HUILIU_TEST_RESTART_DB", "1") != "0"


@pytest.fixture(scope="session", autouse=True)
def binlog_mariadb():
    ensure_mariadb_binlog()


def _connect(mysql_url: str, **kw) -> pymysql.Connection:
    db = mysql_url.rsplit("/", 1)[1].split("?")[0]
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database=db, charset="utf8mb4", **kw)


def _table(mysql_url: str, name: str, rows: int) -> None:
    conn = _connect(mysql_url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, ver int NOT NULL, note varchar(20), "
            "amount decimal(12, 2) DEFAULT 1.50, changed datetime(6) DEFAULT CURRENT_TIMESTAMP(6), "
            "took time DEFAULT '01:02:03', doc json) ENGINE=InnoDB"
        )
        cur.executemany(
            f"INSERT INTO {name} (id, ver, note, doc) VALUES (%s, 0, 'seed', '{{\"k\": 1}}')",
            [(i,) for i in range(1, rows + 1)],
        )
    conn.close()


def _db_state(mysql_url: str, name: str) -> dict[int, int]:
    conn = _connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, ver FROM {name}")
        state = dict(cur.fetchall())
    conn.close()
    return state


def _task(mysql_url: str, name: str, table: str, **kw) -> MysqlBinlogTask:
    return MysqlBinlogTask(MysqlBinlogConfig(name=name, url=mysql_url, system="cdcmy", tables=[table], **kw))


def _writer(mysql_url: str, table: str, first_new_id: int) -> Writer:
    return Writer(lambda: _connect(mysql_url, connect_timeout=5), table, first_new_id)


def test_snapshot_then_stream_no_gap_no_duplicate(stack_settings, mysql_url, tmp_path):
    _table(mysql_url, "acct", 3000)
    task = _task(mysql_url, "my-handover", "acct", batch_size=300)
    runtime = make_runtime(stack_settings, task, f"sqlite:///{tmp_path}/control.db")
    writer = _writer(mysql_url, "acct", 3001)
    writer.start()  # writes before, during and after the snapshot
    try:
        pump_until(runtime, lambda: task._snap is None, 40.0)
        writer_was = writer.commits
        assert task._snap is None, "snapshot did not finish"
        pump_until(runtime, lambda: writer.commits >= writer_was + 50, 40.0)  # and stream with it going
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime)
    events = consume(stack_settings, runtime.topic_of(task.tables["acct"]))
    assert writer.commits >= 50
    assert replay(events) == _db_state(mysql_url, "acct")
    streamed = [e for e in events if e["op"] != "r"]
    assert streamed and all(e["transaction"] for e in streamed)
    assert len({e["source"]["position"] for e in streamed}) == len(streamed)
    seqs = [e["source"]["sequence"] for e in streamed]
    assert seqs == sorted(seqs) and min(seqs) > max(e["source"]["sequence"] for e in events if e["op"] == "r")
    snap = next(e for e in events if e["op"] == "r")["after"]  # types survive both paths into Avro
    assert (snap["took"], json.loads(snap["doc"]), snap["amount"]) == (time(1, 2, 3), {"k": 1}, Decimal("1.50"))
    new = next(e for e in streamed if e["op"] == "c")["after"]
    assert (new["took"], new["doc"], new["amount"], new["note"]) == (time(1, 2, 3), None, Decimal("1.50"), "new")
    runtime.task.close()


def test_restart_resumes_from_stored_offsets(stack_settings, mysql_url, tmp_path):
    _table(mysql_url, "acct2", 300)
    control = f"sqlite:///{tmp_path}/control.db"
    first = make_runtime(stack_settings, _task(mysql_url, "my-restart", "acct2", batch_size=50), control)
    writer = _writer(mysql_url, "acct2", 301)
    conn = _connect(mysql_url)
    drain_quiet(first, quiet=0.5)
    for _ in range(60):
        writer.step(conn.cursor())
        conn.commit()
    first.run_once()  # part of the changes published (batch_size 50), then the process "dies"
    first.task.close()
    for _ in range(60):  # changes while the connector is down
        writer.step(conn.cursor())
        conn.commit()
    conn.close()
    second = make_runtime(stack_settings, _task(mysql_url, "my-restart", "acct2"), control)
    second.topic_prefix = first.topic_prefix
    drain_quiet(second)
    events = consume(stack_settings, first.topic_of(second.task.tables["acct2"]))
    assert replay(events) == _db_state(mysql_url, "acct2")
    second.task.close()


@pytest.mark.serial  # restarts the machine's MariaDB (unless HUILIU_TEST_RESTART_DB=0)
def test_source_restart_during_streaming(stack_settings, mysql_url, tmp_path):
    _table(mysql_url, "acct3", 300)
    task = _task(mysql_url, "my-reconnect", "acct3")
    runtime = make_runtime(stack_settings, task, f"sqlite:///{tmp_path}/control.db")
    drain_quiet(runtime, quiet=0.5)
    writer = _writer(mysql_url, "acct3", 301)
    writer.start()
    try:
        pump(runtime, 1.5)
        before = writer.commits
        if RESTART_DB:
            restart_mariadb()
        else:  # kill the binlog dump and every session of the test database, as a restart would
            admin = _connect(mysql_url, autocommit=True)
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist WHERE id <> connection_id() "
                    "AND (db = database() OR command LIKE 'Binlog Dump%%')"
                )
                ids = [r[0] for r in cur.fetchall()]
                for pid in ids:
                    try:
                        cur.execute(f"KILL CONNECTION {pid}")
                    except pymysql.err.OperationalError:
                        pass  # already gone
            admin.close()
            assert ids
        pump_until(runtime, lambda: writer.commits > before + 30, 40.0)
        pump(runtime, 1.0)
        assert writer.commits > before + 30, "the writer did not get going again"
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime, quiet=3.0)
    events = consume(stack_settings, runtime.topic_of(task.tables["acct3"]))
    assert replay(events) == _db_state(mysql_url, "acct3")
    task.close()
