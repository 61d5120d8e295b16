"""The runner.flink plugin without a JVM (fast loop): its config, the job config it builds, and the
job state it reports when no job was started or its REST endpoint does not answer (a closed
loopback port: a real refusal, not a mock). The job itself runs in test_flink_runner.py (default
run) and test_flink_deploy.py (mark long)."""

from __future__ import annotations

import json
import socket

import pytest
from pydantic import ValidationError

from deploy.settings import Settings
from streams.flink.task import FlinkRunnerConfig, job_config, job_state


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_config_checks_parallelism_and_refuses_lookups():
    assert FlinkRunnerConfig(topics=["t"]).parallelism == 1
    with pytest.raises(ValidationError, match="parallelism"):
        FlinkRunnerConfig(topics=["t"], parallelism=0)
    with pytest.raises(ValidationError, match="lean runner only"):
        FlinkRunnerConfig(topics=["t"], lookups={"codes": "codes.topic"})


def test_job_config_carries_the_stage(tmp_path):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", schema_registry_url="http://127.0.0.1:8")
    config = FlinkRunnerConfig(
        rules=[{"id": "r", "kind": "required", "fields": ["name"]}], parallelism=3, checkpoint_interval_seconds=5
    )
    cfg = job_config(config, settings, "orders", ["huiliu.pg.public.orders"])
    assert cfg["name"] == "huiliu-runner-orders" and cfg["topics"] == ["huiliu.pg.public.orders"]
    assert cfg["kafka"]["group_id"] == "huiliu-runner-orders"  # the lean runner's group
    assert (cfg["parallelism"], cfg["checkpoint_interval_seconds"]) == (3, 5)
    assert cfg["rules"] == config.rules and cfg["schema_registry_url"] == "http://127.0.0.1:8"


def test_job_state_before_a_start_and_when_the_endpoint_is_down(tmp_path):
    local = Settings(state_dir=tmp_path)
    assert job_state(local, "orders") == {"mode": "local", "state": "NOT_STARTED"}

    port = _closed_port()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "flink-orders.json").write_text(
        json.dumps({"job_name": "huiliu-runner-orders", "mode": "local", "rest_url": f"http://127.0.0.1:{port}"})
    )
    state = job_state(local, "orders")
    assert state["state"] == "UNREACHABLE" and f"127.0.0.1:{port}" in state["error"]

    cluster = Settings(state_dir=tmp_path / "other", flink_rest_url=f"http://127.0.0.1:{port}")
    state = job_state(cluster, "orders")
    assert (state["mode"], state["state"], state["job_name"]) == ("cluster", "UNREACHABLE", "huiliu-runner-orders")
