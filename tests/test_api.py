"""The HTTP API over a real uvicorn process: authentication, health per component, pipeline stats."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from api.auth import api_key_for
from deploy.control import StageCounters, engine_for
from deploy.settings import settings_env


@pytest.fixture(scope="module")
def api(stack_settings):
    env = {**os.environ, **settings_env(stack_settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://{stack_settings.api_host}:{stack_settings.api_port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None:
                pytest.fail(f"API exited: {proc.stdout.read().decode()}")
            time.sleep(0.3)
    yield base, api_key_for(stack_settings)
    proc.terminate()
    proc.wait(10)


def test_every_call_needs_the_api_key(api):
    base, key = api
    assert httpx.get(base + "/health").status_code == 401
    assert httpx.get(base + "/health", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.get(base + "/pipelines/x/stats").status_code == 401
    assert httpx.get(base + "/health", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_health_reports_each_component_with_latency(api, stack_settings):
    base, key = api
    body = httpx.get(base + "/health", headers={"X-API-Key": key}, timeout=30).json()
    comps = body["components"]
    for name in ("broker", "schema_registry", "control_db", "redis", "clickhouse"):
        assert name in comps and "latency_ms" in comps[name]
    assert comps["broker"]["status"] == comps["schema_registry"]["status"] == "up"
    assert comps["clickhouse"]["status"] == "up" and comps["clickhouse"]["version"].startswith("18.")
    assert comps["control_db"]["version"] == engine_for(stack_settings.resolved_control_db_url).dialect.name


def test_pipeline_stats_report_per_stage_counts(api, stack_settings):
    base, key = api
    assert httpx.get(base + "/pipelines/never-ran/stats", headers={"X-API-Key": key}).status_code == 404
    counters = StageCounters(stack_settings.resolved_control_db_url, "api-stats")
    counters.reset()
    counters.add("source", {"read": 10})
    counters.add("runner", {"read": 10, "valid": 8, "quarantined": 2, "quarantined.phone_format": 2})
    counters.add("sink", {"written": 8})
    body = httpx.get(base + "/pipelines/api-stats/stats", headers={"X-API-Key": key}).json()
    assert body["stages"] == {
        "source": {"read": 10},
        "runner": {"read": 10, "valid": 8, "quarantined": 2, "quarantined.phone_format": 2},
        "sink": {"written": 8},
    }


def test_workers_show_in_health_and_metrics_by_their_heartbeats(api, stack_settings):
    from connectors.leases import Leases

    base, key = api
    leases = Leases.for_settings(stack_settings)
    leases.leave("health-probe-worker")
    body = httpx.get(base + "/health", headers={"X-API-Key": key}, timeout=30).json()
    assert body["components"]["workers"]["status"] == "down" and body["status"] == "degraded"
    leases.heartbeat("health-probe-worker")  # what a running `huiliu worker` does every few seconds
    try:
        body = httpx.get(base + "/health", headers={"X-API-Key": key}, timeout=30).json()
        assert body["components"]["workers"]["status"] == "up"
        assert "health-probe-worker" in body["components"]["workers"]["version"]
        metrics = httpx.get(base + "/metrics", headers={"X-API-Key": key}, timeout=60).text
        assert 'huiliu_worker_up{worker="health-probe-worker"} 1.0' in metrics
    finally:
        leases.leave("health-probe-worker")


def test_values_the_control_db_cannot_hold_are_bad_requests_not_errors(api, stack_settings):
    """On PostgreSQL an id beyond an integer column or a NUL character in text is refused by the
    database; the API answers 422 naming why, not 500 (found by schemathesis)."""
    if not stack_settings.resolved_control_db_url.startswith("postgresql"):
        pytest.skip("SQLite stores both")
    base, key = api
    headers = {"X-API-Key": key}
    r = httpx.get(base + "/imports/867884561744", headers=headers)
    assert r.status_code == 422 and "out of range" in r.text
    r = httpx.post(base + "/groups", headers=headers, json={"name": f"nul-{os.getpid()}", "description": "a\u0000b"})
    assert r.status_code == 422 and "NUL" in r.text
    assert httpx.post(base + "/groups", headers=headers, json={"name": f"ok-{os.getpid()}"}).status_code == 201
