"""Tenant scope of connectors, schedules, alert rules, messages, imports and logs (issue 20), over
real HTTP against a real API process with two tenants.

Tenant b's admin, developer and operator get 404 on tenant a's objects for every route (403 when
they lack the route's permission), the objects are unchanged afterwards, lists show only a
caller's own tenant, a masked secret sent back is kept only while its endpoint is unchanged,
schedule and alert secrets are sealed in the control DB and masked in answers, and tenant a's
audit log shows tenant b's attempts.

The API runs with its own state dir and SQLite control DB and no broker (nothing here publishes):
port HUILIU_TEST_PORT_BASE + 160.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

import httpx
import pytest

from api.auth import api_key_for
from deploy.settings import Settings
from tests.api_process import start_api, stop_api, wait_for
from tests.conftest import PORT_BASE  # noqa: E402 - the worker's block under pytest-xdist

RUN = uuid.uuid4().hex[:6]
A, B = f"ta{RUN}", f"tb{RUN}"
pytestmark = pytest.mark.integration  # runs the API as a process
PASSWORD = "Quartz-Lumen-7741-Tarn"
CONN_SECRET = f"ConnSecret{RUN}x9"
SCHED_SECRET = f"SchedSecret{RUN}x9"
SMTP_SECRET = f"SmtpSecret{RUN}x9"
ROLES = ("admin", "developer", "operator")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    state = tmp_path_factory.mktemp("tenant-scope")
    settings = Settings(
        state_dir=state,
        control_db_url="",  # SQLite in the state dir: read directly below
        kafka_bootstrap=f"127.0.0.1:{PORT_BASE + 161}",  # nothing there: not needed
        schema_registry_url=f"http://127.0.0.1:{PORT_BASE + 162}",
        clickhouse_url=f"clickhouse://default:@127.0.0.1:{PORT_BASE + 163}/default",
        api_port=PORT_BASE + 160,
    )
    proc, base = start_api(settings)
    op = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(settings)}, timeout=60)
    users = {}
    for tenant in (A, B):
        for role in ROLES:
            name = f"{tenant}-{role}"
            r = op.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": [role]})
            assert r.status_code == 201, r.text
            token = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD})
            assert token.status_code == 200, token.text
            users[(tenant, role)] = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=60
            )
    yield {"settings": settings, "op": op, "users": users, "base": base}
    for client in (op, *users.values()):
        client.close()
    stop_api(proc)


def as_(world, tenant, role) -> httpx.Client:
    return world["users"][(tenant, role)]


def db_dump(world, table: str) -> str:
    with sqlite3.connect(world["settings"].state_dir / "control.db") as db:
        return repr(db.execute(f"SELECT * FROM {table}").fetchall())


def files_config(world, tenant: str, table: str, **store) -> dict:
    root = world["settings"].resolved_data_root / tenant
    (root / "watched").mkdir(parents=True, exist_ok=True)
    return {
        "connector.class": "files",
        "system": f"s{RUN}",
        "table": table,
        "store": {"root": str(root), "pattern": "watched/*.csv", **store},
        "settle_seconds": 0,
        "columns": [{"name": "id", "type": "int", "key": True}, {"name": "name"}],
    }


def pipeline_document(name: str) -> dict:
    return {
        "name": name,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": f"postgresql+psycopg://etl:pw{RUN}@db.example:5432/civil",
                "system": "civil",
                "table": "population",
                "timestamp_column": "updated_at",
            },
        },
        "sink": {"kind": "clickhouse", "config": {"table": "population"}},
    }


@pytest.fixture(scope="module")
def a_connector(world):
    name = f"{A}-conn"
    config = files_config(world, A, "people", host="files-a.example", user="ann", password=CONN_SECRET)
    r = as_(world, A, "developer").post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text
    assert CONN_SECRET not in r.text and r.json()["config"]["store"]["password"] == "****"
    return name


def stored_connector(world, name):
    from connectors.store import ConnectorStore

    return ConnectorStore.for_settings(world["settings"]).get(name)


# -- connectors ----------------------------------------------------------------------------------
def test_another_tenants_connector_answers_404_everywhere_and_is_left_unchanged(world, a_connector):
    name = a_connector
    before = stored_connector(world, name)
    assert before.tenant == A and before.target_state == "RUNNING"
    attempts = [
        ("GET", f"/connectors/{name}", None),
        ("GET", f"/connectors/{name}/config", None),
        ("GET", f"/connectors/{name}/status", None),
        ("GET", f"/connectors/{name}/tasks", None),
        ("GET", f"/connectors/{name}/tasks/0/status", None),
        ("GET", f"/connectors/{name}/snapshots", None),
        ("PUT", f"/connectors/{name}/config", files_config(world, B, "people", host="evil.example")),
        ("PUT", f"/connectors/{name}/pause", None),
        ("PUT", f"/connectors/{name}/resume", None),
        ("POST", f"/connectors/{name}/restart", None),
        ("POST", f"/connectors/{name}/snapshot", {"tables": []}),
        ("DELETE", f"/connectors/{name}", None),
        ("POST", "/imports", {"connector": name, "path": "watched/x.csv"}),
    ]
    for role in ROLES:
        client = as_(world, B, role)
        for method, path, body in attempts:
            r = client.request(method, path, json=body)
            # 404 for holders of the permission; the operator role lacks connector:manage: 403
            expected = 403 if role == "operator" else 404
            assert r.status_code == expected, (role, method, path, r.status_code, r.text)
            assert CONN_SECRET not in r.text and "files-a.example" not in r.text
    after = stored_connector(world, name)
    assert after.config == before.config and after.target_state == "RUNNING" and after.version == before.version
    assert after.tenant == A
    assert as_(world, A, "developer").get(f"/connectors/{name}").status_code == 200


def test_connector_lists_show_only_the_callers_tenant(world, a_connector):
    b_name = f"{B}-conn"
    r = as_(world, B, "developer").post("/connectors", json={"name": b_name, "config": files_config(world, B, "b")})
    assert r.status_code == 201, r.text
    b_list = as_(world, B, "developer").get("/connectors").json()
    assert b_name in b_list and a_connector not in b_list
    expanded = as_(world, B, "admin").get("/connectors", params={"expand": ["info", "status"]}).json()
    assert b_name in expanded and a_connector not in expanded
    a_list = as_(world, A, "developer").get("/connectors").json()
    assert a_connector in a_list and b_name not in a_list
    everything = world["op"].get("/connectors").json()
    assert {a_connector, b_name} <= set(everything)


def test_a_taken_connector_name_answers_the_same_whoever_owns_it(world, a_connector):
    config = files_config(world, B, "dup")
    theirs = as_(world, B, "developer").post("/connectors", json={"name": a_connector, "config": config})
    ours = as_(world, A, "developer").post("/connectors", json={"name": a_connector, "config": config})
    assert theirs.status_code == ours.status_code == 409
    assert theirs.json() == ours.json() and "exists" not in theirs.text
    assert stored_connector(world, a_connector).tenant == A


def test_creating_in_a_tenant_you_do_not_see_is_403(world):
    r = as_(world, B, "developer").post(
        "/connectors", json={"name": f"{B}-into-a", "config": files_config(world, B, "x"), "tenant": A}
    )
    assert r.status_code == 403
    r = as_(world, B, "developer").put(
        f"/connectors/{B}-into-a2/config", params={"tenant": A}, json=files_config(world, B, "x")
    )
    assert r.status_code == 403
    assert f"{B}-into-a" not in world["op"].get("/connectors").json()


def test_a_masked_password_is_kept_only_while_the_endpoint_is_unchanged(world, a_connector):
    client = as_(world, A, "developer")
    shown = client.get(f"/connectors/{a_connector}/config").json()
    assert shown["store"]["password"] == "****"
    for change in ({"host": "collector.attacker.example"}, {"port": 2121}, {"user": "mallory"}):
        moved = {**shown, "store": {**shown["store"], **change}}
        r = client.put(f"/connectors/{a_connector}/config", json=moved)
        assert r.status_code == 422, (change, r.text)
        assert "store.password" in r.text and "endpoint changed" in r.text
        assert stored_connector(world, a_connector).config["store"]["host"] == "files-a.example"
    # same endpoint, another setting changed: the stored password is kept
    same = {**shown, "settle_seconds": 1}
    r = client.put(f"/connectors/{a_connector}/config", json=same)
    assert r.status_code == 200, r.text
    kept = stored_connector(world, a_connector).config
    assert kept["store"]["password"] == CONN_SECRET and kept["settle_seconds"] == 1
    # a new host with the password sent again is fine
    fresh = {**shown, "store": {**shown["store"], "host": "files-a2.example", "password": CONN_SECRET + "2"}}
    assert client.put(f"/connectors/{a_connector}/config", json=fresh).status_code == 200
    fresh["store"] = {**fresh["store"], "host": "files-a.example", "password": CONN_SECRET}
    assert client.put(f"/connectors/{a_connector}/config", json=fresh).status_code == 200


def test_the_same_rule_for_pipeline_documents(world):
    client = as_(world, A, "developer")
    name = f"{A}-pipe-secret"
    assert client.post("/pipelines", json=pipeline_document(name)).status_code == 201
    got = client.get(f"/pipelines/{name}")
    doc = got.json()["document"]
    url = doc["source"]["config"]["url"]
    assert ":****@" in url
    doc["source"]["config"]["url"] = url.replace("db.example", "attacker.example")
    r = client.put(f"/pipelines/{name}", headers={"If-Match": got.headers["ETag"]}, json=doc)
    assert r.status_code == 422 and "endpoint changed" in r.text
    doc["source"]["config"]["url"] = url.replace("/civil", "/civil2")  # same server: kept
    r = client.put(f"/pipelines/{name}", headers={"If-Match": got.headers["ETag"]}, json=doc)
    assert r.status_code == 200, r.text
    from api.pipelines.store import pipeline_store_for

    stored = pipeline_store_for(world["settings"]).document(name)["document"]
    assert stored["source"]["config"]["url"] == f"postgresql+psycopg://etl:pw{RUN}@db.example:5432/civil2"


def test_import_reports_belong_to_the_connectors_tenant_and_samples_need_data_view(world, a_connector):
    from connectors.files.reports import ImportReports

    reports = ImportReports(world["settings"].resolved_control_db_url)
    iid = reports.begin(a_connector, "watched/a.csv", 10, 1.0, None)
    bad_value = f"Secret-Row-{RUN}"
    reports.update(iid, 1, 1, [{"row": 2, "line": 3, "reason": f"column 'id': not an int: '{bad_value}'"}], "done")
    for role in ROLES:
        client = as_(world, B, role)
        assert client.get(f"/imports/{iid}").status_code == 404
        listed = client.get("/imports").json()["imports"]
        assert all(i["connector"] != a_connector for i in listed)
        assert client.get("/imports", params={"connector": a_connector}).json()["imports"] == []
    full = as_(world, A, "developer").get(f"/imports/{iid}")  # developer: data:view
    assert full.status_code == 200 and bad_value in full.text
    counts = as_(world, A, "operator").get(f"/imports/{iid}")  # operator: imports:view, no data:view
    assert counts.status_code == 200 and bad_value not in counts.text
    body = counts.json()
    assert body["rows_bad"] == 1 and body["errors"][0]["line"] == 3 and "'id'" in body["errors"][0]["reason"]
    assert any(i["id"] == iid for i in as_(world, A, "operator").get("/imports").json()["imports"])


# -- schedules -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def a_schedule(world):
    params = {"count": 3, "url": f"postgresql://etl:{SCHED_SECRET}@db-a.example:5432/x", "token": SCHED_SECRET}
    r = as_(world, A, "operator").post("/schedules", json={"name": f"{A}-nightly", "action": "noop", "params": params})
    assert r.status_code == 201, r.text
    assert SCHED_SECRET not in r.text and r.json()["params"]["token"] == "****" and r.json()["tenant"] == A
    run = as_(world, A, "operator").post(f"/schedules/{r.json()['id']}/run")
    assert run.status_code == 202, run.text
    return {**r.json(), "run": run.json()["id"]}


def test_another_tenants_schedule_answers_404_and_is_left_unchanged(world, a_schedule):
    sid, name = a_schedule["id"], a_schedule["name"]
    wait_for(lambda: as_(world, A, "operator").get(f"/schedule-runs/{a_schedule['run']}").json()["status"] != "running")
    runs_before = as_(world, A, "operator").get(f"/schedules/{sid}/runs").json()
    for role in ROLES:
        client = as_(world, B, role)
        for ref in (sid, name):
            for method, path, body in [
                ("GET", f"/schedules/{ref}", None),
                ("PATCH", f"/schedules/{ref}", {"enabled": False}),
                ("POST", f"/schedules/{ref}/run", None),
                ("POST", f"/schedules/{ref}/trigger", {"key": "x"}),
                ("GET", f"/schedules/{ref}/runs", None),
                ("DELETE", f"/schedules/{ref}", None),
            ]:
                r = client.request(method, path, json=body)
                expected = 403 if role == "developer" else 404  # developers lack schedules:manage
                assert r.status_code == expected, (role, method, path, r.text)
                assert SCHED_SECRET not in r.text
        r = client.get(f"/schedule-runs/{a_schedule['run']}")
        assert r.status_code == (403 if role == "developer" else 404)
    after = as_(world, A, "operator").get(f"/schedules/{sid}").json()
    assert after["enabled"] is True and after["params"]["count"] == 3
    assert as_(world, A, "operator").get(f"/schedules/{sid}/runs").json() == runs_before


def test_schedule_lists_names_and_dependencies_stay_inside_a_tenant(world, a_schedule):
    b = as_(world, B, "operator")
    assert all(s["tenant"] == B for s in b.get("/schedules").json())
    # names are per tenant: tenant b can use the same name, learning nothing about tenant a
    r = b.post("/schedules", json={"name": a_schedule["name"], "action": "noop"})
    assert r.status_code == 201 and r.json()["id"] != a_schedule["id"]
    assert b.get(f"/schedules/{a_schedule['name']}").json()["id"] == r.json()["id"]
    assert as_(world, A, "operator").get(f"/schedules/{a_schedule['name']}").json()["id"] == a_schedule["id"]
    # another tenant's schedule reads as unknown in depends_on
    dep = b.post("/schedules", json={"name": f"{B}-after-a", "action": "noop", "depends_on": [a_schedule["id"]]})
    assert dep.status_code == 422 and "no schedule" in dep.text
    # and a schedule may not point at another tenant's pipeline
    pipe = f"{A}-pipe-target"
    assert as_(world, A, "developer").post("/pipelines", json=pipeline_document(pipe)).status_code == 201
    r = b.post("/schedules", json={"name": f"{B}-x", "action": "noop", "params": {"pipeline": pipe}})
    assert r.status_code == 422 and "no pipeline" in r.text
    doc = {**pipeline_document(pipe), "tenant": None}
    r = b.post("/schedules", json={"name": f"{B}-y", "action": "noop", "params": {"document": doc}})
    assert r.status_code == 422 and "not available" in r.text


def test_schedule_secrets_are_sealed_at_rest_and_kept_only_for_the_same_endpoint(world, a_schedule):
    assert SCHED_SECRET not in db_dump(world, "schedules")
    client = as_(world, A, "operator")
    shown = client.get(f"/schedules/{a_schedule['id']}").json()["params"]
    assert ":****@" in shown["url"] and shown["token"] == "****"
    r = client.patch(f"/schedules/{a_schedule['id']}", json={"params": {**shown, "count": 4}})
    assert r.status_code == 200 and SCHED_SECRET not in r.text
    from api.scheduling.store import ScheduleStore

    store = ScheduleStore(world["settings"].resolved_control_db_url, world["settings"].state_dir)
    kept = store.get(a_schedule["id"])["params"]
    assert kept["token"] == SCHED_SECRET and SCHED_SECRET in kept["url"] and kept["count"] == 4
    moved = {**shown, "url": shown["url"].replace("db-a.example", "attacker.example")}
    r = client.patch(f"/schedules/{a_schedule['id']}", json={"params": moved})
    assert r.status_code == 422 and "endpoint changed" in r.text
    assert SCHED_SECRET not in db_dump(world, "schedules")


# -- alert rules and messages --------------------------------------------------------------------
CHANNEL = {"smtp_host": "127.0.0.1", "smtp_port": 2525, "to": ["ops-a@example.org"], "password": SMTP_SECRET}


@pytest.fixture(scope="module")
def a_rule(world):
    from deploy.control import StageCounters

    pipe = f"{A}-pipe-alert"
    assert as_(world, A, "developer").post("/pipelines", json=pipeline_document(pipe)).status_code == 201
    counters = StageCounters(world["settings"].resolved_control_db_url, pipe)
    counters.add("runner", {"read": 10, "valid": 5, "quarantined": 5})
    body = {
        "name": f"{A}-quarantine",
        "kind": "quarantine_rate",
        "params": {"pipeline": pipe, "threshold_pct": 10},
        "channel": CHANNEL,
        "interval_seconds": 3600,
    }
    r = as_(world, A, "operator").post("/alerts/rules", json=body)
    assert r.status_code == 201, r.text
    assert SMTP_SECRET not in r.text and r.json()["channel"]["password"] == "****"
    ev = as_(world, A, "operator").post(f"/alerts/rules/{r.json()['id']}/evaluate")
    assert ev.status_code == 200 and ev.json()["alerts"][0]["outcome"] == "sent", ev.text
    return {**r.json(), "pipeline": pipe, "message": ev.json()["alerts"][0]["message_id"]}


def test_another_tenants_alert_rule_answers_404_and_keeps_its_recipients(world, a_rule):
    rid, name = a_rule["id"], a_rule["name"]
    for role in ROLES:
        client = as_(world, B, role)
        for ref in (rid, name):
            for method, path, body in [
                ("GET", f"/alerts/rules/{ref}", None),
                ("PATCH", f"/alerts/rules/{ref}", {"channel": {**CHANNEL, "to": ["mallory@example.org"]}}),
                ("PATCH", f"/alerts/rules/{ref}", {"enabled": False}),
                ("POST", f"/alerts/rules/{ref}/evaluate", None),
                ("DELETE", f"/alerts/rules/{ref}", None),
            ]:
                r = client.request(method, path, json=body)
                expected = 403 if role == "developer" else 404  # developers lack alerts:manage
                assert r.status_code == expected, (role, method, path, r.text)
        if role != "developer":
            assert all(rule["tenant"] == B for rule in client.get("/alerts/rules").json())
    after = as_(world, A, "operator").get(f"/alerts/rules/{rid}").json()
    assert after["channel"]["to"] == ["ops-a@example.org"] and after["enabled"] is True


def test_alert_rules_cannot_watch_another_tenants_pipeline(world, a_rule):
    r = as_(world, B, "operator").post(
        "/alerts/rules",
        json={
            "name": f"{B}-spy",
            "kind": "quarantine_rate",
            "params": {"pipeline": a_rule["pipeline"], "threshold_pct": 1},
        },
    )
    assert r.status_code == 422 and "no pipeline" in r.text


def test_alert_secrets_are_sealed_and_kept_only_for_the_same_smtp_server(world, a_rule):
    assert SMTP_SECRET not in db_dump(world, "alert_rules")
    client = as_(world, A, "operator")
    shown = client.get(f"/alerts/rules/{a_rule['id']}").json()["channel"]
    # recipients are not a secret: the owner may change them and keep the password
    r = client.patch(f"/alerts/rules/{a_rule['id']}", json={"channel": {**shown, "to": ["ops-a2@example.org"]}})
    assert r.status_code == 200 and r.json()["channel"]["to"] == ["ops-a2@example.org"]
    from api.alerts.store import AlertStore

    store = AlertStore(world["settings"].resolved_control_db_url, world["settings"].state_dir)
    assert store.get_rule(a_rule["id"], redact=False)["channel"]["password"] == SMTP_SECRET
    r = client.patch(f"/alerts/rules/{a_rule['id']}", json={"channel": {**shown, "smtp_host": "smtp.attacker.example"}})
    assert r.status_code == 422 and "channel.password" in r.text
    assert store.get_rule(a_rule["id"], redact=False)["channel"]["smtp_host"] == "127.0.0.1"
    assert SMTP_SECRET not in db_dump(world, "alert_rules")


def test_messages_are_scoped_to_the_tenant_of_their_rule(world, a_rule):
    mid = a_rule["message"]
    assert any(m["id"] == mid for m in as_(world, A, "operator").get("/messages").json())
    for role in ROLES:
        client = as_(world, B, role)
        assert all(m["id"] != mid for m in client.get("/messages").json())
        assert client.get("/messages", params={"rule": a_rule["id"]}).status_code == 404
        assert client.post(f"/messages/{mid}/read").status_code == 404
    assert not next(m for m in as_(world, A, "operator").get("/messages").json() if m["id"] == mid)["read"]


# -- logs and audit ------------------------------------------------------------------------------
def test_logs_show_a_tenant_only_its_own_lines(world, a_connector):
    rid = f"a-{RUN}-{uuid.uuid4().hex[:6]}"
    a = as_(world, A, "operator")
    assert a.get("/connectors", headers={"X-Request-ID": rid}).status_code == 403  # any request is logged
    mine = wait_for(lambda: a.get("/logs", params={"request_id": rid}).json()["lines"], timeout=10)
    assert all(line["tenant"] == A for line in mine)
    assert as_(world, B, "operator").get("/logs", params={"request_id": rid}).json()["lines"] == []
    b_lines = as_(world, B, "operator").get("/logs", params={"limit": 5000}).json()
    assert b_lines["file"] is None and all(line["tenant"] == B for line in b_lines["lines"])
    assert world["op"].get("/logs", params={"request_id": rid}).json()["lines"]  # the operator sees all
    # a request id reused by another tenant's caller gives that caller none of the first one's lines
    as_(world, B, "operator").get("/schedules", headers={"X-Request-ID": rid})
    assert as_(world, B, "operator").get("/logs", params={"request_id": rid}).json()["lines"] == []


def test_tenant_as_audit_log_shows_tenant_bs_attempts(world, a_connector, a_schedule, a_rule):
    as_(world, B, "admin").get(f"/connectors/{a_connector}")
    as_(world, B, "admin").delete(f"/schedules/{a_schedule['id']}")
    as_(world, B, "admin").get(f"/alerts/rules/{a_rule['id']}")
    entries = as_(world, A, "admin").get("/audit", params={"actor": f"{B}-admin", "limit": 1000}).json()
    paths = {e["path"] for e in entries}
    assert f"/connectors/{a_connector}" in paths
    assert f"/schedules/{a_schedule['id']}" in paths
    assert f"/alerts/rules/{a_rule['id']}" in paths
    # and tenant b's own audit log is not flooded with tenant a's entries
    b_view = as_(world, B, "admin").get("/audit", params={"actor": f"{A}-developer"}).json()
    assert b_view == []


def test_schedule_and_rule_json_rows_are_sealed(world, a_schedule, a_rule):
    with sqlite3.connect(world["settings"].state_dir / "control.db") as db:
        params = db.execute("SELECT params FROM schedules WHERE id = ?", (a_schedule["id"],)).fetchone()[0]
        channel = db.execute("SELECT channel FROM alert_rules WHERE id = ?", (a_rule["id"],)).fetchone()[0]
    assert json.loads(params)["token"].startswith("enc:") and json.loads(channel)["password"].startswith("enc:")


def test_metrics_show_a_tenant_only_its_own_pipelines(world, a_rule):
    pipe = a_rule["pipeline"]
    a_metrics = as_(world, A, "operator").get("/metrics")
    b_metrics = as_(world, B, "operator").get("/metrics")
    assert a_metrics.status_code == b_metrics.status_code == 200
    assert f'pipeline="{pipe}"' in a_metrics.text
    assert pipe not in b_metrics.text and A not in b_metrics.text
    assert "huiliu_jobs" in b_metrics.text  # installation-wide counts stay
    assert f'pipeline="{pipe}"' in world["op"].get("/metrics").text


def test_deployed_connectors_belong_to_the_pipelines_tenant(tmp_path, monkeypatch):
    """api.pipelines.deploy in-process (a real deploy needs the whole stack): the connectors get the
    pipeline's tenant; a same-named connector of a tenant the deployer does not see is refused and
    left alone, undeploy removes only the pipeline's own tenant's connectors."""
    from types import SimpleNamespace

    from api.pipelines import deploy as deployment
    from connectors.store import ConnectorStore

    def fake_validate(name, config, settings, **_):
        plugin = SimpleNamespace(name=config["connector.class"], kind="source")
        return SimpleNamespace(name=name, plugin=plugin, kind="source", config=config, task_count=lambda: 1), []

    monkeypatch.setattr(deployment, "validate", fake_validate)
    monkeypatch.setattr(deployment, "prepare_topics", lambda spec, settings: None)
    settings = Settings(state_dir=tmp_path, control_db_url="")
    store = ConnectorStore.for_settings(settings)
    current = {"version": 1, "document": {**pipeline_document("pdep"), "tenant": A}}

    result = deployment.deploy(store, "pdep", current, settings, sees=lambda t: t == A)
    assert sorted(result["changed"]) == ["runner", "sink", "source"]
    assert {store.get(f"pdep-{s}").tenant for s in deployment.STAGES} == {A}
    assert deployment.deployed_version(store, "pdep", A) == 1 and deployment.deployed_version(store, "pdep", B) is None

    # tenant b's pipeline of a name whose connectors tenant a holds: refused, a's connectors untouched
    theirs = {"version": 7, "document": {**pipeline_document("pdep"), "tenant": B}}
    with pytest.raises(deployment.DeployInvalid) as refused:
        deployment.deploy(store, "pdep", theirs, settings, sees=lambda t: t == B)
    assert "not available" in str(refused.value) and A not in str(refused.value)
    assert store.get("pdep-runner").tenant == A and store.get("pdep-runner").config["pipeline_version"] == 1
    assert deployment.undeploy(store, "pdep", B) == [] and store.get("pdep-source") is not None
    assert deployment.undeploy(store, "pdep", A) == ["source", "runner", "sink"]


def test_log_records_carry_the_tenant_of_their_request_or_job():
    import contextvars
    import logging
    import threading

    from deploy.logs import RequestIdFilter, in_tenant, request_id_var, set_request_tenant

    def tenant_of_a_line(**extra) -> str | None:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "line", None, None)
        for k, v in extra.items():
            setattr(record, k, v)
        RequestIdFilter().filter(record)
        return record.tenant

    rid = f"unit-{RUN}"
    token = request_id_var.set(rid)
    try:
        context = contextvars.copy_context()  # as a threadpool dependency runs: in a copy of the context
        threading.Thread(target=context.run, args=(set_request_tenant, A)).start()
    finally:
        request_id_var.reset(token)
    wait_for(lambda: tenant_of_a_line(request_id=rid) == A, timeout=5)
    token = request_id_var.set(rid)  # the same id claimed by a caller of another tenant
    try:
        contextvars.copy_context().run(set_request_tenant, B)
    finally:
        request_id_var.reset(token)
    assert tenant_of_a_line(request_id=rid) is None  # neither tenant gets the other's lines
    seen = []
    job = in_tenant(A, lambda: seen.append(tenant_of_a_line()))
    threading.Thread(target=job).start()
    wait_for(lambda: seen, timeout=5)
    assert seen == [A] and tenant_of_a_line() is None


def test_a_deleted_connectors_name_stays_with_its_tenant(world):
    """Offsets, file tracking and import reports stay under a deleted connector's name: another
    tenant's new connector of that name would resume from them and see those reports."""
    name = f"{A}-gone"
    a = as_(world, A, "developer")
    assert a.post("/connectors", json={"name": name, "config": files_config(world, A, "gone")}).status_code == 201
    assert a.delete(f"/connectors/{name}").status_code == 204
    b = as_(world, B, "developer")
    taken = b.post("/connectors", json={"name": name, "config": files_config(world, B, "gone")})
    assert taken.status_code == 409 and "not available" in taken.text
    assert b.put(f"/connectors/{name}/config", json=files_config(world, B, "gone")).status_code == 409
    assert a.post("/connectors", json={"name": name, "config": files_config(world, A, "gone")}).status_code == 201
    assert stored_connector(world, name).tenant == A


def test_the_migrations_build_the_tenant_columns(tmp_path):
    from sqlalchemy import create_engine, inspect

    from deploy.migrate import differences, upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(engine)
    mine = ("connect_connectors", "connect_name_owners", "schedules", "alert_rules", "messages")
    assert [d for d in differences(engine) if any(t in str(d) for t in mine)] == []
    uniques = {u["name"]: u["column_names"] for u in inspect(engine).get_unique_constraints("schedules")}
    assert uniques == {"uq_schedule_tenant_name": ["tenant", "name"]}
    engine.dispose()


def test_the_migration_gives_existing_rows_their_known_tenant(tmp_path):
    """A control DB of the previous release: schedules and rules get their creator's tenant, a
    pipeline's deployed connectors the pipeline's, messages their rule's; the rest none."""
    from sqlalchemy import create_engine, text

    from deploy.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    rows = [
        "INSERT INTO identity_users (username, password_hash, display_name, tenant, superuser, disabled, roles,"
        " groups, tenants, grants, failed_logins, created_at) VALUES ('ann', 'x', 'Ann', 'ta', 0, 0, '[]', '[]',"
        " '[]', '[]', 0, '2026')",
        "INSERT INTO schedules (id, name, action, params, depends_on, enabled, created_by, created_at, updated_at)"
        " VALUES ('s1', 'nightly', 'noop', '{}', '[]', 1, 'ann', 1, 1),"
        " ('s2', 'other', 'noop', '{}', '[]', 1, 'operator', 1, 1)",
        "INSERT INTO alert_rules (id, name, kind, params, throttle_seconds, interval_seconds, enabled, created_by,"
        " created_at) VALUES ('r1', 'lag', 'consumer_lag', '{}', 1, 1, 1, 'ann', 1)",
        "INSERT INTO messages (created_at, category, level, rule_id, subject, read) VALUES (1, 'alert', 'error',"
        " 'r1', 'x', 0)",
        "INSERT INTO pipelines (name, tenant, version, deleted, created_at, updated_at, updated_by) VALUES"
        " ('pop', 'ta', 1, 0, '1', '1', 'ann')",
        "INSERT INTO connect_connectors (name, kind, plugin, config_masked, config_enc, target_state, version,"
        " task_count, created_at, updated_at) VALUES ('pop-runner', 'processor', 'runner.lean', '{}', 'x', 'RUNNING',"
        " 1, 1, 1, 1), ('handmade', 'source', 'files', '{}', 'x', 'RUNNING', 1, 1, 1, 1)",
    ]
    with engine.begin() as conn:
        for statement in rows:
            conn.execute(text(statement))
    upgrade(engine)
    with engine.connect() as conn:

        def tenants(table, key):
            return dict(conn.execute(text(f"SELECT {key}, tenant FROM {table}")).all())

        assert tenants("schedules", "id") == {"s1": "ta", "s2": None}
        assert tenants("alert_rules", "id") == {"r1": "ta"}
        assert tenants("messages", "rule_id") == {"r1": "ta"}
        assert tenants("connect_connectors", "name") == {"pop-runner": "ta", "handmade": None}
    engine.dispose()


def test_a_capture_cannot_write_into_another_tenants_pipeline(world):
    """pipeline.capture with a document (or a YAML file) named like another tenant's pipeline would
    publish to its topics and move its offsets: refused like an unknown name, by jobs and schedules."""
    import yaml

    pipe = f"{A}-pipe-capture"
    assert as_(world, A, "developer").post("/pipelines", json=pipeline_document(pipe)).status_code == 201
    root_b = world["settings"].resolved_data_root / B
    root_b.mkdir(parents=True, exist_ok=True)
    doc = pipeline_document(pipe)
    doc["source"]["config"]["url"] = f"sqlite:///{root_b / 'source.db'}"
    (root_b / "steal.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    b = as_(world, B, "operator")
    for params in ({"document": doc}, {"path": "steal.yaml"}):
        r = b.post("/jobs", json={"action": "pipeline.capture", "params": params})
        assert r.status_code == 422 and "not available" in r.text, (params, r.text)
        r = b.post(
            "/schedules", json={"name": f"{B}-steal-{len(params)}", "action": "pipeline.capture", "params": params}
        )
        assert r.status_code == 422 and "not available" in r.text, (params, r.text)


def test_a_tenants_task_failed_rule_sees_only_its_own_schedules(world):
    canary = f"B-failure-{RUN}"
    b = as_(world, B, "operator")
    made = b.post("/schedules", json={"name": f"{B}-failing", "action": "fail", "params": {"message": canary}})
    assert made.status_code == 201, made.text
    run = b.post(f"/schedules/{made.json()['id']}/run").json()
    wait_for(lambda: b.get(f"/schedule-runs/{run['id']}").json()["status"] == "failed")
    outcomes = {}
    for tenant in (A, B):
        client = as_(world, tenant, "operator")
        rule = client.post(
            "/alerts/rules", json={"name": f"{tenant}-failures", "kind": "task_failed", "interval_seconds": 3600}
        )
        assert rule.status_code == 201, rule.text
        outcomes[tenant] = client.post(f"/alerts/rules/{rule.json()['id']}/evaluate").json()["alerts"]
    assert not any(f"{B}-failing" in o["subject"] for o in outcomes[A])
    assert any(f"{B}-failing" in o["subject"] for o in outcomes[B])
    assert canary not in str(as_(world, A, "operator").get("/messages").json())
    assert canary in str(b.get("/messages").json())
