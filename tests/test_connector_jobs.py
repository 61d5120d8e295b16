"""Long connector operations as message-centre jobs (issue 7), over HTTP: a real API process and a
real worker process.

A snapshot request returns a job that follows it: the worker clears the offsets (while the
connector is paused, so the job is seen waiting), the task reads the table again after resume,
and the job succeeds with what was cleared; a connector deleted meanwhile fails its job. A
one-off import of a file connector's path runs as a job whose result is the import report;
refusals (running connector, path outside the root, not a file connector, no permission) and the
audit entries are checked too.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from deploy.control import OffsetStore
from tests.connect_cluster import (
    api_and_worker,
    insert_rows,
    make_table,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    timestamp_config,
    wait_until,
)
from tests.sources import consume
from tests.support.identity import login, make_user

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    with api_and_worker(stack_settings, tmp_path_factory.mktemp("jobs-logs"), f"worker-jobs-{RUN}") as client:
        yield client
        for name in client.get("/connectors").json():
            if RUN in name:
                client.delete(f"/connectors/{name}")


def job(client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}").json()


def task_state(client, name: str) -> str | None:
    tasks = client.get(f"/connectors/{name}/status").json()["tasks"]
    return tasks[0]["state"] if tasks else None


def test_snapshot_runs_as_a_job_that_follows_it_to_the_end(cluster, stack_settings, pg_url):
    client, table, name = cluster, f"snapjob_{RUN}", f"snapjob-{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 31))
    assert (
        client.post(
            "/connectors", json={"name": name, "config": timestamp_config(pg_url, table, f"sj{RUN}")}
        ).status_code
        == 201
    )
    partition = f"public.{table}"
    # the first read is over once the stored offset says so; then pause, so the job can be seen waiting
    wait_until(lambda: task_state(client, name) == "RUNNING", 60, message="task RUNNING")
    offsets = OffsetStore(stack_settings.resolved_control_db_url, name)
    wait_until(lambda: (offsets.load(partition) or {}).get("snapshot_done"), 60, message="first read done")
    assert client.put(f"/connectors/{name}/pause").status_code == 202
    wait_until(lambda: task_state(client, name) == "PAUSED", 30, message="PAUSED")

    r = client.post(f"/connectors/{name}/snapshot", json={"tables": [table]})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "PENDING" and r.json()["job_id"]
    job_id = r.json()["job_id"]
    waiting = wait_until(
        lambda: (j := job(client, job_id))["state"] == "running" and j["progress"] >= 10 and j,
        60,
        message="offsets cleared, job waiting for the re-read",
    )
    assert waiting["type"] == "connector.snapshot" and waiting["operator"] == "operator"
    assert waiting["message"].startswith("0/1 tables")
    assert client.get(f"/connectors/{name}/snapshots").json()[-1]["status"] == "DONE"

    assert client.put(f"/connectors/{name}/resume").status_code == 202
    done = wait_until(
        lambda: (j := job(client, job_id))["state"] not in ("queued", "running") and j,
        90,
        message="snapshot job finished",
    )
    assert done["state"] == "succeeded", done
    assert done["progress"] == 100 and done["result"]["cleared"] == [partition]
    assert done["result"]["connector"] == name and done["result"]["snapshot"] == r.json()["id"]
    assert any(j["id"] == job_id for j in client.get("/jobs", params={"type": "connector.snapshot"}).json())
    audit = client.get("/audit", params={"action": "connector.snapshot", "limit": 5}).json()
    entry = next(e for e in audit if e["detail"].get("job") == job_id)
    assert entry["outcome"] == "success" and entry["detail"]["name"] == name

    # a connector deleted before its snapshot was read again fails the job, with the reason
    assert client.put(f"/connectors/{name}/pause").status_code == 202
    wait_until(lambda: task_state(client, name) == "PAUSED", 30, message="PAUSED again")
    job_id = client.post(f"/connectors/{name}/snapshot", json={}).json()["job_id"]
    wait_until(lambda: job(client, job_id)["progress"] >= 10, 60, message="second snapshot taken")
    assert client.delete(f"/connectors/{name}").status_code == 204
    failed = wait_until(lambda: (j := job(client, job_id))["state"] == "failed" and j, 30, message="job failed")
    assert "deleted" in failed["error"]


def _file_connector(client, root, name: str, table: str) -> None:
    config = {
        "connector.class": "files",
        "system": f"fj{RUN}",
        "table": table,
        "store": {"root": str(root), "pattern": "watched/*.csv"},
        "settle_seconds": 0,
        "columns": [
            {"name": "id", "type": "int", "key": True},
            {"name": "name"},
            {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
        ],
    }
    r = client.post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text


def test_one_off_file_import_runs_as_a_job_whose_result_is_the_report(cluster, stack_settings):
    client, name, table = cluster, f"filejob-{RUN}", f"filejob_{RUN}"
    tmp_path = stack_settings.resolved_data_root / f"filejob-{RUN}"  # connector roots: inside the data root
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "watched").mkdir()
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "a.csv").write_text("id,name,amount\n1,a,1.5\n2,b,x\n3,c,3\n4,d,4\n", encoding="utf-8")
    _file_connector(client, tmp_path, name, table)

    r = client.post("/imports", json={"connector": name, "path": "manual/a.csv"})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["type"] == "files.import" and started["operator"] == "operator"
    done = wait_until(
        lambda: (j := job(client, started["id"]))["state"] not in ("queued", "running") and j,
        90,
        message="import job finished",
    )
    assert done["state"] == "succeeded", done
    [report] = done["result"]["imports"]
    assert report["path"].endswith("manual/a.csv") and report["status"] == "done_with_errors"  # 1 of 4 bad
    assert (report["rows_ok"], report["rows_bad"]) == (3, 1) and report["errors"][0]["line"] == 3
    assert client.get(f"/imports/{report['id']}").json()["rows_read"] == 4
    assert sorted(e["after"]["id"] for e in consume(stack_settings, f"huiliu.fj{RUN}.default.{table}", 3)) == [1, 3, 4]
    assert any(j["id"] == started["id"] for j in client.get("/jobs", params={"type": "files.import"}).json())
    audit = client.get("/audit", params={"action": "import.start", "limit": 5}).json()
    assert any(e["detail"].get("job") == started["id"] and e["detail"]["path"] == "manual/a.csv" for e in audit)

    # the same file again: tracked by the connector, not read twice; the result is its report
    again = client.post("/imports", json={"connector": name, "path": "manual/*.csv"}).json()
    again = wait_until(lambda: (j := job(client, again["id"]))["state"] == "succeeded" and j, 60, message="again")
    assert [i["id"] for i in again["result"]["imports"]] == [report["id"]]

    # refusals
    assert client.post("/imports", json={"connector": name, "path": "watched/b.csv"}).status_code == 409
    assert client.post("/imports", json={"connector": name, "path": "../etc/passwd"}).status_code == 422
    assert client.post("/imports", json={"connector": name, "path": "/etc/passwd"}).status_code == 422
    assert client.post("/imports", json={"connector": f"nope-{RUN}", "path": "a.csv"}).status_code == 404
    base, key = str(client.base_url).rstrip("/"), client.headers["X-API-Key"]
    make_user(base, key, f"imp-viewer-{RUN}", roles=["viewer"])
    viewer = login(base, f"imp-viewer-{RUN}")
    assert (
        httpx.post(base + "/imports", headers=viewer, json={"connector": name, "path": "manual/a.csv"}).status_code
        == 403
    )
    assert httpx.post(base + f"/connectors/{name}/snapshot", headers=viewer, json={}).status_code == 403
