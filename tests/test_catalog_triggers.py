"""Catalogue harvests nobody starts by hand (issue 15): a connector created RUNNING or resumed is
harvested as a job (the create call does not wait for it), a schedule runs the `metadata.harvest`
action in its tenant; file sources are catalogued with their declared columns and their lineage to
the topic, HDFS sinks with their directories. Bad schedule params answer 422."""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api_process import api_client, wait_for  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
SCHEMA = f"trg{RUN}"
TENANT = f"trgt{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"


@pytest.fixture(scope="module")
def source(pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        c.execute(text(f"CREATE TABLE {SCHEMA}.parcel (id bigint PRIMARY KEY, owner_name text)"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.parcel.owner_name IS '权利人名称'"))
    yield engine
    engine.dispose()


def _datasets(client: httpx.Client, **params) -> dict[str, dict]:
    return {d["urn"]: d for d in client.get("/metadata/datasets", params={"limit": 1000, **params}).json()["items"]}


def _harvest_jobs(api: httpx.Client, connector: str) -> list[dict]:
    jobs = api.get("/jobs", params={"type": "metadata.harvest"}).json()
    return [j for j in jobs if connector in ((j.get("result") or {}).get("connectors") or [])]


def _relational(name: str, pg_url: str, state: str) -> dict:
    config = {
        "connector.class": "relational.snapshot",
        "url": pg_url,
        "system": f"land{RUN}",
        "tables": {"schemas": [SCHEMA], "include": [f"{SCHEMA}.*"]},
    }
    return {"name": name, "config": config, "initial_state": state}


def test_a_connector_created_running_is_harvested_by_a_job(api, source, pg_url):
    name = f"trg-run-{RUN}"
    t0 = time.perf_counter()
    r = api.post("/connectors", json=_relational(name, pg_url, "RUNNING"))
    assert r.status_code == 201, r.text
    created_in = time.perf_counter() - t0
    job = wait_for(lambda: [j for j in _harvest_jobs(api, name) if j["state"] == "succeeded"], 120)[0]
    assert job["progress"] == 100 and not job["result"]["errors"], job
    parcel = next(d for d in _datasets(api).values() if d["name"] == f"{SCHEMA}.parcel")
    assert parcel["kind"] == "table" and parcel["version"] == 1
    full = api.get(f"/metadata/datasets/{quote(parcel['urn'], safe='')}").json()
    assert {f["name"]: f["comment"] for f in full["fields"]} == {"id": None, "owner_name": "权利人名称"}
    assert created_in < 10  # the inspection ran in the job, not in the request
    assert api.delete(f"/connectors/{name}").status_code in (200, 204)


def test_a_stopped_connector_is_harvested_when_resumed_not_when_created(api, source, pg_url):
    name = f"trg-stop-{RUN}"
    assert api.post("/connectors", json=_relational(name, pg_url, "STOPPED")).status_code == 201
    time.sleep(1)
    assert _harvest_jobs(api, name) == []  # jobs list their result once done; none was even queued
    queued = {j["id"] for j in api.get("/jobs", params={"type": "metadata.harvest"}).json()}
    assert api.put(f"/connectors/{name}/resume").status_code == 202
    done = wait_for(lambda: [j for j in _harvest_jobs(api, name) if j["state"] == "succeeded"], 120)
    assert all(j["id"] not in queued for j in done)
    assert api.delete(f"/connectors/{name}").status_code in (200, 204)


@pytest.fixture(scope="module")
def tenant_client(api):
    user = f"{TENANT}-admin"
    r = api.post("/users", json={"username": user, "password": PASSWORD, "tenant": TENANT, "roles": ["admin"]})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": user, "password": PASSWORD}).json()["access_token"]
    with httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        yield c


def test_a_schedule_harvests_its_tenants_connectors(api, tenant_client, source, pg_url):
    name = f"trg-sched-{RUN}"
    body = {**_relational(name, pg_url, "STOPPED"), "tenant": TENANT}
    assert tenant_client.post("/connectors", json=body).status_code == 201
    other = f"trg-other-{RUN}"  # the operator's own connector: not the tenant's to harvest
    assert api.post("/connectors", json=_relational(other, pg_url, "STOPPED")).status_code == 201
    r = tenant_client.post(
        "/schedules", json={"name": f"harvest-{RUN}", "action": "metadata.harvest", "params": {}, "cron": None}
    )
    assert r.status_code == 201, r.text
    assert tenant_client.post(f"/schedules/harvest-{RUN}/run").status_code == 202
    run = wait_for(
        lambda: [x for x in tenant_client.get(f"/schedules/harvest-{RUN}/runs").json() if x["status"] != "running"],
        120,
    )[0]
    assert run["status"] == "succeeded", run
    assert run["counts"]["datasets"] >= 1 and run["counts"]["new"] >= 1
    seen = _datasets(tenant_client)
    assert any(d["name"] == f"{SCHEMA}.parcel" and d["tenant"] == TENANT for d in seen.values())
    refused = tenant_client.post(
        "/schedules",
        json={"name": f"h2-{RUN}", "action": "metadata.harvest", "params": {"connectors": [other]}, "cron": None},
    )
    assert refused.status_code == 422 and other in refused.text  # another tenant's reads as unknown


@pytest.mark.parametrize(
    "params, says",
    [
        ({"connectors": "all"}, "params.connectors"),
        ({"connectors": [1]}, "params.connectors"),
        ({"connectors": ["no-such-connector"]}, "no-such-connector"),
        ({"tables": ["x"]}, "params.tables"),
    ],
)
def test_bad_schedule_params_answer_422(api, params, says):
    r = api.post(
        "/schedules", json={"name": f"bad-{uuid.uuid4().hex[:6]}", "action": "metadata.harvest", "params": params}
    )
    assert r.status_code == 422 and says in r.text, r.text


def test_a_file_source_is_catalogued_with_its_declared_columns_and_lineage_to_its_topic(api, stack_settings):
    root = stack_settings.resolved_data_root / f"trgfiles-{RUN}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.csv").write_text("序号,权利人\n1,张三\n", encoding="utf-8")
    name, table = f"trg-files-{RUN}", f"parcels_{RUN}"
    config = {
        "connector.class": "files",
        "system": f"landf{RUN}",
        "table": table,
        "store": {"root": str(root), "pattern": "*.csv"},
        "columns": [
            {"name": "id", "type": "int", "key": True, "source": "序号"},
            {"name": "holder", "source": "权利人"},
            {"name": "area", "type": "decimal", "precision": 12, "scale": 2, "nullable": False},
        ],
    }
    r = api.post("/connectors", json={"name": name, "config": config, "initial_state": "RUNNING"})
    assert r.status_code == 201, r.text
    wait_for(lambda: [j for j in _harvest_jobs(api, name) if j["state"] == "succeeded"], 120)
    files = _datasets(api, kind="files")
    ds = next(d for d in files.values() if d["name"] == str(root))
    assert ds["urn"].startswith("hl:dataset:file://") and ds["urn"].endswith(f"trgfiles-{RUN}/*.csv")
    full = api.get(f"/metadata/datasets/{quote(ds['urn'], safe='')}").json()
    fields = [(f["name"], f["type"], f["nullable"], f["key"], f["comment"]) for f in full["fields"]]
    assert fields == [
        ("id", "int", True, True, "序号"),
        ("holder", "string", True, False, "权利人"),
        ("area", "decimal(12,2)", False, False, None),
    ]
    assert full["properties"]["files"] == 1 and full["properties"]["format"] == "csv"
    graph = api.get(f"/lineage/{quote(ds['urn'], safe='')}", params={"direction": "downstream"}).json()
    topic = next(n for n in graph["nodes"] if n["hops"] == 1)
    assert topic["dataset"].startswith("hl:dataset:kafka://") and topic["dataset"].endswith(table)
    assert api.delete(f"/connectors/{name}").status_code in (200, 204)


def test_an_hdfs_sink_is_catalogued_with_its_directories(api, stack_settings):
    name, topic = f"trg-hdfs-{RUN}", f"huiliu.landh{RUN}.public.deeds.clean"
    namenode = f"127.0.0.1:{stack_settings.clickhouse_http_port}"  # an allowed local port; nothing is listed
    config = {"connector.class": "hdfs", "topics": [topic], "url": f"http://{namenode}", "root": "/warehouse"}
    r = api.post("/connectors", json={"name": name, "config": config, "initial_state": "STOPPED"})
    assert r.status_code == 201, r.text
    assert api.put(f"/connectors/{name}/resume").status_code == 202
    wait_for(lambda: [j for j in _harvest_jobs(api, name) if j["state"] == "succeeded"], 120)
    urn = f"hl:dataset:hdfs://{namenode}/warehouse/deeds"
    ds = api.get(f"/metadata/datasets/{quote(urn, safe='')}").json()
    assert ds["kind"] == "files" and ds["name"] == "/warehouse/deeds", ds
    graph = api.get(f"/lineage/{quote(urn, safe='')}", params={"direction": "upstream"}).json()
    assert [n["dataset"] for n in graph["nodes"] if n["hops"] == 1] == [
        f"hl:dataset:kafka://{stack_settings.kafka_bootstrap}/{topic}"
    ]
    assert api.put(f"/connectors/{name}/stop").status_code == 204
    assert api.delete(f"/connectors/{name}").status_code in (200, 204)
