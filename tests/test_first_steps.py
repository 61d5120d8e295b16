"""Issue 14, what a new operator hits, over HTTP against a real API (and worker) process:
lifecycles that left things behind (a deleted deployed pipeline orphaned its connectors; two
pipelines silently shared a source table's raw topic) and first steps (the first admin had no
tenant, `huiliu api` printed nothing, worker logs never reached GET /logs, no unauthenticated
liveness probe, `huiliu stack status` cut addresses at 100 columns).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from deploy.settings import settings_env
from tests.api_process import api_client, wait_for  # noqa: F401 - a fixture: api
from tests.connect_cluster import make_table, start_worker, stop
from tests.support.identity import PASSWORD, login

RUN = uuid.uuid4().hex[:6]
ROOT = Path(__file__).resolve().parents[1]


def _document(name: str, pg_url: str, table: str, system: str) -> dict:
    return {
        "name": name,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": pg_url,
                "system": system,
                "db_schema": "public",
                "table": table,
                "timestamp_column": "updated_at",
            },
        },
        "sink": {"kind": "clickhouse", "config": {"table": f"life_{name.replace('-', '_')}"}},
    }


def test_a_deployed_pipeline_cannot_be_deleted_until_undeployed(api, pg_url):
    name, table = f"life-{RUN}", f"life_src_{RUN}"
    make_table(pg_url, table)
    assert api.post("/pipelines", json=_document(name, pg_url, table, f"life{RUN}")).status_code == 201
    r = api.post(f"/pipelines/{name}/deploy")
    assert r.status_code == 200, r.text
    try:
        r = api.delete(f"/pipelines/{name}")
        assert r.status_code == 409 and "undeploy first" in r.json()["detail"], r.text
        # nothing orphaned: the pipeline and its deployment still answer
        assert api.get(f"/pipelines/{name}").status_code == 200
        assert api.get(f"/pipelines/{name}/deployment").json()["deployed"] is True
        stats = api.get(f"/pipelines/{name}/stats")  # no worker here: "not run yet", not "no pipeline"
        assert stats.status_code == 200 or "has not run yet" in stats.json()["detail"], stats.text
    finally:
        assert api.post(f"/pipelines/{name}/undeploy").status_code == 200
    assert api.delete(f"/pipelines/{name}").status_code == 204
    assert not {f"{name}-source", f"{name}-runner", f"{name}-sink"} & set(api.get("/connectors").json())


def test_a_second_pipeline_on_the_same_source_table_is_refused_naming_the_first(api, pg_url):
    first, second, third, table = f"share-a-{RUN}", f"share-b-{RUN}", f"share-c-{RUN}", f"share_src_{RUN}"
    make_table(pg_url, table)
    for name, system in ((first, f"sh{RUN}"), (second, f"sh{RUN}"), (third, f"shc{RUN}")):
        assert api.post("/pipelines", json=_document(name, pg_url, table, system)).status_code == 201
    assert api.post(f"/pipelines/{first}/deploy").status_code == 200
    try:
        r = api.post(f"/pipelines/{second}/deploy")
        assert r.status_code == 409, r.text
        assert repr(first) in r.json()["detail"] and f"sh{RUN}" in r.json()["detail"]
        assert f"{second}-source" not in api.get("/connectors").json()
        # its own source system name: its own raw topic, no sharing
        r = api.post(f"/pipelines/{third}/deploy")
        assert r.status_code == 200, r.text
        assert api.post(f"/pipelines/{first}/deploy").status_code == 200  # redeploying itself is no sharing
    finally:
        for name in (first, third):
            api.post(f"/pipelines/{name}/undeploy")
    assert api.post(f"/pipelines/{second}/deploy").status_code == 200  # the first is gone: allowed
    api.post(f"/pipelines/{second}/undeploy")


def test_the_first_admin_gets_the_default_tenant_and_can_create_a_pipeline(api, pg_url):
    base, admin = str(api.base_url).rstrip("/"), f"first-admin-{RUN}"
    r = api.post("/users", json={"username": admin, "password": PASSWORD, "roles": ["admin"]})
    assert r.status_code == 201 and r.json()["tenant"] == "default", r.text
    headers = login(base, admin)
    table = f"first_src_{RUN}"
    make_table(pg_url, table)
    r = httpx.post(f"{base}/pipelines", headers=headers, json=_document(f"first-{RUN}", pg_url, table, f"fa{RUN}"))
    assert r.status_code == 201 and r.json()["tenant"] == "default", r.text
    # a tenant the account cannot use: the message says what the *account* has
    doc = {**_document(f"first-x-{RUN}", pg_url, table, f"fx{RUN}"), "tenant": "newcomer"}
    r = httpx.post(f"{base}/pipelines", headers=headers, json=doc)
    assert r.status_code == 403 and f"your account ({admin}) has access to 'default'" in r.json()["detail"]
    # a superuser created without a tenant stays without one (sees every tenant)
    r = api.post("/users", json={"username": f"root-{RUN}", "password": PASSWORD, "superuser": True})
    assert r.status_code == 201 and r.json()["tenant"] is None


def test_liveness_needs_no_credential_and_reveals_nothing(api):
    r = httpx.get(str(api.base_url).rstrip("/") + "/livez")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert httpx.get(str(api.base_url).rstrip("/") + "/health").status_code == 401  # details stay behind a credential
    before = len(api.get("/audit", params={"action": "GET /livez", "limit": 1000}).json())
    httpx.get(str(api.base_url).rstrip("/") + "/livez")
    assert len(api.get("/audit", params={"action": "GET /livez", "limit": 1000}).json()) == before  # not audited


def test_huiliu_api_prints_its_address_docs_and_key(api, stack_settings):
    out = Path(stack_settings.state_dir) / f"api-{stack_settings.api_port}.out"  # tests/api_process.start_api
    text = out.read_text()
    address = f"http://{stack_settings.api_host}:{stack_settings.api_port}"
    assert f"Huiliu API on {address}" in text and f"{address}/docs" in text, text[-2000:]
    assert str(Path(stack_settings.state_dir) / "api_key") in text and "huiliu worker" in text


def test_worker_log_lines_reach_get_logs(api, stack_settings, tmp_path):
    worker_id = f"logs-worker-{RUN}"
    worker = start_worker(stack_settings, worker_id, tmp_path / "worker.log")
    try:
        found = wait_for(
            lambda: api.get("/logs", params={"q": worker_id, "limit": 20}).json()["lines"], timeout=60, every=1
        )
        assert any(line["logger"].startswith("connectors.") for line in found), found
    finally:
        stop(worker)


def test_stack_status_is_readable_at_100_columns_with_the_clickhouse_http_port(stack_settings):
    env = {**os.environ, **settings_env(stack_settings), "COLUMNS": "100", "TERM": "dumb"}
    r = subprocess.run(
        [sys.executable, "-m", "api.cli", "stack", "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), r.stdout
    assert "…" not in r.stdout, r.stdout  # nothing cut
    host = stack_settings.clickhouse_url.split("@")[-1].split(":")[0]
    assert f"http {host}:{stack_settings.clickhouse_http_port}" in r.stdout, r.stdout
    # the PostgreSQL URL, folded over lines but whole: join the address column's pieces
    cells = [re.split(r"[│┃]", line)[2].strip() for line in lines if line.count("│") >= 5]
    assert "127.0.0.1:5432" in "".join(cells), r.stdout


def test_the_readme_tells_an_operator_to_start_a_worker():
    operating = (ROOT / "README.md").read_text(encoding="utf-8").split("## Operating it", 1)[1]
    assert "huiliu worker" in operating and "/livez" in operating


def test_a_pipeline_deleted_while_deployed_earlier_can_be_undeployed_by_its_tenant(api, pg_url, stack_settings):
    from api.pipelines.store import pipeline_store_for

    base, name, table, tenant = str(api.base_url).rstrip("/"), f"orphan-{RUN}", f"orphan_src_{RUN}", f"orph{RUN}"
    make_table(pg_url, table)
    doc = {**_document(name, pg_url, table, f"orph{RUN}"), "tenant": tenant}
    assert api.post("/pipelines", json=doc).status_code == 201
    assert api.post(f"/pipelines/{name}/deploy").status_code == 200
    store = pipeline_store_for(stack_settings)  # deleted as an older release allowed: connectors left behind
    head = store.head(name)
    store.save(
        name, store.document(name)["document"], head["version"], "old-release", "deleted", op="delete", deleted=True
    )
    r = api.post(
        "/users", json={"username": f"orph-admin-{RUN}", "password": PASSWORD, "roles": ["admin"], "tenant": tenant}
    )
    assert r.status_code == 201, r.text
    outsider = f"orph-other-{RUN}"
    api.post("/users", json={"username": outsider, "password": PASSWORD, "roles": ["admin"], "tenant": f"x{tenant}"})
    assert httpx.post(f"{base}/pipelines/{name}/undeploy", headers=login(base, outsider)).status_code == 404
    r = httpx.post(f"{base}/pipelines/{name}/undeploy", headers=login(base, f"orph-admin-{RUN}"))
    assert r.status_code == 200 and len(r.json()["removed"]) == 3, r.text


def test_a_pipeline_onto_a_stand_alone_connectors_table_is_refused_naming_it(api, pg_url):
    from tests.connect_cluster import timestamp_config

    name, table, system, connector = f"solo-p-{RUN}", f"solo_src_{RUN}", f"solo{RUN}", f"solo-c-{RUN}"
    make_table(pg_url, table)
    r = api.post("/connectors", json={"name": connector, "config": timestamp_config(pg_url, table, system)})
    assert r.status_code == 201, r.text
    try:
        assert api.post("/pipelines", json=_document(name, pg_url, table, system)).status_code == 201
        r = api.post(f"/pipelines/{name}/deploy")
        assert r.status_code == 409 and f"connector {connector!r}" in r.json()["detail"], r.text
    finally:
        api.delete(f"/connectors/{connector}")
    assert api.post(f"/pipelines/{name}/deploy").status_code == 200
    api.post(f"/pipelines/{name}/undeploy")
