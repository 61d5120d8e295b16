"""Scheduling over HTTP against real API processes: cron (seconds field), dependencies, the
third-party trigger, run history, no double firing with two API processes, pipeline.capture."""

from __future__ import annotations

import time

import pytest
import yaml

from deploy.demo.seed import seed
from tests.api_process import (
    api_client,  # noqa: F401 - a fixture: api
    start_api,
    stop_api,
    wait_for,
)

TEMPLATE = "deploy/demo/population.yaml"


@pytest.fixture(scope="module", name="stack_settings")
def seconds_allowed(stack_settings):
    """These tests fire schedules every second or two: the minimum interval (60 s by default) is lowered."""
    return stack_settings.model_copy(update={"schedule_min_interval_s": 1})


def runs(api, name):
    return api.get(f"/schedules/{name}/runs", params={"limit": 500}).json()


def test_cron_schedule_fires_every_two_seconds_with_history(api):
    # 6 fields: croniter reads the last one as seconds, so a test need not wait for minutes.
    r = api.post(
        "/schedules", json={"name": "every-2s", "action": "noop", "params": {"count": 7}, "cron": "* * * * * */2"}
    )
    assert r.status_code == 201, r.text
    got = wait_for(
        lambda: len(done := [x for x in runs(api, "every-2s") if x["status"] == "succeeded"]) >= 2 and done, timeout=15
    )
    assert all(
        x["trigger"] == "cron"
        and x["counts"] == {"count": 7}
        and x["duration_ms"] is not None
        and x["finished_at"]
        and x["error"] is None
        for x in got
    )
    fired = [int(x["fire_key"].split("T")[1][6:8]) for x in got]
    assert all(s % 2 == 0 for s in fired), got  # seconds of the firing times
    api.patch("/schedules/every-2s", json={"enabled": False})
    time.sleep(2.5)
    count = len(runs(api, "every-2s"))
    time.sleep(3)
    assert len(runs(api, "every-2s")) == count  # disabled: no more firings


def test_dependent_schedule_runs_after_its_parent_succeeded(api):
    assert api.post("/schedules", json={"name": "extract", "action": "noop", "params": {"count": 1}}).status_code == 201
    assert (
        api.post(
            "/schedules", json={"name": "load", "action": "noop", "params": {"count": 2}, "depends_on": ["extract"]}
        ).status_code
        == 201
    )
    assert runs(api, "load") == []
    parent = api.post("/schedules/extract/run").json()
    assert parent["trigger"] == "manual"
    child = wait_for(lambda: [x for x in runs(api, "load") if x["status"] == "succeeded"], timeout=15)[0]
    assert child["trigger"] == "dependency" and child["fire_key"] == f"after:{parent['id']}"
    assert child["counts"] == {"count": 2}


def test_failed_parent_does_not_start_dependents_and_records_the_error(api):
    api.post("/schedules", json={"name": "flaky", "action": "fail", "params": {"message": "source offline"}})
    api.post("/schedules", json={"name": "after-flaky", "action": "noop", "depends_on": ["flaky"]})
    run = api.post("/schedules/flaky/run").json()
    failed = wait_for(lambda: (x := api.get(f"/schedule-runs/{run['id']}").json())["status"] == "failed" and x)
    assert "source offline" in failed["error"] and failed["duration_ms"] is not None
    time.sleep(1.5)
    assert runs(api, "after-flaky") == []


def test_third_party_trigger_is_idempotent_by_key(api):
    api.post("/schedules", json={"name": "external", "action": "noop"})
    first = api.post("/schedules/external/trigger", json={"key": "airflow-run-42"})
    assert first.status_code == 202 and first.json()["trigger"] == "http"
    again = api.post("/schedules/external/trigger", json={"key": "airflow-run-42"})
    assert again.status_code == 409 and again.json()["detail"]["run"]["id"] == first.json()["id"]
    assert api.post("/schedules/external/trigger").status_code == 202  # no key: always a new run
    assert len(runs(api, "external")) == 2


def test_bad_schedules_are_refused(api):
    assert api.post("/schedules", json={"name": "x1", "action": "noop", "cron": "every day"}).status_code == 422
    # exactly 5 fields or 6 (seconds last): a 7th field was read as seconds and fired every second
    seven = api.post("/schedules", json={"name": "x7", "action": "noop", "cron": "0 0 * * * * *"})
    assert seven.status_code == 422 and "5 fields" in seven.json()["detail"], seven.text
    assert api.post("/schedules", json={"name": "x8", "action": "noop", "cron": "@hourly"}).status_code == 422
    assert api.post("/schedules", json={"name": "x2", "action": "nope"}).status_code == 422
    assert api.post("/schedules", json={"name": "x3", "action": "noop", "depends_on": ["ghost"]}).status_code == 422
    api.post("/schedules", json={"name": "c1", "action": "noop"})
    api.post("/schedules", json={"name": "c2", "action": "noop", "depends_on": ["c1"]})
    assert api.patch("/schedules/c1", json={"depends_on": ["c2"]}).status_code == 422  # cycle
    assert api.delete("/schedules/c1").status_code == 409  # c2 depends on it
    assert api.post("/schedules", json={"name": "c1", "action": "noop"}).status_code == 409


def test_two_api_processes_do_not_fire_twice(api, stack_settings):
    proc, base = start_api(stack_settings, stack_settings.api_port + 102)
    try:
        api.post("/schedules", json={"name": "every-second", "action": "noop", "cron": "* * * * * *"})
        start = time.time()
        time.sleep(6)
        api.patch("/schedules/every-second", json={"enabled": False})
        elapsed = time.time() - start
        got = runs(api, "every-second")
        keys = [x["fire_key"] for x in got]
        assert len(keys) == len(set(keys)) and 3 <= len(keys) <= elapsed + 2, keys
    finally:
        stop_api(proc)


def test_pipeline_capture_action_publishes_the_source_rows(api, stack_settings):
    # the pipeline (tenant demo) reads only inside its tenant's file area
    inside = stack_settings.resolved_data_root / "demo" / "sched"
    inside.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{inside / 'source.db'}"
    seed(url, 40)
    doc = yaml.safe_load(open(TEMPLATE, encoding="utf-8"))
    doc["name"] = "sched-capture"
    doc["source"]["config"].update(url=url, system="civil_sched")
    r = api.post(
        "/schedules", json={"name": "capture-population", "action": "pipeline.capture", "params": {"document": doc}}
    )
    assert r.status_code == 201, r.text
    run = api.post("/schedules/capture-population/run").json()
    done = wait_for(
        lambda: (x := api.get(f"/schedule-runs/{run['id']}").json())["status"] != "running" and x, timeout=90
    )
    assert done["status"] == "succeeded", done
    assert done["counts"] == {"published": 40}
    again = api.post("/schedules/capture-population/run").json()  # offsets stored: nothing new
    done = wait_for(
        lambda: (x := api.get(f"/schedule-runs/{again['id']}").json())["status"] != "running" and x, timeout=90
    )
    assert done["counts"] == {"published": 0}
