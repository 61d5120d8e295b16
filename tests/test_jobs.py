"""Message centre jobs over HTTP against a real API process: progress, cancel, errors, restart."""

from __future__ import annotations

import httpx

from api.auth import api_key_for
from api.jobs import JobManager
from tests.api_process import (
    api_client,  # noqa: F401 - a fixture: api
    start_api,
    stop_api,
    wait_for,
)


def test_job_routes_need_the_api_key(api):
    assert httpx.get(str(api.base_url) + "/jobs").status_code == 401
    assert api.get("/jobs/does-not-exist").status_code == 404


def test_background_job_reports_progress_operator_and_result(api):
    r = api.post("/jobs", json={"action": "sleep", "params": {"seconds": 3, "steps": 30}})
    assert r.status_code == 202
    job = r.json()
    assert job["type"] == "sleep" and job["operator"] == "operator" and job["state"] in ("queued", "running")
    mid = wait_for(
        lambda: (j := api.get(f"/jobs/{job['id']}").json())["state"] == "running" and 0 < j["progress"] < 100 and j
    )
    assert mid["started_at"] and mid["message"].startswith("step ")
    done = wait_for(lambda: (j := api.get(f"/jobs/{job['id']}").json())["state"] == "succeeded" and j)
    assert done["progress"] == 100 and done["result"] == {"steps": 30} and done["finished_at"]
    assert any(j["id"] == job["id"] for j in api.get("/jobs", params={"type": "sleep"}).json())


def test_cancel_stops_a_running_job(api):
    job = api.post("/jobs", json={"action": "sleep", "params": {"seconds": 60, "steps": 600}}).json()
    wait_for(lambda: api.get(f"/jobs/{job['id']}").json()["state"] == "running")
    assert api.post(f"/jobs/{job['id']}/cancel").status_code == 200
    done = wait_for(lambda: (j := api.get(f"/jobs/{job['id']}").json())["state"] == "cancelled" and j, timeout=10)
    assert done["cancel_requested"] and done["progress"] < 100
    assert api.post(f"/jobs/{job['id']}/cancel").status_code == 200  # cancelling twice is harmless
    assert api.post("/jobs/nope/cancel").status_code == 404


def test_failed_job_keeps_its_error(api):
    job = api.post("/jobs", json={"action": "fail", "params": {"message": "disk on fire"}}).json()
    done = wait_for(lambda: (j := api.get(f"/jobs/{job['id']}").json())["state"] == "failed" and j)
    assert "disk on fire" in done["error"]
    assert api.post(f"/jobs/{job['id']}/cancel").status_code == 409
    assert api.post("/jobs", json={"action": "no-such-action"}).status_code == 422


def test_jobs_of_a_dead_api_process_show_as_interrupted(stack_settings):
    port = stack_settings.api_port + 101  # a second API on the same control DB (inside our port block)
    proc, base = start_api(stack_settings, port)
    headers = {"X-API-Key": api_key_for(stack_settings)}
    job = httpx.post(
        base + "/jobs", json={"action": "sleep", "params": {"seconds": 120, "steps": 120}}, headers=headers
    ).json()
    wait_for(lambda: httpx.get(f"{base}/jobs/{job['id']}", headers=headers).json()["state"] == "running")
    stop_api(proc, kill=True)
    proc, base = start_api(stack_settings, port)
    try:
        after = httpx.get(f"{base}/jobs/{job['id']}", headers=headers).json()
        assert after["state"] == "interrupted" and "stopped" in after["error"]
    finally:
        stop_api(proc)


def test_job_manager_in_process(tmp_path):
    """The API other code uses: submit(type, operator, fn), ctx.progress, ctx.cancelled."""
    manager = JobManager(f"sqlite:///{tmp_path / 'control.db'}")
    seen = []

    def work(ctx):
        for i in range(5):
            ctx.progress(i * 20, f"chunk {i}")
            seen.append(ctx.cancelled())
        return {"rows": 5}

    job = manager.wait(manager.submit("file-import", "alice", work))
    assert job["state"] == "succeeded" and job["operator"] == "alice" and job["result"] == {"rows": 5}
    assert seen == [False] * 5
    manager.stop()
