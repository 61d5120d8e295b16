"""The Flink runner submitted to a Flink session cluster through its REST API (flink_rest_url set).

A real standalone cluster (one JobManager, one TaskManager) is started from PyFlink's own
distribution (`pyflink/bin`, its jars plus flink-python in lib/, a config on this module's ports);
the `runner.flink` task (streams/flink/task.py) uploads the Kafka connector jar and runs the job with
Flink's PythonDriver, then watches it: every input record reaches the clean or quarantine topic,
`job_state` reports the job RUNNING on the cluster, and stopping the task cancels the job. Then the
TaskManager is killed -9 mid-stream and a new one started: the job restores its last checkpoint and
every record of both waves reaches the outputs (issue 19).
Long: two JVMs and the job's Python workers start (a few minutes on a loaded machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.kafka import ensure_topics
from schemas.envelope import make_event
from schemas.naming import clean_topic, quarantine_topic
from schemas.serde import WireCodec
from streams.flink import rest
from streams.flink.task import FlinkRunnerConfig, FlinkRunnerTask, job_state
from tests import test_flink_job
from tests.conftest import PORT_BASE
from tests.connect_cluster import wait_until
from tests.test_flink_job import REPO, _consume, _produce, needs_flink
from tests.test_flink_runner import RULES, T0, TRANSFORMS, accounts_schema, produce_input

pytestmark = [pytest.mark.long, pytest.mark.flink, needs_flink]
flink_env = test_flink_job.flink_env  # the fixture (module scope): the PyFlink venv and connector jars

REST_PORT = PORT_BASE + 881


@pytest.fixture(scope="module")
def session_cluster(flink_env, tmp_path_factory):
    """FLINK_HOME assembled from PyFlink's distribution; started with its own scripts, stopped after."""
    python = Path(flink_env["python"])
    pyflink = Path(
        subprocess.run(
            [str(python), "-c", "import pyflink, os; print(os.path.dirname(pyflink.__file__))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    home = tmp_path_factory.mktemp("flink-home")
    for sub in ("lib", "log", "pid"):
        (home / sub).mkdir()
    for jar in [*(pyflink / "lib").glob("*.jar"), *(pyflink / "opt").glob("flink-python-*.jar")]:
        (home / "lib" / jar.name).symlink_to(jar)
    shutil.copytree(pyflink / "conf", home / "conf")
    java_opts = next(
        line.split("all:", 1)[1].strip()
        for line in (pyflink / "conf" / "config.yaml").read_text().splitlines()
        if line.strip().startswith("all: --add")
    )
    (home / "conf" / "config.yaml").write_text(
        f"""env.java.opts.all: {java_opts}
jobmanager.bind-host: 127.0.0.1
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: {PORT_BASE + 823}
jobmanager.memory.process.size: 900m
taskmanager.bind-host: 127.0.0.1
taskmanager.host: 127.0.0.1
taskmanager.numberOfTaskSlots: 2
taskmanager.memory.process.size: 1400m
taskmanager.rpc.port: {PORT_BASE + 825}-{PORT_BASE + 830}
taskmanager.data.port: {PORT_BASE + 831}
blob.server.port: {PORT_BASE + 824}
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: {REST_PORT}
heartbeat.interval: 2000
heartbeat.timeout: 12000
python.executable: {python}
python.client.executable: {python}
"""
    )
    env = {
        **os.environ,
        "FLINK_HOME": str(home),
        "FLINK_CONF_DIR": str(home / "conf"),
        "FLINK_LIB_DIR": str(home / "lib"),
        "FLINK_LOG_DIR": str(home / "log"),
        "FLINK_PID_DIR": str(home / "pid"),
        "PYTHONPATH": str(REPO),  # the job's Python code on the JobManager (client) and TaskManager (workers)
    }
    scripts = pyflink / "bin"
    for role in ("jobmanager", "taskmanager"):
        subprocess.run(["bash", str(scripts / f"{role}.sh"), "start"], env=env, check=True, capture_output=True)
    url = f"http://127.0.0.1:{REST_PORT}"
    cluster = Cluster(url, home, scripts, env)
    try:
        wait_until(lambda: _slots(url), 180, interval=2.0, message="the session cluster with a TaskManager")
        yield cluster
    finally:
        for role in ("taskmanager", "jobmanager"):
            subprocess.run(
                ["bash", str(scripts / f"{role}.sh"), "stop-all" if role == "taskmanager" else "stop"],
                env=env,
                capture_output=True,
            )


@dataclass
class Cluster:
    url: str
    home: Path
    scripts: Path
    env: dict

    def start_taskmanager(self) -> None:
        subprocess.run(
            ["bash", str(self.scripts / "taskmanager.sh"), "start"], env=self.env, check=True, capture_output=True
        )

    def kill_taskmanagers(self) -> list[int]:
        """kill -9 of every TaskManager JVM the scripts started (their pid file), as a machine loses one."""
        pids = [
            int(p) for f in (self.home / "pid").glob("*taskexecutor*.pid") for p in f.read_text().split() if p.isdigit()
        ]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for f in (self.home / "pid").glob("*taskexecutor*.pid"):
            f.unlink()
        return pids


def _slots(url: str) -> int:
    try:
        return rest._call(f"{url}/overview", timeout=3)["slots-total"]
    except rest.FlinkRestError:
        return 0


@pytest.mark.timeout(900)
def test_the_runner_task_submits_to_a_cluster_and_cancels_its_job(stack_settings, session_cluster):
    url, home = session_cluster.url, session_cluster.home
    settings = stack_settings.model_copy(update={"flink_rest_url": url})
    bootstrap = settings.kafka_bootstrap
    pipeline = f"cl{uuid.uuid4().hex[:8]}"
    topic = f"flinkcl.{pipeline}.accounts"
    ensure_topics(bootstrap, [topic, clean_topic(topic), quarantine_topic(topic)])
    count = produce_input(bootstrap, settings.schema_registry_url, topic)

    config = FlinkRunnerConfig(
        topics=[topic], transforms=TRANSFORMS, rules=RULES, pipeline=pipeline, checkpoint_interval_seconds=2
    )
    task = FlinkRunnerTask(config, settings)
    stop, failure = threading.Event(), []

    def run():
        try:
            task.run(stop)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    started = time.monotonic()

    def outputs():
        assert not failure, failure
        clean = _consume(bootstrap, clean_topic(topic), expected=1, timeout=15)
        quarantined = _consume(bootstrap, quarantine_topic(topic), expected=1, timeout=15)
        return (clean, quarantined) if len(clean) + len(quarantined) >= count else None

    try:
        clean, quarantined = wait_until(outputs, 600, interval=5.0, message="every input record processed")
    except AssertionError:
        logs = "\n".join(p.read_text()[-3000:] for p in sorted((home / "log").glob("*.log")))
        raise AssertionError(f"{job_state(settings, pipeline)}\n{logs}") from None
    print(f"first outputs after {time.monotonic() - started:.0f} s")
    assert (len(clean), len(quarantined)) == (count - 14, 14)  # as the lean runner splits this input

    state = job_state(settings, pipeline)
    assert state["mode"] == "cluster" and state["rest_url"] == url and state["state"] == "RUNNING", state
    stop.set()
    worker.join(60)
    assert not worker.is_alive() and not failure, failure
    wait_until(
        lambda: rest.job_named(url, f"huiliu-runner-{pipeline}")["state"] == "CANCELED",
        60,
        message="the job cancelled when the task stopped",
    )


def _wave(codec: WireCodec, schema_id: int, ids: range) -> list[tuple[bytes, bytes]]:
    """Change events keyed by id; every tenth has no name (quarantined by name_required)."""
    source = {"system": "pg", "database": "db", "schema": "public", "table": "accounts", "connector": "t"}
    out = []
    for i in ids:
        row = {"id": i, "name": None if i % 10 == 0 else f"n{i}", "amount": i, "status": "paid"}
        event = make_event(
            "c", None, row, T0 + i, {**source, "position": json.dumps({"seq": i}), "sequence": i, "snapshot": False}
        )
        out.append((json.dumps({"id": i}).encode(), codec.encode(schema_id, event)))
    return out


def _ids(bootstrap: str, topic: str) -> Counter:
    """How many times each input id reached the clean or the quarantine topic."""
    seen: Counter = Counter()
    for out in (clean_topic(topic), quarantine_topic(topic)):
        for key, _ in _consume(bootstrap, out, expected=1, timeout=10):
            seen[json.loads(key)["id"]] += 1
    return seen


@pytest.mark.timeout(1500)
def test_a_killed_task_manager_resumes_from_the_last_checkpoint(stack_settings, session_cluster):
    """kill -9 of the TaskManager mid-stream, a new one started (as an operator or Kubernetes would):
    the job restarts from its last completed checkpoint and every input record reaches the clean
    or quarantine topic (at least once: records after the checkpoint may come twice; the sinks'
    row version keeps ClickHouse FINAL exact)."""
    url = session_cluster.url
    settings = stack_settings.model_copy(update={"flink_rest_url": url})
    bootstrap, registry = settings.kafka_bootstrap, settings.schema_registry_url
    pipeline = f"tk{uuid.uuid4().hex[:8]}"
    topic = f"flinktk.{pipeline}.accounts"
    ensure_topics(bootstrap, [topic, clean_topic(topic), quarantine_topic(topic)])
    codec = WireCodec(registry)
    sid = accounts_schema(codec, topic)
    _produce(bootstrap, topic, _wave(codec, sid, range(1, 2001)))

    config = FlinkRunnerConfig(
        topics=[topic], transforms=TRANSFORMS, rules=RULES, pipeline=pipeline, checkpoint_interval_seconds=2
    )
    task = FlinkRunnerTask(config, settings)
    stop, failure = threading.Event(), []
    worker = threading.Thread(target=lambda: _catching(failure, task.run, stop), daemon=True)
    worker.start()
    name = f"huiliu-runner-{pipeline}"
    try:
        wait_until(lambda: len(_ids(bootstrap, topic)) >= 2000 or None, 600, interval=5.0, message="the first wave")
        first_wave_out_ms = time.time() * 1000
        job = rest.job_named(url, name)
        checkpoints = f"{url}/jobs/{job['jid']}/checkpoints"

        def checkpoint_after_the_first_wave():
            completed = (rest._call(checkpoints).get("latest") or {}).get("completed") or {}
            return completed if completed.get("trigger_timestamp", 0) > first_wave_out_ms else None

        done = wait_until(checkpoint_after_the_first_wave, 120, message="a checkpoint after the first wave")
        killed = session_cluster.kill_taskmanagers()
        assert killed, "no TaskManager pid file"
        _produce(bootstrap, topic, _wave(codec, sid, range(2001, 4001)))  # while no TaskManager runs
        session_cluster.start_taskmanager()
        seen = wait_until(
            lambda: (lambda s: s if len(s) == 4000 else None)(_ids(bootstrap, topic)),
            900,
            interval=5.0,
            message="every record of both waves after the TaskManager was replaced",
        )
        restored = wait_until(
            lambda: (rest._call(checkpoints).get("latest") or {}).get("restored"), 60, message="restore"
        )
    except AssertionError:
        logs = "\n".join(p.read_text()[-3000:] for p in sorted((session_cluster.home / "log").glob("*.log")))
        raise AssertionError(f"{job_state(settings, pipeline)}\n{logs[-12000:]}") from None
    finally:
        stop.set()
        worker.join(120)
    assert not failure, failure
    assert set(seen) == set(range(1, 4001))  # nothing lost
    assert restored["id"] >= done["id"]  # resumed from the last checkpoint (or a later one), not from the start
    twice = sum(1 for n in seen.values() if n > 1)
    assert twice < 2000, twice  # the first wave, in the checkpoint before the kill, did not come again
    print(f"restored checkpoint {restored['id']} (completed before the kill: {done['id']}), {twice} records twice")


def _catching(failure: list, fn, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported by the test
        failure.append(exc)
