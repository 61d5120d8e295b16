"""The connector REST API (Kafka Connect shapes) over a real API process and a real worker process.

A timestamp connector on a PostgreSQL table: validation errors name fields, create/409/404, the
task runs on the worker (status RUNNING with the worker id) and events reach the topic; pause,
resume, restart, snapshot and delete act on capture; secrets are masked in every answer and
encrypted at rest; a ClickHouse sink connector writes the topic into ClickHouse (AGG-09).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from api.auth import api_key_for
from deploy.control import engine_for
from schemas.naming import topic_name
from tests.connect_cluster import (
    TopicReader,
    insert_rows,
    make_table,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    start_api,
    start_worker,
    stop,
    timestamp_config,
    wait_until,
)

RUN = uuid.uuid4().hex[:6]  # names unique per run: topics and offsets of other runs never interfere
SECRET = f"s3cr3t-{RUN}"


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def connect(stack_settings, tmp_path_factory):
    logs = tmp_path_factory.mktemp("connect-logs")
    api, base = start_api(stack_settings, logs / "api.log")
    worker_id = f"worker-api-{RUN}"
    worker = start_worker(stack_settings, worker_id, logs / "worker.log")
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(stack_settings)}, timeout=60)
    seen: list[str] = []  # every response body: none may contain the secret
    client.event_hooks["response"] = [lambda r: (r.read(), seen.append(r.text))]
    yield {"client": client, "worker_id": worker_id, "seen": seen, "logs": logs}
    for name in client.get("/connectors").json():
        client.delete(f"/connectors/{name}")
    client.close()
    stop(worker)
    stop(api)


def status_of(client, name):
    return client.get(f"/connectors/{name}/status").json()


# -- tests -------------------------------------------------------------------------------------
def test_every_route_needs_the_api_key(connect):
    base = str(connect["client"].base_url).rstrip("/")
    assert httpx.get(base + "/connectors").status_code == 401
    assert httpx.get(base + "/connector-plugins", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.post(base + "/connectors", json={"name": "x", "config": {}}).status_code == 401
    assert httpx.put(base + "/connector-plugins/relational.timestamp/config/validate", json={}).status_code == 401
    assert httpx.delete(base + "/connectors/x").status_code == 401


def test_plugins_are_listed_with_their_kind(connect):
    listed = connect["client"].get("/connector-plugins").json()
    plugins = {p["class"]: p["type"] for p in listed}
    assert plugins["relational.timestamp"] == "source"
    assert plugins["clickhouse"] == plugins["hdfs"] == plugins["hbase"] == "sink"
    # runners are processors; Kafka Connect's `type` knows only source and sink, so they say sink there
    kinds = {p["class"]: p["kind"] for p in listed}
    assert kinds["runner.lean"] == kinds["runner.faust"] == "processor" and plugins["runner.lean"] == "sink"
    assert kinds["clickhouse"] == "sink" and kinds["files"] == "source"


def test_validation_errors_name_the_field(connect, pg_url):
    client = connect["client"]
    make_table(pg_url, f"val_{RUN}")
    good = timestamp_config(pg_url, f"val_{RUN}", "val", SECRET)
    body = client.put("/connector-plugins/relational.timestamp/config/validate", json=good).json()
    assert body["error_count"] == 0 and any(c["definition"]["name"] == "timestamp_column" for c in body["configs"])

    body = client.put(
        "/connector-plugins/relational.timestamp/config/validate", json={**good, "bogus_key": 1, "table": None}
    ).json()
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
    assert body["error_count"] == 2 and errors["bogus_key"] == ["unknown key"] and "table" in errors

    missing = {k: v for k, v in good.items() if k != "timestamp_column"}
    r = client.post("/connectors", json={"name": f"bad-{RUN}", "config": missing})
    assert r.status_code == 400 and r.json()["errors"] == [{"field": "timestamp_column", "message": "field required"}]

    unreachable = {**good, "url": f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/nowhere"}
    r = client.post("/connectors", json={"name": f"bad-{RUN}", "config": unreachable})
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == ["url"]
    assert "not in the allowed hosts" in r.json()["errors"][0]["message"]  # refused before connecting

    r = client.post("/connectors", json={"name": f"bad-{RUN}", "config": {**good, "timestamp_column": "nope"}})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "timestamp_column"
    r = client.post("/connectors", json={"name": f"bad-{RUN}", "config": {**good, "connector.class": "no.such"}})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "connector.class"
    assert client.get(f"/connectors/bad-{RUN}").status_code == 404
    assert not any(SECRET in body for body in connect["seen"])


def test_unsupported_mode_for_the_database_names_the_class():
    from pydantic import BaseModel, ConfigDict

    from connectors import plugins
    from connectors.validation import validate

    class Cfg(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str

    plugins.register(plugins.Plugin("test.pg_only", "source", Cfg, lambda c, ctx: None, dialects=("postgresql",)))
    _, errors = validate("x", {"connector.class": "test.pg_only", "url": "mysql+pymysql://u:p@127.0.0.1:1/d"})
    assert [e.field for e in errors] == ["connector.class"] and "mysql" in errors[0].message


def test_timestamp_connector_lifecycle(connect, stack_settings, pg_url):
    client, worker_id = connect["client"], connect["worker_id"]
    table, name = f"people_{RUN}", f"people-{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 21))
    config = timestamp_config(pg_url, table, f"sys{RUN}", SECRET)

    r = client.post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text
    assert r.json()["tasks"] == [{"connector": name, "task": 0}] and "****" in r.json()["config"]["url"]
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 409
    assert name in client.get("/connectors").json()

    status = wait_until(
        lambda: (s := status_of(client, name))["tasks"] and s["tasks"][0]["state"] == "RUNNING" and s,
        60,
        message="task RUNNING",
    )
    assert status["connector"] == {"state": "RUNNING", "worker_id": worker_id}
    assert status["tasks"][0]["worker_id"] == worker_id
    assert client.get(f"/connectors/{name}/tasks").json()[0]["id"] == {"connector": name, "task": 0}
    assert client.get(f"/connectors/{name}/tasks/0/status").json()["worker_id"] == worker_id
    assert client.get(f"/connectors/{name}/tasks/3/status").status_code == 404

    reader = TopicReader(stack_settings, topic_name(stack_settings.topic_prefix, f"sys{RUN}", "public", table))
    try:
        assert reader.wait_for_ids(set(range(1, 21))) == set(range(1, 21))
        assert {op for op, _ in reader.events} == {"r"}

        # pause: nothing new is captured; resume: it continues where it stopped
        assert client.put(f"/connectors/{name}/pause").status_code == 202
        wait_until(lambda: status_of(client, name)["tasks"][0]["state"] == "PAUSED", 30, message="PAUSED")
        assert status_of(client, name)["connector"]["state"] == "PAUSED"
        insert_rows(pg_url, table, range(21, 31))
        assert reader.read(4) and reader.ids() == set(range(1, 21))
        assert client.put(f"/connectors/{name}/resume").status_code == 202
        reader.wait_for_ids(set(range(1, 31)))
        assert status_of(client, name)["tasks"][0]["state"] == "RUNNING"

        # restart: the task restarts from its stored offset
        assert client.post(f"/connectors/{name}/restart").status_code == 204
        insert_rows(pg_url, table, range(31, 36))
        reader.wait_for_ids(set(range(1, 36)))
        wait_until(
            lambda: status_of(client, name)["tasks"][0]["state"] == "RUNNING", 30, message="RUNNING after restart"
        )

        # snapshot: the table's offset is cleared, every row is read again (op r)
        before = sum(1 for op, i in reader.events if i == 1)
        r = client.post(f"/connectors/{name}/snapshot", json={"tables": [table]})
        assert r.status_code == 202 and r.json()["status"] == "PENDING"
        wait_until(lambda: sum(1 for op, i in reader.read(1) if i == 35 and op == "r") >= 1, 60, message="re-snapshot")
        assert sum(1 for op, i in reader.events if i == 1) > before
        snaps = client.get(f"/connectors/{name}/snapshots").json()
        assert snaps[-1]["status"] == "DONE" and snaps[-1]["cleared"] == [f"public.{table}"]

        # every answer masks the secret
        client.get(f"/connectors/{name}")
        client.get(f"/connectors/{name}/config")
        client.get("/connectors", params={"expand": ["status", "info"]})
        expanded = client.get("/connectors", params={"expand": "info"}).json()
        assert "****" in expanded[name]["info"]["config"]["url"]

        # delete: the task stops, nothing more is captured
        assert client.delete(f"/connectors/{name}").status_code == 204
        assert client.get(f"/connectors/{name}").status_code == 404
        assert client.get(f"/connectors/{name}/status").status_code == 404
        assert client.delete(f"/connectors/{name}").status_code == 404
        time.sleep(3)
        reader.read(1)
        count = len(reader.events)
        insert_rows(pg_url, table, range(36, 41))
        reader.read(4)
        assert len(reader.events) == count and 36 not in reader.ids()
    finally:
        reader.close()
    assert not any(SECRET in body for body in connect["seen"])
    assert SECRET not in (connect["logs"] / "worker.log").read_text()


def test_put_config_creates_then_updates_and_keeps_secrets_encrypted(connect, stack_settings, pg_url):
    client = connect["client"]
    table, name = f"put_{RUN}", f"put-{RUN}"
    make_table(pg_url, table)
    config = timestamp_config(pg_url, table, f"put{RUN}", SECRET)
    r = client.put(f"/connectors/{name}/config", json=config)
    assert r.status_code == 201, r.text
    shown = client.get(f"/connectors/{name}/config").json()
    assert shown["url"].count("****") == 1 and SECRET not in str(shown)
    r = client.put(f"/connectors/{name}/config", json={**shown, "batch_size": 50})  # the masked URL sent back
    assert r.status_code == 200 and r.json()["config"]["batch_size"] == 50

    from connectors.store import ConnectorStore

    stored = ConnectorStore.for_settings(stack_settings).get(name)
    assert SECRET in stored.config["url"]  # the real password was kept, not replaced by ****
    with engine_for(stack_settings.resolved_control_db_url).connect() as conn:  # sealed at rest
        rows = conn.exec_driver_sql("SELECT * FROM connect_connectors").all()
    assert rows and SECRET not in repr(rows)
    key_file = stack_settings.state_dir / "connector_secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert client.delete(f"/connectors/{name}").status_code == 204


def test_clickhouse_sink_connector_writes_the_topic(connect, stack_settings, pg_url):
    from sinks.clickhouse import client_from_url

    client = connect["client"]
    table = f"chsrc_{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 51))
    assert (
        client.post(
            "/connectors", json={"name": f"chsrc-{RUN}", "config": timestamp_config(pg_url, table, f"ch{RUN}")}
        ).status_code
        == 201
    )
    topic = topic_name(stack_settings.topic_prefix, f"ch{RUN}", "public", table)
    sink = {
        "connector.class": "clickhouse",
        "topics": topic,
        "url": stack_settings.clickhouse_url,
        "table": f"connect_{RUN}",
    }
    bad = client.post("/connectors", json={"name": f"chsink-{RUN}", "config": {**sink, "topics": ""}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "topics"
    r = client.post("/connectors", json={"name": f"chsink-{RUN}", "config": sink})
    assert r.status_code == 201 and r.json()["type"] == "sink"

    ch = client_from_url(stack_settings.clickhouse_url)

    def rows():
        if not ch.execute(f"EXISTS TABLE connect_{RUN}")[0][0]:
            return 0
        return ch.execute(f"SELECT count() FROM connect_{RUN} FINAL WHERE _deleted = 0")[0][0] == 50

    try:
        wait_until(rows, 120, interval=1, message="50 rows in ClickHouse")
    finally:
        ch.disconnect()
    assert status_of(client, f"chsink-{RUN}")["tasks"][0]["state"] == "RUNNING"


def test_connect_apply_reads_a_yaml_document(connect, stack_settings, pg_url, tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    from deploy.settings import settings_env

    make_table(pg_url, f"yaml_{RUN}")
    doc = {"name": f"yaml-{RUN}", "config": timestamp_config(pg_url, f"yaml_{RUN}", f"y{RUN}", SECRET)}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**doc, "config": {**doc["config"], "oops": 1}}))
    env = {**os.environ, **settings_env(stack_settings)}
    ok = subprocess.run(
        [sys.executable, "-m", "api.cli", "connect-apply", str(tmp_path / "c.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and "created" in ok.stdout and SECRET not in ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "api.cli", "connect-apply", str(tmp_path / "bad.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "oops: unknown key" in bad.stderr
    assert connect["client"].get(f"/connectors/yaml-{RUN}").status_code == 200
    assert connect["client"].delete(f"/connectors/yaml-{RUN}").status_code == 204
