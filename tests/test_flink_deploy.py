"""Deploy a pipeline with `runner: {kind: flink}` over HTTP: a real API, a real worker, and the runner
stage as a local Flink mini-cluster (no flink_rest_url), checkpointing on.

PostgreSQL rows -> source -> raw topic -> Flink runner (trim, two reject rules) -> clean topic ->
ClickHouse: ClickHouse FINAL holds exactly the valid rows, trimmed; `/deployment` shows the runner's
Flink job RUNNING (mode local, its REST endpoint); undeploy stops the job's process. Long: a JVM and
the Beam Python workers start (1-2 minutes on a loaded machine); the default run compares the two
runners' outputs (tests/test_flink_runner.py).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.connect_cluster import (
    api_and_worker,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    wait_until,
)
from tests.test_flink_job import needs_flink
from tests.test_pipeline_deploy import VALID, _clickhouse_rows, _document, _make_source

pytestmark = [pytest.mark.long, pytest.mark.flink, needs_flink]

RUN = uuid.uuid4().hex[:6]
NAME = f"flinkdep-{RUN}"


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    logs = tmp_path_factory.mktemp("flink-deploy-logs")
    with api_and_worker(stack_settings, logs, f"worker-flink-{RUN}") as client:
        yield client, logs
        client.post(f"/pipelines/{NAME}/undeploy")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.timeout(900)
def test_a_flink_runner_deploys_runs_and_stops(cluster, stack_settings, pg_url, monkeypatch):
    client, logs = cluster
    monkeypatch.setattr("tests.test_pipeline_deploy.TABLE", f"flinkdep_src_{RUN}")
    monkeypatch.setattr("tests.test_pipeline_deploy.CH_TABLE", f"flinkdep_ch_{RUN}")
    _make_source(pg_url)
    doc = {**_document(pg_url), "name": NAME, "runner": {"kind": "flink", "parallelism": 1, "checkpoint_seconds": 2}}
    doc["source"] = {**doc["source"], "config": {**doc["source"]["config"], "system": f"fl{RUN}"}}
    assert client.post("/pipelines", json=doc).status_code == 201
    r = client.post(f"/pipelines/{NAME}/deploy")
    assert r.status_code == 200, r.text
    runner_doc = client.get(f"/connectors/{NAME}-runner/config").json()
    assert runner_doc["connector.class"] == "runner.flink" and runner_doc["parallelism"] == 1
    assert runner_doc["checkpoint_interval_seconds"] == 2

    try:
        wait_until(lambda: _clickhouse_rows(stack_settings) == VALID, 600, interval=2.0, message="the valid rows")
    except AssertionError:
        flink_log = Path(stack_settings.state_dir) / "logs" / f"flink-{NAME}.log"
        raise AssertionError(
            f"{_clickhouse_rows(stack_settings)}\n{client.get(f'/pipelines/{NAME}/deployment').json()}\n"
            f"{(logs / 'worker.log').read_text()[-3000:]}\n"
            f"{flink_log.read_text()[-4000:] if flink_log.exists() else 'no flink log'}"
        ) from None

    def job_running():
        flink = client.get(f"/pipelines/{NAME}/deployment").json()["stages"]["runner"].get("flink") or {}
        return flink if flink.get("state") == "RUNNING" else None

    flink = wait_until(job_running, 60, interval=1.0, message="the Flink job RUNNING")
    assert flink["mode"] == "local" and flink["job_name"] == f"huiliu-runner-{NAME}" and flink["job_id"]
    assert flink["rest_url"].startswith("http://127.0.0.1:")
    where = json.loads((Path(stack_settings.state_dir) / "run" / f"flink-{NAME}.json").read_text())
    assert _alive(where["pid"])

    r = client.post(f"/pipelines/{NAME}/undeploy")
    assert r.status_code == 200, r.text
    wait_until(lambda: not _alive(where["pid"]), 60, message="the local Flink job stopped with the stage")
