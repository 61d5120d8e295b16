"""Log-CDC connectors leave nothing on the source server (issue 14), through a real API, worker and
PostgreSQL: /health lists the `huiliu_*` slots with the WAL they keep, inactive when no running
connector reads them; the `replication_slot_inactive` alert names them; POST .../decommission drops
the slot and publication and stops the connector (a resume snapshots again with a new slot); DELETE
drops them first and says so (X-Huiliu-Decommissioned, audit detail). MySQL binlog: nothing to drop.
"""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from api.auth import api_key_for
from connectors.decommission import BINLOG_NOTE, decommission
from deploy.servers import PG_ADMIN, ensure_pg_logical
from schemas.naming import topic_name
from tests.conftest import PG_TEST_DB
from tests.connect_cluster import (
    TopicReader,
    insert_rows,
    make_table,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    start_api,
    start_worker,
    stop,
    wait_until,
)

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def cluster(stack_settings, pg_url, tmp_path_factory):
    ensure_pg_logical()
    logs = tmp_path_factory.mktemp("decommission-logs")
    api, base = start_api(stack_settings, logs / "api.log")
    worker = start_worker(stack_settings, f"dc-worker-{RUN}", logs / "worker.log")
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(stack_settings)}, timeout=90)
    yield client
    for name in client.get("/connectors").json():
        if RUN in name:
            client.delete(f"/connectors/{name}")
    client.close()
    stop(worker)
    stop(api)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:  # whatever a failure left behind
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name LIKE %s AND NOT active",
            (f"%{RUN}%",),
        )


def server_objects(pg_url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        slots = {
            r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (PG_TEST_DB,))
        }
        pubs = {r[0] for r in conn.execute("SELECT pubname FROM pg_publication")}
    return slots, pubs


def slots_in_health(client) -> dict:
    component = client.get("/health").json()["components"]["replication_slots"]
    return component, {s["slot"]: s for s in component["slots"] if "slot" in s}


def test_slots_are_reported_decommissioned_and_dropped_on_delete(cluster, stack_settings, pg_url):
    client = cluster
    table, name = f"dc_people_{RUN}", f"dc-people-{RUN}"
    slot = f"huiliu_dc_people_{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 4))
    config = {"connector.class": "relational.pg_logical", "url": pg_url, "system": "dc", "tables": [table]}
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    reader = TopicReader(stack_settings, topic_name(stack_settings.topic_prefix, "dc", "public", table))
    try:
        reader.wait_for_ids({1, 2, 3})
        wait_until(lambda: slot in server_objects(pg_url)[0], 30, message="slot created")
        assert slot in server_objects(pg_url)[1]  # the publication has the same name

        # Running: reported, not inactive. A slot nobody owns: inactive, with its WAL.
        component, slots = slots_in_health(client)
        assert slots[slot]["connector"] == name and slots[slot]["inactive"] is False
        assert slots[slot]["server"].endswith(f"/{PG_TEST_DB}") and slots[slot]["retained_bytes"] >= 0
        orphan = f"huiliu_orphan_{RUN}"
        with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_TEST_DB}", autocommit=True) as conn:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (orphan,))
            conn.execute("CREATE TABLE IF NOT EXISTS dc_churn (x int)")
            conn.execute("INSERT INTO dc_churn SELECT generate_series(1, 2000)")  # some WAL for it to keep
        component, slots = slots_in_health(client)
        assert slots[orphan]["connector"] is None and slots[orphan]["inactive"] is True
        assert slots[orphan]["retained_bytes"] > 0
        assert component["status"] == "inactive" and client.get("/health").json()["status"] == "degraded"

        # Paused: its slot is inactive too; the alert names both.
        assert client.put(f"/connectors/{name}/pause").status_code == 202
        wait_until(lambda: slots_in_health(client)[1][slot]["inactive"], 30, message="paused slot inactive")
        rule = {"name": f"slots-{RUN}", "kind": "replication_slot_inactive", "enabled": False, "params": {}}
        assert client.post("/alerts/rules", json=rule).status_code == 201, rule
        subjects = {a["subject"] for a in client.post(f"/alerts/rules/slots-{RUN}/evaluate").json()["alerts"]}
        assert any(orphan in s for s in subjects) and any(slot in s for s in subjects), subjects
        bad = client.post(
            "/alerts/rules", json={**rule, "name": f"slots-bad-{RUN}", "params": {"threshold_bytes": "1G"}}
        )
        assert bad.status_code == 422 and "threshold_bytes" in bad.text, bad.text
        high = {**rule, "name": f"slots-high-{RUN}", "params": {"threshold_bytes": 2**50}}
        assert client.post("/alerts/rules", json=high).status_code == 201
        assert client.post(f"/alerts/rules/slots-high-{RUN}/evaluate").json() == {"alerts": []}
        with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_TEST_DB}", autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (orphan,))

        # Explicit decommission: slot and publication gone, the connector STOPPED; resuming snapshots again.
        assert client.put(f"/connectors/{name}/resume").status_code == 202
        done = client.post(f"/connectors/{name}/decommission")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["state"] == "STOPPED" and body["slot"] == slot
        assert body["dropped"] == [f"replication slot {slot}", f"publication {slot}"]
        assert body["offsets_cleared"] == [f"pg_logical:{slot}"]
        slots_now, pubs_now = server_objects(pg_url)
        assert slot not in slots_now and slot not in pubs_now
        assert client.get(f"/connectors/{name}/status").json()["connector"]["state"] == "STOPPED"
        before = len(reader.events)
        assert client.put(f"/connectors/{name}/resume").status_code == 202
        wait_until(lambda: slot in server_objects(pg_url)[0], 30, message="slot created again")
        wait_until(
            lambda: sum(1 for op, _ in reader.read(1.0)[before:] if op == "r") >= 3, 40, message="snapshot again"
        )

        # Delete: decommissioned first, and said so.
        gone = client.delete(f"/connectors/{name}")
        assert gone.status_code == 204
        said = gone.headers["X-Huiliu-Decommissioned"]
        assert f"replication slot {slot}" in said and f"publication {slot}" in said
        slots_now, pubs_now = server_objects(pg_url)
        assert slot not in slots_now and slot not in pubs_now
        audit = client.get("/audit", params={"action": "DELETE*"}).json()
        entry = next(e for e in audit if e["path"] == f"/connectors/{name}")
        assert f"replication slot {slot}" in entry["detail"]["decommission"]
    finally:
        reader.close()


def test_explicit_decommission_refuses_connectors_without_server_state(cluster, pg_url):
    table, name = f"dc_ts_{RUN}", f"dc-ts-{RUN}"
    make_table(pg_url, table)
    config = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": "dc",
        "table": table,
        "timestamp_column": "updated_at",
    }
    assert (
        cluster.post("/connectors", json={"name": name, "config": config, "initial_state": "PAUSED"}).status_code == 201
    )
    r = cluster.post(f"/connectors/{name}/decommission")
    assert r.status_code == 400 and r.json()["error_code"] == 400 and "holds nothing" in r.json()["message"]
    assert "X-Huiliu-Decommissioned" not in cluster.delete(f"/connectors/{name}").headers


def test_binlog_connectors_hold_nothing_on_the_server(cluster, stack_settings, mysql_url):
    result = decommission("b", "relational.mysql_binlog", {}, stack_settings)
    assert result == {"kind": "mysql", "dropped": [], "note": BINLOG_NOTE}
    from sqlalchemy import create_engine, text

    engine = create_engine(mysql_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS dc_binlog_{RUN} (id int PRIMARY KEY)"))
    engine.dispose()
    name = f"dc-binlog-{RUN}"
    config = {
        "connector.class": "relational.mysql_binlog",
        "url": mysql_url,
        "system": "dc",
        "tables": [f"dc_binlog_{RUN}"],
    }
    r = cluster.post("/connectors", json={"name": name, "config": config, "initial_state": "STOPPED"})
    assert r.status_code == 201, r.text
    topics = cluster.get(f"/connectors/{name}/topics").json()[name]["topics"]
    assert topics == [topic_name(stack_settings.topic_prefix, "dc", None, f"dc_binlog_{RUN}")]
    said = cluster.post(f"/connectors/{name}/decommission").json()
    assert said["kind"] == "mysql" and said["dropped"] == [] and said["note"] == BINLOG_NOTE
    gone = cluster.delete(f"/connectors/{name}")
    assert gone.status_code == 204 and gone.headers["X-Huiliu-Decommissioned"] == BINLOG_NOTE


def test_a_server_that_cannot_be_reached_keeps_the_connector(cluster, pg_url):
    """Decommission fails (the source database is gone): the connector is kept with its state and the
    answer says why; ?decommission=false deletes it anyway."""
    db = f"huiliu_dc_gone_{RUN}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    url = pg_url.rsplit("/", 1)[0] + f"/{db}"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    name = f"dc-gone-{RUN}"
    config = {"connector.class": "relational.pg_logical", "url": url, "system": "dc", "tables": ["t"]}
    r = cluster.post("/connectors", json={"name": name, "config": config, "initial_state": "PAUSED"})
    assert r.status_code == 201, r.text
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {db} WITH (FORCE)")
    refused = cluster.delete(f"/connectors/{name}")
    assert refused.status_code == 409, refused.text
    message = refused.json()["message"]
    assert refused.json()["error_code"] == 409 and f"Connector {name} was not deleted" in message
    assert f"huiliu_dc_gone_{RUN}" in message and "?decommission=false" in message
    assert cluster.get(f"/connectors/{name}/status").json()["connector"]["state"] == "PAUSED"  # as it was
    assert cluster.delete(f"/connectors/{name}", params={"decommission": "false"}).status_code == 204
    assert cluster.get(f"/connectors/{name}").status_code == 404


def test_connectors_sharing_a_default_slot_are_refused(cluster, pg_url):
    table = f"dc_twin_{RUN}"
    make_table(pg_url, table)
    config = {"connector.class": "relational.pg_logical", "url": pg_url, "system": "dc", "tables": [table]}
    first = cluster.post("/connectors", json={"name": f"dc-twin-{RUN}", "config": config, "initial_state": "STOPPED"})
    assert first.status_code == 201, first.text
    twin = cluster.post("/connectors", json={"name": f"dc.twin.{RUN}", "config": config, "initial_state": "STOPPED"})
    assert twin.status_code == 400, twin.text
    [error] = twin.json()["errors"]
    assert error["field"] == "slot_name" and f"huiliu_dc_twin_{RUN}" in error["message"]
    assert f"dc-twin-{RUN}" not in error["message"]  # the other connector is not named
    own = {**config, "slot_name": f"huiliu_twin2_{RUN}", "publication": f"huiliu_twin2_{RUN}"}
    ok = cluster.post("/connectors", json={"name": f"dc.twin.{RUN}", "config": own, "initial_state": "STOPPED"})
    assert ok.status_code == 201, ok.text
    for name in (f"dc-twin-{RUN}", f"dc.twin.{RUN}"):
        assert cluster.delete(f"/connectors/{name}").status_code == 204


def test_undeploying_a_log_cdc_pipeline_drops_its_slot(cluster, stack_settings, pg_url):
    """A pipeline whose source is log CDC: undeploy retires the source stage like DELETE does."""
    client = cluster
    table, name = f"dc_pipe_{RUN}", f"dcpipe-{RUN}"
    slot = f"huiliu_dcpipe_{RUN}_source"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 3))
    doc = {
        "name": name,
        "source": {"kind": "relational.pg_logical", "config": {"url": pg_url, "system": "dcp", "tables": [table]}},
        "sink": {"kind": "clickhouse", "config": {"table": f"dc_pipe_ch_{RUN}"}},
    }
    assert client.post("/pipelines", json=doc).status_code == 201
    assert client.post(f"/pipelines/{name}/deploy").status_code == 200
    wait_until(lambda: slot in server_objects(pg_url)[0], 60, message="the pipeline's slot created")
    r = client.post(f"/pipelines/{name}/undeploy")
    assert r.status_code == 200, r.text
    assert f"{name}-source" in r.json()["removed"]
    slots, pubs = server_objects(pg_url)
    assert slot not in slots and slot not in pubs
