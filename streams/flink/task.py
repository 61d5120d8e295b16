"""`runner.flink`: a pipeline's runner stage as a Flink job (streams/flink/runner_job.py), run by a worker.

The worker calls `run(stop)`; the task starts the job and watches it until told to stop:
- `flink_rest_url` set: the job is submitted to that cluster through its REST API (streams.flink.rest)
  and cancelled on stop; a job that FAILED or was cancelled elsewhere is an error (the task
  runner retries, which submits it again; it resumes from the offsets committed on checkpoints);
- otherwise: a local mini-cluster, a child process in the PyFlink venv (deploy/flink/setup.py)
  with its REST endpoint on a free local port, stopped with its worker (SIGTERM, then SIGKILL).
Checkpointing is on (`checkpoint_interval_seconds`): input offsets are committed to the runner's
group (`huiliu-runner-<pipeline>`, the lean runner's) once the outputs were flushed.
Where the job runs is written to `<state_dir>/run/flink-<pipeline>.json`, which
`GET /pipelines/{name}/deployment` reads with the job's state (`job_state`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from streams.flink import rest
from streams.runner_task import LeanRunnerConfig, _die_with_parent, supervise_child

REPO = Path(__file__).resolve().parents[2]
JOB_MODULE = "streams.flink.runner_job"


class FlinkRunnerConfig(LeanRunnerConfig):
    parallelism: int = Field(1, ge=1, le=256, description="parallel slots of the Flink job")
    checkpoint_interval_seconds: float = Field(10, ge=1, le=3600, description="checkpoint interval")

    @model_validator(mode="after")
    def _no_lookups(self):
        if self.lookups:  # refused, not ignored: reference rules would judge rows against no table
            raise ValueError("lookups fed from topics run in the lean runner only; use runner kind lean")
        return self


def job_name(pipeline: str) -> str:
    return f"huiliu-runner-{pipeline}"


def job_config(config: FlinkRunnerConfig, settings, name: str, topics: list[str]) -> dict[str, Any]:
    """The runner job's config (streams/flink/runner_job.py) for this stage."""
    from deploy.kafka_security import java_properties

    return {
        "name": job_name(name),
        "pipeline": name,
        "topics": topics,
        "transforms": config.transforms,
        "rules": config.rules,
        "kafka": {
            "bootstrap": settings.kafka_bootstrap,
            "group_id": f"huiliu-runner-{name}",  # the lean runner's group: switching kinds resumes
            "properties": java_properties(settings),
        },
        "schema_registry_url": settings.schema_registry_url,
        "parallelism": config.parallelism,
        "batch_size": config.batch_size,
        "checkpoint_interval_seconds": config.checkpoint_interval_seconds,
    }


def _state_file(settings, name: str) -> Path:
    return Path(settings.state_dir) / "run" / f"flink-{name}.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flink_python() -> str:
    """The PyFlink venv's interpreter (created on first use; a no-op later)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "flink" / "setup.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"deploy/flink/setup.py failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["python"]


class FlinkRunnerTask:
    def __init__(self, config: FlinkRunnerConfig, settings, connector: str | None = None):
        self.config = config
        self.settings = settings
        self.name = config.pipeline or connector or "runner"
        self.topics = list(config.topics)  # the worker sets the connector's topics here

    def _record(self, **where) -> None:
        path = _state_file(self.settings, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"job_name": job_name(self.name), **where}))

    def run(self, stop: threading.Event) -> None:
        cfg = job_config(self.config, self.settings, self.name, self.topics)
        if self.settings.flink_rest_url:
            self._run_on_cluster(cfg, stop)
        else:
            self._run_local(cfg, stop)

    def _run_on_cluster(self, cfg: dict, stop: threading.Event) -> None:
        url = self.settings.flink_rest_url
        from deploy.flink.setup import ensure_jars

        connector_jar = ensure_jars()[0]  # flink-connector-kafka: the uploaded jar (the job needs it)
        running = rest.job_named(url, cfg["name"])
        if running and running.get("state") in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING"):
            job_id = running["jid"]  # a worker restarted: the job kept running, adopt it
        else:
            job_id = rest.submit_python(
                url, connector_jar, JOB_MODULE, ["--detached", "--config-json", json.dumps(cfg)], cfg["parallelism"]
            )
        self._record(mode="cluster", rest_url=url, job_id=job_id)
        try:
            while not stop.wait(2.0):
                job = rest.job_named(url, cfg["name"])
                if job and job.get("state") in ("FAILED", "CANCELED", "FINISHED"):
                    raise RuntimeError(f"Flink job {job_id} is {job['state']} (see the cluster's web UI at {url})")
        finally:
            if stop.is_set():
                try:
                    rest.cancel(url, job_id)
                except rest.FlinkRestError:
                    pass

    def _run_local(self, cfg: dict, stop: threading.Event) -> None:
        port = _free_port()
        cfg["flink_config"] = {"rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1", "rest.port": port}
        run_dir = Path(self.settings.state_dir) / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / f"flink-{self.name}.config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        log_path = Path(self.settings.state_dir) / "logs" / f"flink-{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        python = flink_python()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [python, "-m", JOB_MODULE, "--config", str(config_path)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._record(mode="local", rest_url=f"http://127.0.0.1:{port}", pid=proc.pid, log=str(log_path))
        supervise_child(proc, stop, "the local Flink job", log_path)


def job_state(settings, pipeline: str) -> dict[str, Any]:
    """Where the pipeline's Flink job runs and its state as the cluster reports it
    (`NOT_STARTED` before the task recorded it, `UNREACHABLE` when the REST endpoint does not answer)."""
    try:
        where = json.loads(_state_file(settings, pipeline).read_text())
    except (OSError, ValueError):
        where = None
    if where is None:
        if not settings.flink_rest_url:
            return {"mode": "local", "state": "NOT_STARTED"}
        where = {"mode": "cluster", "rest_url": settings.flink_rest_url, "job_name": job_name(pipeline)}
    out = {"mode": where["mode"], "rest_url": where["rest_url"], "job_name": where["job_name"]}
    try:
        job = rest.job_named(where["rest_url"], where["job_name"], timeout=3.0)
    except rest.FlinkRestError as exc:
        return {**out, "state": "UNREACHABLE", "error": str(exc)}
    if job is None:
        return {**out, "state": "NOT_STARTED"}
    return {**out, "job_id": job["jid"], "state": job["state"], "start_time": job.get("start-time")}


def flink_runner_plugin(config: FlinkRunnerConfig, ctx) -> FlinkRunnerTask:
    return FlinkRunnerTask(config, ctx.settings, ctx.connector)
