"""Schema evolution in the running stream (issue 15), against the real PostgreSQL, MariaDB, broker,
registry and ClickHouse.

A column added at the source while changes flow: rows before and after arrive (each key's versions
replayed without gap or repeat), the new column reaches ClickHouse, the registry holds a new
subject version, the message centre and the catalogue know. A narrowed column stops the capture
with an error naming table, column and both types, the events before it published and nothing
after it; accepting the change resumes the capture with the rows after it.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pymysql
import pytest
import sqlalchemy.types as sa
from sqlalchemy import create_engine, text

from api.alerts.rules import KINDS
from connectors.relational.diff_mode import DiffSourceConfig, DiffSourceTask
from connectors.relational.mysql_binlog import MysqlBinlogConfig, MysqlBinlogTask
from connectors.relational.pg_logical import PgLogicalConfig, PgLogicalTask
from connectors.relational.timestamp_mode import TimestampSourceConfig, TimestampSourceTask
from connectors.relational.trigger_mode import TriggerSourceConfig, TriggerSourceTask
from connectors.schema_change_store import SchemaChangeStore
from connectors.schema_changes import ColumnChange, SchemaChangeHeld, diff_columns
from deploy.control import engine_for
from schemas.catalog.relational import harvest_relational
from schemas.catalog.store import CatalogStore
from schemas.catalog.urns import relational_urn
from schemas.naming import topic_name, value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask, client_from_url
from sinks.clickhouse.evolve import holds
from sinks.runtime import SinkRunner
from tests.connect_cluster import TopicReader, api_and_worker, wait_until
from tests.support.cdc import Writer, consume, drain_quiet, libpq, make_runtime, pump, replay

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def own_db_settings(stack_settings):
    """The session's servers with a PostgreSQL control DB of this module's own, for its API and
    worker (tests.connect_cluster.own_control_db: workers run every connector of their control DB)."""
    from tests.conftest import PG_ADMIN, PORT_BASE

    db = f"huiliu_ctl_{PORT_BASE}_evo"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    yield stack_settings.model_copy(update={"control_db_url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"})
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@pytest.fixture
def no_slot_left(pg_url):
    """A slot a failed test leaves would keep the next session's DROP DATABASE from working."""
    yield
    from deploy.servers import PG_ADMIN
    from tests.conftest import PG_TEST_DB

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active",
            (PG_TEST_DB,),
        )


# --- what counts as which change (pure logic) --------------------------------------------------
def test_changes_are_named_added_dropped_widened_narrowed():
    old = (
        ColumnSpec("id", sa.Integer(), False, True),
        ColumnSpec("score", sa.BigInteger()),
        ColumnSpec("name", sa.String(20)),
        ColumnSpec("amount", sa.Numeric(10, 2)),
        ColumnSpec("gone", sa.Text()),
    )
    new = (
        ColumnSpec("id", sa.BigInteger(), False, True),
        ColumnSpec("score", sa.Integer()),
        ColumnSpec("name", sa.String(40)),
        ColumnSpec("amount", sa.Numeric(12, 2)),
        ColumnSpec("district", sa.String(6)),
    )
    got = {c.column: c for c in diff_columns(old, new)}
    assert {k: c.kind for k, c in got.items()} == {
        "gone": "dropped",
        "id": "widened",
        "score": "narrowed",
        "name": "widened",
        "amount": "widened",
        "district": "added",
    }
    assert got["score"].describe() == "column score narrowed: BIGINT -> INTEGER"
    assert [c.column for c in got.values() if not c.compatible] == ["score"]
    dropped_key = diff_columns(old, old[1:])
    assert dropped_key == [ColumnChange("dropped", "id", "INTEGER NOT NULL", None, True)]
    assert not dropped_key[0].compatible
    assert diff_columns(old, old) == []
    # NOT NULL added narrows (old rows may hold nulls); NOT NULL dropped widens
    assert diff_columns(old[1:2], (ColumnSpec("score", sa.BigInteger(), False),))[0].kind == "narrowed"
    assert diff_columns(old[:1], (ColumnSpec("id", sa.Integer(), True, True),))[0].kind == "widened"
    assert diff_columns(old[4:], (ColumnSpec("gone", sa.Date()),))[0].kind == "changed"


def test_clickhouse_holds_only_wider_types():
    assert holds("Int64", "Int32") and holds("Nullable(Int64)", "Int32") and holds("Float64", "Float32")
    assert holds("Nullable(Decimal(12, 2))", "Nullable(Decimal(10, 2))")
    assert not holds("Int32", "Int64") and not holds("Int64", "Nullable(Int64)") and not holds("String", "Int32")
    assert not holds("Decimal(12, 2)", "Decimal(12, 4)")


# --- PostgreSQL log CDC ------------------------------------------------------------------------
def _pg_table(pg_url: str, name: str, rows: int) -> None:
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, ver int NOT NULL, note text, score bigint)")
        conn.execute(
            f"INSERT INTO {name} (id, ver, note, score) SELECT g, 0, 'seed', g FROM generate_series(1, {rows}) g"
        )


def _pg(pg_url: str, sql: str):
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else None


def _sink(settings, topic: str, table: str) -> SinkRunner:
    codec = WireCodec(settings.schema_registry_url)
    task = ClickHouseSinkTask(ClickHouseSinkConfig(url=settings.clickhouse_url, table=table), codec.schema_of)
    return SinkRunner(
        settings.kafka_bootstrap, f"sink-{table}", [topic], codec, task, consumer_extra={"session.timeout.ms": 6000}
    )


def _sink_until(runner: SinkRunner, predicate, timeout: float = 90.0) -> bool:
    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run(stop), daemon=True)
    thread.start()
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and thread.is_alive():
            if predicate():
                return True
            time.sleep(0.3)
        return predicate()
    finally:
        stop.set()
        thread.join(30)


def _ch_rows(settings, table: str, columns: str) -> list[tuple]:
    ch = client_from_url(settings.clickhouse_url)
    try:
        if not ch.execute(f"EXISTS TABLE {table}")[0][0]:
            return []
        return ch.execute(f"SELECT {columns} FROM {table} FINAL WHERE _deleted = 0 ORDER BY id")
    finally:
        ch.disconnect()


def _held(runtime, timeout: float = 30.0) -> SchemaChangeHeld:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if not runtime.run_once():
                time.sleep(0.05)
        except SchemaChangeHeld as exc:
            return exc
    raise AssertionError("the capture did not stop at the schema change")


def _messages(control: str) -> list[tuple[str, str, str]]:
    engine = create_engine(control)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT category, level, subject FROM messages ORDER BY id"))]
    finally:
        engine.dispose()


def _harvest(url: str, control: str, system: str, schema: str | None, table: str) -> None:
    source = create_engine(url)
    try:
        harvest = harvest_relational(source, url, system, [schema] if schema else None, [f"{schema}.{table}"])
    finally:
        source.dispose()
    CatalogStore(engine_for(control)).record(harvest, "")


def _catalogue_versions(control: str, urn: str) -> list[dict]:
    return CatalogStore(engine_for(control)).versions(None, urn)


def test_pg_column_added_while_changes_flow_then_a_narrowing_stops_and_accept_resumes(
    stack_settings, pg_url, tmp_path, no_slot_left
):
    table = f"evo_pg_{RUN}"
    _pg_table(pg_url, table, 200)
    control = f"sqlite:///{tmp_path}/control.db"
    config = PgLogicalConfig(name=f"evo-pg-{RUN}", url=pg_url, system="evopg", tables=[table])
    task = PgLogicalTask(config)
    runtime = make_runtime(stack_settings, task, control)
    topic = runtime.topic_of(next(iter(task.tables.values())))
    _harvest(pg_url, control, "evopg", "public", table)  # the catalogue knows the table as it was
    writer = Writer(lambda: psycopg.connect(libpq(pg_url)), table, 201)
    writer.start()
    try:
        pump(runtime, 2.0)  # snapshot, then stream with the writer going
        _pg(pg_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6)")
        _pg(pg_url, f"INSERT INTO {table} (id, ver, note, district) VALUES (100001, 0, 'after', '370102')")
        pump(runtime, 2.0)  # and more changes after the ALTER
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime)
    events = consume(stack_settings, topic)
    state = dict(_pg(pg_url, f"SELECT id, ver FROM {table}"))
    assert replay(events) == state  # nothing lost, nothing twice, across the change
    after = [e for e in events if e["after"] and e["after"]["id"] == 100001]
    assert after and after[0]["after"]["district"] == "370102"
    assert "district" not in events[0]["after"]  # snapshot rows: the first schema version
    registry = WireCodec(stack_settings.schema_registry_url).registry
    assert len(registry.get_versions(value_subject(topic))) == 2

    store = SchemaChangeStore(control)
    [applied] = store.list(config.name)
    assert applied["status"] == "applied" and applied["table"] == f"public.{table}"
    assert applied["changes"] == [
        {"kind": "added", "column": "district", "old_type": None, "new_type": "VARCHAR(6)", "key": False}
    ]
    assert ("schema", "info", f"schema change in public.{table}: column district added (VARCHAR(6))") in _messages(
        control
    )

    versions = _catalogue_versions(control, relational_urn(pg_url, "public", table))
    assert len(versions) == 2

    # the ClickHouse sink adds the column before inserting rows that carry it
    ch_table = f"evo_pg_{RUN}"
    runner = _sink(stack_settings, topic, ch_table)
    assert _sink_until(runner, lambda: len(_ch_rows(stack_settings, ch_table, "id")) == len(state))
    rows = {r[0]: r[1:] for r in _ch_rows(stack_settings, ch_table, "id, ver, district")}
    assert {k: v[0] for k, v in rows.items()} == state
    assert rows[100001][1] == "370102" and rows[1][1] is None

    # narrowing: the capture stops before the change, naming table, column and both types
    _pg(pg_url, f"UPDATE {table} SET ver = ver + 1 WHERE id = 1")
    _pg(pg_url, f"ALTER TABLE {table} ALTER COLUMN score TYPE integer")
    _pg(pg_url, f"INSERT INTO {table} (id, ver, note, score) VALUES (100002, 0, 'narrow', 7)")
    held = _held(runtime)
    assert f"capture of public.{table} stopped" in str(held) and "column score narrowed: BIGINT -> INTEGER" in str(held)
    runtime.task.close()
    events = consume(stack_settings, topic)
    ids = [(e["after"] or e["before"])["id"] for e in events]
    assert 100002 not in ids  # not published under the old schema, and the offset is before it
    assert [e["after"]["ver"] for e in events if e["op"] == "u" and e["after"]["id"] == 1][-1:] == [
        state[1] + 1
    ]  # the change before it went out
    [_, change] = store.list(config.name)
    assert change["status"] == "held" and change["changes"][0]["kind"] == "narrowed"
    assert any(m[:2] == ("schema", "error") and table in m[2] for m in _messages(control))
    alerts = KINDS["schema_change"](
        {"params": {"connector": config.name}, "tenant": None},
        stack_settings.model_copy(update={"control_db_url": control}),
        {},
        0.0,
    )
    assert [(a.level, a.subject) for a in alerts] == [
        ("warning", f"schema change followed: {config.name} public.{table}"),
        ("error", f"schema change stopped: {config.name} public.{table}"),
    ]
    assert "narrowed score (BIGINT -> INTEGER)" in alerts[1].body and "/accept" in alerts[1].body

    # restarting without a decision stops again; after accepting, the capture resumes
    again = make_runtime(stack_settings, PgLogicalTask(config), control)
    again.topic_prefix = runtime.topic_prefix
    with pytest.raises(SchemaChangeHeld, match="score narrowed"):
        again.run_once()
    again.task.close()
    store.accept(config.name, change["id"], "new_version", "operator")
    resumed = make_runtime(stack_settings, PgLogicalTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    drain_quiet(resumed)
    events = consume(stack_settings, topic)
    narrow = [e for e in events if e["after"] and e["after"]["id"] == 100002]
    assert len(narrow) == 1 and narrow[0]["after"]["score"] == 7
    assert len(registry.get_versions(value_subject(topic))) == 3
    resumed.task.drop_slot()
    resumed.task.close()


# --- MariaDB binlog ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def binlog_mysql_url(mysql_url) -> str:
    """The session's MariaDB when its binlog is on (CI prepares it: `huiliu servers prepare`); else
    the server HUILIU_TEST_BINLOG_MYSQL names (mysql+pymysql://root@host:port, binlog ROW/FULL),
    so a machine whose shared server must not be restarted can still run these tests."""
    import os

    from sqlalchemy.engine import make_url

    url = mysql_url
    other = os.environ.get("HUILIU_TEST_BINLOG_MYSQL")
    if not _binlog_on(url) and other:
        db = make_url(mysql_url).database
        url = str(make_url(other).set(database=db, query={"charset": "utf8mb4"}).render_as_string(False))
        server = make_url(other)
        conn = pymysql.connect(host=server.host, port=server.port or 3306, user=server.username or "root")
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
            cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        conn.close()
    if not _binlog_on(url):
        pytest.skip("MariaDB's binlog is off (run `huiliu servers prepare`, or set HUILIU_TEST_BINLOG_MYSQL)")
    return url


def _binlog_on(url: str) -> bool:
    return dict(_my(url, "SHOW GLOBAL VARIABLES WHERE Variable_name = 'log_bin'")).get("log_bin") == "ON"


def _connect_my(mysql_url: str, **kw) -> pymysql.Connection:
    from sqlalchemy.engine import make_url

    u = make_url(mysql_url)
    return pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username or "root", database=u.database, charset="utf8mb4", **kw
    )


def _my(mysql_url: str, *sql: str) -> list:
    conn = _connect_my(mysql_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in sql:
                cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_mariadb_column_added_while_changes_flow_then_a_narrowing_moves_to_a_new_topic(
    stack_settings, binlog_mysql_url, tmp_path
):
    mysql_url = binlog_mysql_url
    table = f"evo_my_{RUN}"
    db = mysql_url.rsplit("/", 1)[1].split("?")[0]
    _my(
        mysql_url,
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} (id int PRIMARY KEY, ver int NOT NULL, note varchar(20), score bigint) ENGINE=InnoDB",
        f"INSERT INTO {table} (id, ver, note, score) SELECT seq, 0, 'seed', seq FROM seq_1_to_200",
    )
    control = f"sqlite:///{tmp_path}/control.db"
    config = MysqlBinlogConfig(name=f"evo-my-{RUN}", url=mysql_url, system="evomy", tables=[table])
    runtime = make_runtime(stack_settings, MysqlBinlogTask(config), control)
    topic = runtime.topic_of(next(iter(runtime.task.tables.values())))
    writer = Writer(lambda: _connect_my(mysql_url, connect_timeout=5), table, 201)
    writer.start()
    try:
        pump(runtime, 2.0)
        _my(mysql_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6)")
        _my(mysql_url, f"INSERT INTO {table} (id, ver, note, district) VALUES (100001, 0, 'after', '370102')")
        pump(runtime, 2.0)
    finally:
        writer.stop.set()
        writer.join(10)
    drain_quiet(runtime)
    events = consume(stack_settings, topic)
    state = dict(_my(mysql_url, f"SELECT id, ver FROM {table}"))
    assert replay(events) == state
    after = [e for e in events if e["after"] and e["after"]["id"] == 100001]
    assert after and after[0]["after"]["district"] == "370102"
    registry = WireCodec(stack_settings.schema_registry_url).registry
    assert len(registry.get_versions(value_subject(topic))) == 2
    store = SchemaChangeStore(control)
    [applied] = store.list(config.name)
    assert applied["table"] == f"{db}.{table}" and applied["changes"][0]["column"] == "district"

    ch_table = f"evo_my_{RUN}"
    assert _sink_until(
        _sink(stack_settings, topic, ch_table), lambda: len(_ch_rows(stack_settings, ch_table, "id")) == len(state)
    )
    assert dict(_ch_rows(stack_settings, ch_table, "id, district"))[100001] == "370102"

    _my(mysql_url, f"UPDATE {table} SET ver = ver + 1 WHERE id = 1")
    _my(mysql_url, f"ALTER TABLE {table} MODIFY COLUMN score int")
    _my(mysql_url, f"INSERT INTO {table} (id, ver, note, score) VALUES (100002, 0, 'narrow', 7)")
    held = _held(runtime)
    assert f"capture of {db}.{table} stopped" in str(held) and "score narrowed: BIGINT -> INTEGER" in str(held)
    runtime.task.close()
    events = consume(stack_settings, topic)
    assert 100002 not in {(e["after"] or e["before"])["id"] for e in events}
    assert [e["after"]["ver"] for e in events if e["op"] == "u" and e["after"]["id"] == 1][-1] == state[1] + 1

    change = store.list(config.name, "held")[0]
    store.accept(config.name, change["id"], "new_topic", "operator")
    resumed = make_runtime(stack_settings, MysqlBinlogTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    drain_quiet(resumed)
    moved = store.list(config.name)[-1]["topic"]
    assert moved == f"{topic}_v{change['id']}"
    narrow = consume(stack_settings, moved)
    assert [(e["op"], e["after"]["id"], e["after"]["score"]) for e in narrow] == [("c", 100002, 7)]
    assert 100002 not in {(e["after"] or e["before"])["id"] for e in consume(stack_settings, topic)}
    resumed.task.close()


# --- through the API and a worker --------------------------------------------------------------
def test_api_shows_the_held_change_and_accepting_it_resumes_the_worker_task(
    own_db_settings, pg_url, tmp_path, no_slot_left
):
    """The worker's task stops at a narrowing (status FAILED naming table, column and types), the
    change is listed, bad accepts are refused with clear 4xx, and an accept resumes the capture."""
    settings = own_db_settings
    table = f"evo_api_{RUN}"
    _pg_table(pg_url, table, 20)
    name = f"evo-api-{RUN}"
    config = {"connector.class": "relational.pg_logical", "url": pg_url, "system": "evoapi", "tables": [table]}
    topic = topic_name(settings.topic_prefix, "evoapi", "public", table)
    with api_and_worker(settings, tmp_path, f"worker-evo-{RUN}") as client:
        assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
        reader = TopicReader(settings, topic)
        try:
            reader.wait_for_ids(set(range(1, 21)), timeout=90)
            _pg(pg_url, f"ALTER TABLE {table} ALTER COLUMN score TYPE integer")
            _pg(pg_url, f"INSERT INTO {table} (id, ver, note, score) VALUES (21, 0, 'narrow', 7)")

            def failed():
                tasks = client.get(f"/connectors/{name}/status").json()["tasks"]
                return tasks and tasks[0]["state"] == "FAILED" and tasks[0]

            task = wait_until(failed, 90, message="task FAILED at the narrowing")
            assert task["detail"].startswith(f"SchemaChangeHeld: capture of public.{table} stopped")
            assert "column score narrowed: BIGINT -> INTEGER" in task["detail"]
            changes = client.get(f"/connectors/{name}/schema-changes", params={"status": "held"}).json()
            assert [c["changes"][0]["column"] for c in changes] == ["score"]
            cid = changes[0]["id"]
            messages = client.get("/messages", params={"limit": 200}).json()
            assert any(table in m["subject"] and m["category"] == "schema" for m in messages)

            bad = client.post(f"/connectors/{name}/schema-changes/{cid}/accept", json={"mode": "sideways"})
            assert bad.status_code == 422 and "new_version" in bad.json()["message"]
            assert (
                client.post(
                    f"/connectors/{name}/schema-changes/999999/accept", json={"mode": "new_version"}
                ).status_code
                == 404
            )
            assert (
                client.post(
                    f"/connectors/nobody-{RUN}/schema-changes/{cid}/accept", json={"mode": "new_version"}
                ).status_code
                == 404
            )
            ok = client.post(f"/connectors/{name}/schema-changes/{cid}/accept", json={"mode": "new_version"})
            assert ok.status_code == 200 and ok.json()["status"] == "accepted"
            again = client.post(f"/connectors/{name}/schema-changes/{cid}/accept", json={"mode": "new_version"})
            assert again.status_code == 409

            reader.wait_for_ids(set(range(1, 22)), timeout=90)  # the row after the change arrives
            running = wait_until(
                lambda: client.get(f"/connectors/{name}/status").json()["tasks"][0]["state"] == "RUNNING", 30
            )
            assert running
            assert [e["after"]["score"] for e in reader.values if e["after"] and e["after"]["id"] == 21] == [7]
        finally:
            reader.close()
            client.delete(f"/connectors/{name}")


# --- timestamp mode: reflection before each poll -----------------------------------------------
def test_timestamp_mode_follows_an_added_column_and_holds_a_narrowing(stack_settings, pg_url, tmp_path):
    table = f"evo_ts_{RUN}"
    _pg(pg_url, f"DROP TABLE IF EXISTS {table}")
    _pg(pg_url, f"CREATE TABLE {table} (id int PRIMARY KEY, score bigint, updated_at timestamp NOT NULL)")
    _pg(pg_url, f"INSERT INTO {table} SELECT g, g, clock_timestamp() FROM generate_series(1, 50) g")
    control = f"sqlite:///{tmp_path}/control.db"
    config = TimestampSourceConfig(
        name=f"evo-ts-{RUN}",
        url=pg_url,
        system="evots",
        table=table,
        db_schema="public",
        timestamp_column="updated_at",
        schema_check_seconds=0,
    )
    runtime = make_runtime(stack_settings, TimestampSourceTask(config), control)
    topic = runtime.topic_of(runtime.task.captured)
    runtime.drain()
    _pg(pg_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6)")
    _pg(pg_url, f"INSERT INTO {table} VALUES (51, 51, clock_timestamp(), '370102')")
    runtime.drain()
    events = consume(stack_settings, topic)
    assert [e["after"]["id"] for e in events] == list(range(1, 52))
    assert events[-1]["after"]["district"] == "370102" and "district" not in events[0]["after"]
    store = SchemaChangeStore(control)
    assert [(c["status"], c["changes"][0]["column"]) for c in store.list(config.name)] == [("applied", "district")]

    _pg(pg_url, f"ALTER TABLE {table} ALTER COLUMN score TYPE integer")
    _pg(pg_url, f"INSERT INTO {table} VALUES (52, 52, clock_timestamp(), NULL)")
    with pytest.raises(SchemaChangeHeld, match=rf"public\.{table} stopped .*score narrowed: BIGINT -> INTEGER"):
        runtime.drain()
    assert [e["after"]["id"] for e in consume(stack_settings, topic)][-1] == 51  # row 52 not read
    store.accept(config.name, store.list(config.name, "held")[0]["id"], "new_version", "operator")
    resumed = make_runtime(stack_settings, TimestampSourceTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    resumed.drain()
    assert [(e["after"]["id"], e["after"]["score"]) for e in consume(stack_settings, topic)][-1] == (52, 52)


# --- trigger mode: a log row naming an unknown column, and reflection before polls --------------
def test_trigger_mode_follows_an_added_column_at_its_row_and_holds_a_narrowing(stack_settings, pg_url, tmp_path):
    table = f"evo_tr_{RUN}"
    _pg(pg_url, f"DROP TABLE IF EXISTS {table}")
    _pg(pg_url, f"CREATE TABLE {table} (id int PRIMARY KEY, score bigint)")
    control = f"sqlite:///{tmp_path}/control.db"
    config = TriggerSourceConfig(
        name=f"evo-tr-{RUN}",
        url=pg_url,
        system="evotr",
        tables={"include": [f"public.{table}"]},
        changelog_table=f"log_{RUN}",
        schema_check_seconds=3600,  # only a log row naming a new column makes it look at once
    )
    task = TriggerSourceTask(config)
    runtime = make_runtime(stack_settings, task, control)
    topic = runtime.topic_of(task.units[0].captured)
    runtime.start()
    _pg(pg_url, f"INSERT INTO {table} SELECT g, g FROM generate_series(1, 5) g")
    _pg(pg_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6)")
    _pg(pg_url, f"INSERT INTO {table} VALUES (6, 6, '370102')")
    runtime.drain()
    events = consume(stack_settings, topic)
    assert [(e["after"]["id"], e["after"].get("district")) for e in events] == [
        (1, None),
        (2, None),
        (3, None),
        (4, None),
        (5, None),
        (6, "370102"),
    ]
    assert "district" not in events[0]["after"]  # rows before the change: the first schema version
    store = SchemaChangeStore(control)
    assert [(c["status"], c["changes"][0]["column"]) for c in store.list(config.name)] == [("applied", "district")]

    task.config = config.model_copy(update={"schema_check_seconds": 0})
    _pg(pg_url, f"ALTER TABLE {table} ALTER COLUMN score TYPE integer")
    _pg(pg_url, f"INSERT INTO {table} VALUES (7, 7, NULL)")
    with pytest.raises(SchemaChangeHeld, match=r"score narrowed: BIGINT -> INTEGER"):
        runtime.drain()
    assert [e["after"]["id"] for e in consume(stack_settings, topic)][-1] == 6
    store.accept(config.name, store.list(config.name, "held")[0]["id"], "new_version", "operator")
    resumed = make_runtime(stack_settings, TriggerSourceTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    resumed.drain()
    assert [(e["after"]["id"], e["after"]["score"]) for e in consume(stack_settings, topic)][-1] == (7, 7)
    resumed.task.uninstall()


def test_trigger_mode_on_mariadb_reinstalls_its_triggers_for_an_added_column(stack_settings, mysql_url, tmp_path):
    table = f"evo_mtr_{RUN}"
    _my(mysql_url, f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} (id int PRIMARY KEY, score bigint)")
    control = f"sqlite:///{tmp_path}/control.db"
    config = TriggerSourceConfig(
        name=f"evo-mtr-{RUN}",
        url=mysql_url,
        system="evomtr",
        tables={"include": [f"*.{table}"]},
        changelog_table=f"log_{RUN}",
        schema_check_seconds=0,
    )
    runtime = make_runtime(stack_settings, TriggerSourceTask(config), control)
    topic = runtime.topic_of(runtime.task.units[0].captured)
    runtime.start()
    _my(mysql_url, f"INSERT INTO {table} VALUES (1, 1)")
    runtime.drain()
    _my(mysql_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6)")
    runtime.drain()  # follows the change: the triggers now name the new column
    _my(mysql_url, f"INSERT INTO {table} VALUES (2, 2, '370102')")
    runtime.drain()
    events = consume(stack_settings, topic)
    assert [(e["after"]["id"], e["after"].get("district")) for e in events] == [(1, None), (2, "370102")]
    assert [c["changes"][0]["column"] for c in SchemaChangeStore(control).list(config.name)] == ["district"]
    runtime.task.uninstall()


# --- diff mode: reflection before each round ---------------------------------------------------
def test_diff_mode_follows_a_column_added_in_the_middle_and_holds_a_narrowing(stack_settings, pg_url, tmp_path):
    table = f"evo_df_{RUN}"
    _pg(pg_url, f"DROP TABLE IF EXISTS {table}")
    _pg(pg_url, f"CREATE TABLE {table} (id int PRIMARY KEY, score bigint, note text)")
    _pg(pg_url, f"INSERT INTO {table} SELECT g, g, 'n' || g FROM generate_series(1, 4) g")
    control = f"sqlite:///{tmp_path}/control.db"
    config = DiffSourceConfig(
        name=f"evo-df-{RUN}",
        url=pg_url,
        system="evodf",
        tables={"include": [f"public.{table}"]},
        state_dir=str(tmp_path / "diff"),
    )
    runtime = make_runtime(stack_settings, DiffSourceTask(config), control)
    topic = runtime.topic_of(runtime.task.units[0].captured)
    runtime.drain()
    # a column in the middle of the layout (dropped and re-added columns move): images by name
    _pg(pg_url, f"ALTER TABLE {table} DROP COLUMN note")
    _pg(pg_url, f"ALTER TABLE {table} ADD COLUMN district varchar(6), ADD COLUMN note text")
    _pg(pg_url, f"UPDATE {table} SET district = '370102', note = 'n2' WHERE id = 2")
    _pg(pg_url, f"DELETE FROM {table} WHERE id = 3")
    runtime.drain()
    events = consume(stack_settings, topic)
    second = {(e["op"], (e["after"] or e["before"])["id"]): e for e in events[4:]}
    assert second[("u", 2)]["before"] == {"id": 2, "score": 2, "district": None, "note": "n2"}
    assert second[("u", 2)]["after"]["district"] == "370102"
    assert second[("d", 3)]["before"] == {"id": 3, "score": 3, "district": None, "note": "n3"}
    assert second[("u", 1)]["after"] == {"id": 1, "score": 1, "district": None, "note": None}
    changes = SchemaChangeStore(control).list(config.name)
    assert [c["kind"] for c in changes[0]["changes"]] == ["added"]  # note kept its name: dropped and added back

    _pg(pg_url, f"ALTER TABLE {table} ALTER COLUMN score TYPE integer")
    with pytest.raises(SchemaChangeHeld, match=r"score narrowed: BIGINT -> INTEGER"):
        runtime.drain()
    store = SchemaChangeStore(control)
    store.accept(config.name, store.list(config.name, "held")[0]["id"], "new_version", "operator")
    resumed = make_runtime(stack_settings, DiffSourceTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    resumed.drain()
    assert len(consume(stack_settings, topic)) == len(events)  # nothing changed in the rows themselves


# --- one held table does not stop the others (trigger and diff modes) --------------------------
def _two_tables(pg_url: str, prefix: str) -> tuple[str, str]:
    flowing, held = f"{prefix}_a_{RUN}", f"{prefix}_b_{RUN}"
    for table in (flowing, held):
        _pg(pg_url, f"DROP TABLE IF EXISTS {table}")
        _pg(pg_url, f"CREATE TABLE {table} (id int PRIMARY KEY, score bigint)")
        _pg(pg_url, f"INSERT INTO {table} VALUES (1, 1), (2, 2)")
    return flowing, held


def _topics(runtime, flowing: str, held: str) -> tuple[str, str]:
    by_table = {u.captured.table: runtime.topic_of(u.captured) for u in runtime.task.units}
    return by_table[flowing], by_table[held]


def _ids(settings, topic: str) -> list[int]:
    return [(e["after"] or e["before"])["id"] for e in consume(settings, topic)]


def test_trigger_mode_holds_only_the_narrowed_table_and_replays_its_parked_rows_after_accept(
    stack_settings, pg_url, tmp_path
):
    flowing, held = _two_tables(pg_url, "evo_trh")
    control = f"sqlite:///{tmp_path}/control.db"
    config = TriggerSourceConfig(
        name=f"evo-trh-{RUN}",
        url=pg_url,
        system="evotrh",
        tables={"include": [f"public.{flowing}", f"public.{held}"]},
        changelog_table=f"logh_{RUN}",
        schema_check_seconds=0,
    )
    runtime = make_runtime(stack_settings, TriggerSourceTask(config), control)
    status: list[str] = []
    runtime.task.held.on_hold = status.append  # the worker reports it as the task's status detail
    runtime.start()
    a_topic, b_topic = _topics(runtime, flowing, held)
    _pg(pg_url, f"UPDATE {flowing} SET score = 10 WHERE id = 1; UPDATE {held} SET score = 20 WHERE id = 1")
    runtime.drain()
    _pg(pg_url, f"ALTER TABLE {held} ALTER COLUMN score TYPE integer")  # narrowed: held
    _pg(pg_url, f"INSERT INTO {held} VALUES (3, 3); INSERT INTO {flowing} VALUES (3, 3)")
    _pg(pg_url, f"UPDATE {held} SET score = 30 WHERE id = 3; INSERT INTO {flowing} VALUES (4, 4)")
    runtime.drain()  # no SchemaChangeHeld: the other table goes on
    assert _ids(stack_settings, a_topic) == [1, 3, 4]
    assert _ids(stack_settings, b_topic) == [1]
    store = SchemaChangeStore(control)
    (change,) = store.list(config.name, "held")
    assert change["table"] == f"public.{held}"
    assert len(status) == 1 and status[0].startswith("1 table(s) held, the others go on: capture of public.")
    parked = _pg(pg_url, f"SELECT count(*) FROM logh_{RUN} WHERE table_name = 'public.{held}'")[0][0]
    assert parked == 2  # the held table's rows stay in the change log; the other's were purged
    assert _pg(pg_url, f"SELECT count(*) FROM logh_{RUN} WHERE table_name = 'public.{flowing}'")[0][0] == 0

    store.accept(config.name, change["id"], "new_version", "operator")
    _pg(pg_url, f"INSERT INTO {held} VALUES (4, 4); INSERT INTO {flowing} VALUES (5, 5)")
    resumed = make_runtime(stack_settings, TriggerSourceTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    resumed.drain()
    events = consume(stack_settings, b_topic)
    # the parked rows in log order, then the newer one; nothing lost, nothing twice
    assert [(e["op"], e["after"]["id"], e["after"]["score"]) for e in events] == [
        ("u", 1, 20),
        ("c", 3, 3),
        ("u", 3, 30),
        ("c", 4, 4),
    ]
    assert _ids(stack_settings, a_topic) == [1, 3, 4, 5]
    assert _pg(pg_url, f"SELECT count(*) FROM logh_{RUN}")[0][0] == 0  # all durable, all purged
    resumed.task.uninstall()


def test_diff_mode_holds_only_the_narrowed_table_and_finds_its_changes_after_accept(stack_settings, pg_url, tmp_path):
    flowing, held = _two_tables(pg_url, "evo_dfh")
    control = f"sqlite:///{tmp_path}/control.db"
    config = DiffSourceConfig(
        name=f"evo-dfh-{RUN}",
        url=pg_url,
        system="evodfh",
        tables={"include": [f"public.{flowing}", f"public.{held}"]},
        state_dir=str(tmp_path / "diff"),
    )
    runtime = make_runtime(stack_settings, DiffSourceTask(config), control)
    a_topic, b_topic = _topics(runtime, flowing, held)
    runtime.drain()
    _pg(pg_url, f"ALTER TABLE {held} ALTER COLUMN score TYPE integer")
    _pg(pg_url, f"UPDATE {held} SET score = 20 WHERE id = 2; UPDATE {flowing} SET score = 10 WHERE id = 2")
    runtime.drain()  # no SchemaChangeHeld: the other table's round goes on
    assert _ids(stack_settings, a_topic) == [1, 2, 2]
    assert _ids(stack_settings, b_topic) == [1, 2]
    store = SchemaChangeStore(control)
    (change,) = store.list(config.name, "held")
    store.accept(config.name, change["id"], "new_version", "operator")
    resumed = make_runtime(stack_settings, DiffSourceTask(config), control)
    resumed.topic_prefix = runtime.topic_prefix
    resumed.drain()
    events = consume(stack_settings, b_topic)
    assert [(e["op"], e["after"]["id"], e["after"]["score"]) for e in events][2:] == [("u", 2, 20)]
