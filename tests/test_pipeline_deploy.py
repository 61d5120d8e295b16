"""Deploy / undeploy a pipeline over HTTP (issue 7): a real API process and one real worker process.

A PostgreSQL table with valid and invalid rows, a pipeline (trim + required + regex rules,
ClickHouse sink) saved through the API, deployed: the worker runs its source, runner and sink
connectors until ClickHouse (FINAL, `_deleted = 0`) holds exactly the valid rows, trimmed, and
`/deployment` shows the three stages RUNNING with the deployed version. A second deploy changes
nothing; undeploy removes the connectors.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from sinks.clickhouse import client_from_url
from tests.connect_cluster import (
    api_and_worker,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    wait_until,
)

RUN = uuid.uuid4().hex[:6]
NAME = f"deploy-{RUN}"
TABLE = f"deploy_src_{RUN}"
CH_TABLE = f"deploy_ch_{RUN}"

ROWS = [  # id, name, phone
    (1, "  Alice ", "13800000001"),
    (2, "Bob", " 13900000002 "),
    (3, "Carol", "13700000003"),
    (4, None, "13800000004"),  # name_required
    (5, "Dave", "not-a-phone"),  # phone_format
    (6, "Erin", "12345"),  # phone_format
]
VALID = {1: ("Alice", "13800000001"), 2: ("Bob", "13900000002"), 3: ("Carol", "13700000003")}


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    logs = tmp_path_factory.mktemp("deploy-logs")
    with api_and_worker(stack_settings, logs, f"worker-deploy-{RUN}") as client:
        yield client, logs
        client.post(f"/pipelines/{NAME}/undeploy")


def _make_source(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(
            text(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text, phone text, updated_at timestamp NOT NULL)")
        )
        for i, name, phone in ROWS:
            conn.execute(
                text(f"INSERT INTO {TABLE} VALUES (:i, :n, :p, clock_timestamp())"), {"i": i, "n": name, "p": phone}
            )
    engine.dispose()


def _document(pg_url: str) -> dict:
    return {
        "name": NAME,
        "description": "deploy test",
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": pg_url,
                "system": f"dep{RUN}",
                "db_schema": "public",
                "table": TABLE,
                "timestamp_column": "updated_at",
            },
        },
        "transforms": [{"kind": "trim", "fields": ["name", "phone"]}],
        "rules": [
            {"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"},
            {"id": "phone_format", "kind": "regex", "fields": ["phone"], "pattern": "^1\\d{10}$", "severity": "reject"},
        ],
        "sink": {"kind": "clickhouse", "config": {"table": CH_TABLE}},
    }


def _clickhouse_rows(settings) -> dict:
    client = client_from_url(settings.clickhouse_url)
    try:
        if not client.execute("EXISTS TABLE " + CH_TABLE)[0][0]:
            return {}
        return {
            i: (n, p) for i, n, p in client.execute(f"SELECT id, name, phone FROM {CH_TABLE} FINAL WHERE _deleted = 0")
        }
    finally:
        client.disconnect()


def test_deploy_runs_the_pipeline_and_undeploy_stops_it(cluster, stack_settings, pg_url):
    client, logs = cluster
    _make_source(pg_url)
    r = client.post("/pipelines", json=_document(pg_url))
    assert r.status_code == 201, r.text

    before = client.get(f"/pipelines/{NAME}/deployment").json()
    assert before["deployed"] is False and before["version"] is None

    r = client.post(f"/pipelines/{NAME}/deploy")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and sorted(r.json()["changed"]) == ["runner", "sink", "source"]
    names = set(client.get("/connectors").json())
    assert {f"{NAME}-source", f"{NAME}-runner", f"{NAME}-sink"} <= names
    assert client.get(f"/connectors/{NAME}-runner").json()["type"] == "sink"

    def rows():
        got = _clickhouse_rows(stack_settings)
        return got == VALID or None

    try:
        wait_until(rows, 150, interval=1.0, message="ClickHouse holds exactly the valid rows")
    except AssertionError:
        raise AssertionError(
            f"{_clickhouse_rows(stack_settings)}\n"
            f"{client.get(f'/pipelines/{NAME}/deployment').json()}\n"
            f"{(logs / 'worker.log').read_text()[-4000:]}"
        )

    def running():
        d = client.get(f"/pipelines/{NAME}/deployment").json()
        ok = all(
            s["state"] == "RUNNING" and s["tasks"] and all(t["state"] == "RUNNING" for t in s["tasks"])
            for s in d["stages"].values()
        )
        return d if ok else None

    d = wait_until(running, 30, message="three stages RUNNING")
    assert d["deployed"] and d["version"] == 1 and d["latest_version"] == 1 and d["up_to_date"]
    assert set(d["stages"]) == {"source", "runner", "sink"}
    assert d["stages"]["runner"]["connector"] == f"{NAME}-runner"

    # What an operator sees: every stage counted under the pipeline's name (one assembly path).
    stats = wait_until(
        lambda: (
            (s := client.get(f"/pipelines/{NAME}/stats").json()["stages"]).get("sink", {}).get("written") == 3 and s
        ),
        30,
        message="stats of every stage",
    )
    assert stats["source"]["read"] == 6
    assert stats["runner"]["read"] == 6 and stats["runner"]["valid"] == 3 and stats["runner"]["quarantined"] == 3

    # Deploying the same version again touches nothing (no restarts).
    r = client.post(f"/pipelines/{NAME}/deploy")
    assert r.status_code == 200 and r.json()["changed"] == [], r.text

    r = client.post(f"/pipelines/{NAME}/undeploy")
    assert r.status_code == 200, r.text
    assert sorted(r.json()["removed"]) == sorted(f"{NAME}-{s}" for s in ("source", "runner", "sink"))
    names = set(client.get("/connectors").json())
    assert not names & {f"{NAME}-source", f"{NAME}-runner", f"{NAME}-sink"}
    after = client.get(f"/pipelines/{NAME}/deployment").json()
    assert after["deployed"] is False and all(s["state"] == "NOT_DEPLOYED" for s in after["stages"].values())


def test_deploy_of_an_unknown_pipeline_is_404(cluster):
    client, _ = cluster
    assert client.post("/pipelines/no-such-pipeline-xyz/deploy").status_code == 404
    assert client.get("/pipelines/no-such-pipeline-xyz/deployment").status_code == 404


def test_deploy_needs_the_permission_and_the_tenant(cluster, pg_url):
    from tests.support.identity import login, make_user

    client, _ = cluster
    base, key = str(client.base_url).rstrip("/"), client.headers["X-API-Key"]
    doc = {**_document(pg_url), "name": f"{NAME}-t", "tenant": f"dep-a-{RUN}"}
    assert client.post("/pipelines", json=doc).status_code == 201, "create"
    make_user(base, key, f"dep-viewer-{RUN}", roles=["viewer"], tenant=f"dep-a-{RUN}")
    make_user(base, key, f"dep-op-b-{RUN}", roles=["operator"], tenant=f"dep-b-{RUN}")
    viewer, other = login(base, f"dep-viewer-{RUN}"), login(base, f"dep-op-b-{RUN}")
    assert httpx.post(f"{base}/pipelines/{NAME}-t/deploy", headers=viewer).status_code == 403
    assert httpx.get(f"{base}/pipelines/{NAME}-t/deployment", headers=viewer).status_code == 200
    assert httpx.post(f"{base}/pipelines/{NAME}-t/deploy", headers=other).status_code == 404
    assert httpx.post(f"{base}/pipelines/{NAME}-t/undeploy", headers=other).status_code == 404
    assert f"{NAME}-t-source" not in client.get("/connectors").json()


def test_a_faust_runner_and_any_registered_sink_deploy_through_the_same_path(cluster, stack_settings, pg_url):
    """`runner: {kind: faust}` is honoured by API deploy (a Faust worker process under the worker)."""
    client, logs = cluster
    name, table = f"faust-{RUN}", f"deploy_ch_faust_{RUN}"
    _make_source(pg_url)
    doc = {**_document(pg_url), "name": name, "runner": {"kind": "faust", "within_seconds": 0.2}}
    doc["source"] = {**doc["source"], "config": {**doc["source"]["config"], "system": f"fst{RUN}"}}
    doc["sink"] = {"kind": "clickhouse", "config": {"table": table}}
    assert client.post("/pipelines", json=doc).status_code == 201
    try:
        assert client.post(f"/pipelines/{name}/deploy").status_code == 200
        assert client.get(f"/connectors/{name}-runner/config").json()["connector.class"] == "runner.faust"

        def loaded():
            ch = client_from_url(stack_settings.clickhouse_url)
            try:
                if not ch.execute("EXISTS TABLE " + table)[0][0]:
                    return None
                return ch.execute(f"SELECT count() FROM {table} FINAL WHERE _deleted = 0")[0][0] == 3 or None
            finally:
                ch.disconnect()

        try:
            wait_until(loaded, 180, interval=1.0, message="the Faust runner's clean rows in ClickHouse")
        except AssertionError:
            raise AssertionError((logs / "worker.log").read_text()[-4000:])
        stages = client.get(f"/pipelines/{name}/stats").json()["stages"]
        assert stages["runner"]["valid"] == 3 and stages["runner"]["quarantined"] == 3
        # its quality metrics land in ClickHouse as the lean runner's do (open windows written on stop)
        assert client.post(f"/pipelines/{name}/undeploy").status_code == 200
        expected = [("", "name_required", 6, 1), ("", "phone_format", 6, 2)]  # scope "": the operator's
        wait_until(
            lambda: _quality_metrics(stack_settings, name) == expected or None,
            60,
            interval=1.0,
            message=f"the Faust runner's quality metrics {expected} (have {_quality_metrics(stack_settings, name)})",
        )
    finally:
        client.post(f"/pipelines/{name}/undeploy")


def _quality_metrics(settings, pipeline: str) -> list[tuple]:
    ch = client_from_url(settings.clickhouse_url)
    try:
        if not ch.execute("EXISTS TABLE quality_metrics")[0][0]:
            return []
        return ch.execute(
            "SELECT scope, rule, sum(evaluated), sum(failed) FROM quality_metrics WHERE pipeline = %(p)s "
            "GROUP BY scope, rule ORDER BY rule",
            {"p": pipeline},
        )
    finally:
        ch.disconnect()


def test_a_document_that_cannot_run_is_refused_on_save_naming_the_field(cluster, pg_url):
    client, _ = cluster
    doc = {**_document(pg_url), "name": f"bad-{RUN}"}
    cases = {
        ("rules", 0, "id"): [{"kind": "required", "fields": ["name"]}],
        ("rules", 0, "pattern"): [{"id": "r", "kind": "regex", "fields": ["phone"], "pattern": "("}],
        ("rules", 0, "bogus"): [{"id": "r", "kind": "required", "fields": ["name"], "bogus": 1}],
    }
    for loc, rules in cases.items():
        r = client.post("/pipelines", json={**doc, "rules": rules})
        assert r.status_code == 422, r.text
        assert any(tuple(e["loc"][1:]) == loc for e in r.json()["detail"]), (loc, r.json())
    dup = [{"id": "r", "kind": "required", "fields": ["name"]}, {"id": "r", "kind": "required", "fields": ["phone"]}]
    assert client.post("/pipelines", json={**doc, "rules": dup}).status_code == 422
    r = client.post("/pipelines", json={**doc, "sink": {"kind": "runner.lean", "config": {}}})
    assert r.status_code == 422 and any(e["loc"] == ["body", "sink", "kind"] for e in r.json()["detail"])
    r = client.post("/pipelines", json={**doc, "sink": {"kind": "hdfs", "config": {"url": "http://127.0.0.1:9"}}})
    assert r.status_code == 201, r.text  # any registered sink plugin is a pipeline sink
