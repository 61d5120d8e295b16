"""A third-party Kafka Connect client (kafka-connect-py, as installed from PyPI) drives the connector API
of a real API process and worker: HTTP Basic with a user's name and password and with an API key as the
password, cluster info, create with initial_state, list, status, pause/resume, restart (204, and 202
with the states), task restart, stop, topics and their reset, delete; every error in Kafka Connect's
body; another tenant's connector is 404 on the new routes; failed Basic sign-ins back off (429).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import requests
from kafka_connect.kafka_connect import KafkaConnect

from api.auth import api_key_for
from schemas.naming import topic_name
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
PASSWORD = "Kc-client-pw-7731"  # no ':' (the client splits "user:password" on it)


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    logs = tmp_path_factory.mktemp("kc-client-logs")
    api, base = start_api(stack_settings, logs / "api.log")
    worker = start_worker(stack_settings, f"kc-worker-{RUN}", logs / "worker.log")
    op = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(stack_settings)}, timeout=60)
    users = {}
    for tenant in ("kca", "kcb"):
        name = f"kc-{tenant}-{RUN}"
        r = op.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": ["developer"]})
        assert r.status_code == 201, r.text
        users[tenant] = name
    key = op.post("/api-keys", json={"name": f"kc-key-{RUN}", "tenant": "kca", "roles": ["developer"]})
    assert key.status_code == 201, key.text
    yield {"base": base, "op": op, "users": users, "key": key.json()["key"], "logs": logs}
    for name in op.get("/connectors").json():
        if RUN in name:
            op.delete(f"/connectors/{name}")
    op.close()
    stop(worker)
    stop(api)


def client(cluster, tenant="kca") -> KafkaConnect:
    return KafkaConnect(url=cluster["base"], auth=f"{cluster['users'][tenant]}:{PASSWORD}")


def error_of(exc: requests.HTTPError) -> tuple[int, dict]:
    if exc.response is None:  # the client's restart raises HTTPError(response.text) itself
        body = json.loads(str(exc))
        return body["error_code"], body
    return exc.response.status_code, exc.response.json()


def test_basic_auth_with_password_and_with_an_api_key(cluster):
    info = client(cluster).get_cluster_info()
    assert set(info) == {"version", "commit", "kafka_cluster_id"} and info["version"]
    assert info["kafka_cluster_id"]  # read from the broker
    by_key = KafkaConnect(url=cluster["base"], auth=f"anyone:{cluster['key']}")
    assert isinstance(by_key.list_connectors(), list)
    with pytest.raises(requests.HTTPError) as bad:
        KafkaConnect(url=cluster["base"], auth=f"{cluster['users']['kca']}:wrong-password").list_connectors()
    assert error_of(bad.value) == (401, {"error_code": 401, "message": "wrong username or password"})
    with pytest.raises(requests.HTTPError) as bad:
        KafkaConnect(url=cluster["base"], auth="anyone:hlk_nope_nope").list_connectors()
    assert error_of(bad.value)[0] == 401 and error_of(bad.value)[1]["error_code"] == 401
    # No credential at all: 401 in Kafka Connect's body too
    r = httpx.get(cluster["base"] + "/")
    assert r.status_code == 401 and r.json()["error_code"] == 401 and "message" in r.json()
    # The audit log names the typed user of the failed Basic sign-in
    audit = cluster["op"].get("/audit", params={"actor": cluster["users"]["kca"], "outcome": "denied"}).json()
    assert any(e["status"] == 401 and e["path"] == "/connectors" for e in audit), audit


def test_failed_basic_sign_ins_back_off(cluster):
    name = f"kc-nobody-{RUN}"
    statuses = []
    for _ in range(7):
        r = httpx.get(cluster["base"] + "/connectors", auth=(name, "not-the-password"))
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["error_code"] == 429 and int(r.headers["Retry-After"]) > 0
            break
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses
    # the owner of another name signing in from here is not affected
    assert httpx.get(cluster["base"] + "/connectors", auth=(cluster["users"]["kca"], PASSWORD)).status_code == 200


def test_a_client_drives_a_connector_through_its_lifecycle(cluster, stack_settings, pg_url):
    kc = client(cluster)
    table, name = f"kc_people_{RUN}", f"kc-people-{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 6))
    config = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": "kc",
        "db_schema": "public",
        "table": table,
        "timestamp_column": "updated_at",
    }
    created = kc.create_connector({"name": name, "config": config, "initial_state": "PAUSED"})
    assert created["name"] == name and created["type"] == "source"
    assert name in kc.list_connectors()
    assert kc.get_connector_config(name)["name"] == name
    wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "PAUSED", 30, message="PAUSED")
    assert kc.get_connector_status(name)["connector"]["state"] == "PAUSED"
    topic = topic_name(stack_settings.topic_prefix, "kc", "public", table)
    assert kc.list_connector_topics(name) == {name: {"topics": [topic]}}
    assert kc.reset_connector_topics(name) is None

    kc.resume_connector(name)
    wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "RUNNING", 30, message="RUNNING")
    reader = TopicReader(stack_settings, topic)
    try:
        reader.wait_for_ids(set(range(1, 6)))
        listed = kc.list_connectors(expand="status")
        assert listed[name]["status"]["connector"]["state"] == "RUNNING"
        assert kc.list_connectors(state="running", pattern=f"kc-people-{RUN}") == [name]

        kc.pause_connector(name)
        wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "PAUSED", 30, message="paused")
        kc.resume_connector(name)
        wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "RUNNING", 30, message="resumed")

        assert kc.restart_connector(name) is None  # 204, as Kafka Connect without flags
        states = kc.restart_connector(name, include_tasks=True)  # 202 with the states
        assert states["name"] == name and states["connector"]["state"] == "RESTARTING"
        assert [t["state"] for t in states["tasks"]] == ["RESTARTING"]
        wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "RUNNING", 30, message="restarted")
        states = kc.restart_connector(name, include_tasks=True, only_failed=True)  # nothing failed: no restart
        assert states["connector"]["state"] == "RUNNING" and states["tasks"][0]["state"] == "RUNNING"
        assert kc.restart_connector_task(name, 0) is None
        with pytest.raises(requests.HTTPError) as missing:
            kc.restart_connector_task(name, 5)
        assert error_of(missing.value) == (404, {"error_code": 404, "message": f"Task {name}/5 not found"})

        insert_rows(pg_url, table, range(6, 9))
        reader.wait_for_ids(set(range(1, 9)))
        kc.stop_connector(name)
        wait_until(lambda: kc.get_connector_status(name)["tasks"][0]["state"] == "STOPPED", 30, message="STOPPED")
        assert kc.get_connector_status(name)["connector"]["state"] == "STOPPED"
        insert_rows(pg_url, table, [9])
        reader.read(3)
        assert 9 not in reader.ids()  # stopped: nothing captured
        kc.resume_connector(name)
        reader.wait_for_ids(set(range(1, 10)))
    finally:
        reader.close()

    kc.delete_connector(name)
    assert name not in kc.list_connectors()
    with pytest.raises(requests.HTTPError) as gone:
        kc.get_connector(name)
    assert error_of(gone.value) == (404, {"error_code": 404, "message": f"Connector {name} not found"})


def test_errors_are_kafka_connect_bodies_and_tenants_stay_apart(cluster, pg_url):
    kc, other = client(cluster), client(cluster, "kcb")
    table, name = f"kc_scope_{RUN}", f"kc-scope-{RUN}"
    make_table(pg_url, table)
    config = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": "kc",
        "table": table,
        "timestamp_column": "updated_at",
    }
    kc.create_connector({"name": name, "config": config, "initial_state": "STOPPED"})
    for call in (
        lambda: other.get_connector(name),
        lambda: other.get_connector_config(name),
        lambda: other.stop_connector(name),
        lambda: other.restart_connector_task(name, 0),
        lambda: other.list_connector_topics(name),
        lambda: other.reset_connector_topics(name),
        lambda: other.restart_connector(name, include_tasks=True),
        lambda: other.delete_connector(name),
    ):
        with pytest.raises(requests.HTTPError) as refused:
            call()
        assert error_of(refused.value) == (404, {"error_code": 404, "message": f"Connector {name} not found"})
    assert name not in other.list_connectors()
    assert kc.get_connector_status(name)["connector"]["state"] == "STOPPED"  # untouched

    base, auth = cluster["base"], (cluster["users"]["kca"], PASSWORD)
    bad = httpx.post(base + "/connectors", auth=auth, json={"name": f"x-{RUN}", "config": config, "initial_state": "X"})
    assert bad.status_code == 400 and bad.json()["error_code"] == 400 and "initial_state" in bad.json()["message"]
    taken = httpx.post(base + "/connectors", auth=auth, json={"name": name, "config": config})
    assert taken.json() == {"error_code": 409, "message": f"Connector name {name} is not available"}
    big = httpx.get(base + f"/connectors/{name}/tasks/99999999999999999999/status", auth=auth)
    assert big.status_code == 422 and "99999" not in big.text  # refused at the edge (api/edge.py), not echoed
    assert big.json()["error_code"] == 422 and big.json()["message"]
    bad_json = httpx.post(
        base + "/connectors", auth=auth, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422 and bad_json.json()["error_code"] == 422 and "message" in bad_json.json()
    # a caller without connector:manage: 403 in the same body
    viewer = f"kc-viewer-{RUN}"
    cluster["op"].post("/users", json={"username": viewer, "password": PASSWORD, "tenant": "kca", "roles": ["viewer"]})
    denied = httpx.get(base + "/", auth=(viewer, PASSWORD))
    assert denied.status_code == 403 and denied.json() == {
        "error_code": 403,
        "message": "permission 'connector:manage' required",
    }
    kc.delete_connector(name)
