"""The faults a chaos run injects, and the seeded schedule that picks them.

Each fault breaks one real process the way a machine does (SIGKILL, or a server restart) and puts
it back; the run then times how long the pipeline takes to carry a new row end to end again.
Restarting the machine's shared PostgreSQL and Redis is only done when HUILIU_TEST_RESTART_DB is
not "0" (as in tests/test_cdc_pg.py): other sessions on a developer machine may be using them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field

import redis

from deploy.servers import PG_CLUSTER
from tests.chaos.hdfs import SINK

SHARED_RESTARTS = os.environ.get("HUILIU_TEST_RESTART_DB", "1") != "0"
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]  # fmt: skip  - the machine's own start command (the env notes)


@dataclass
class Injected:
    """One fault as the report lists it."""

    kind: str
    target: str
    at: float  # seconds since the run started
    detail: str = ""
    recovered_after: float | None = None  # seconds from injection to a new row end to end
    hdfs_recovered_after: float | None = None  # the same row in HDFS (a run with HDFS)
    notes: list[str] = field(default_factory=list)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # not a group leader of ours: the process alone
        os.kill(pid, signal.SIGKILL)


def _restart_worker(cluster, worker_id: str, rng: random.Random) -> tuple[str, str]:
    hosted = cluster.tasks_of(worker_id)
    cluster.workers[worker_id].kill()
    cluster.workers[worker_id].wait(10)
    time.sleep(rng.uniform(1, 4))
    cluster.start_worker(worker_id)
    return worker_id, "hosted " + (", ".join(hosted) or "no task")


def kill_worker(cluster, rng: random.Random) -> tuple[str, str]:
    return _restart_worker(cluster, rng.choice(sorted(cluster.workers)), rng)


def kill_host_of(connector: str):
    """kill -9 the worker that runs `connector`'s task (whatever else it hosts goes with it)."""

    def inject(cluster, rng: random.Random) -> tuple[str, str]:
        deadline = time.monotonic() + 60
        while (worker_id := cluster.host_of(connector)) is None:
            if time.monotonic() > deadline:  # a fault that injects nothing must not pass for one survived
                raise RuntimeError(f"{connector}: no live worker runs its task")
            time.sleep(0.5)
        return _restart_worker(cluster, worker_id, rng)

    return inject


def kill_component(name: str):
    def inject(cluster, rng: random.Random) -> tuple[str, str]:
        comp = cluster.stack.component(name)
        pid = comp.running_pid()
        if pid is None:  # a fault that injects nothing must not pass for one survived
            raise RuntimeError(f"{name}: no process of this run to kill")
        kill_group(pid)
        time.sleep(rng.uniform(0.5, 3))
        cluster.stack.up(progress=False, only=[name])
        return name, f"pid {pid} killed -9, started again"

    return inject


def kill_api(cluster, rng: random.Random) -> tuple[str, str]:
    cluster.api.kill()
    cluster.api.wait(10)
    time.sleep(rng.uniform(0.5, 2))
    started = time.monotonic()
    cluster.start_api()
    return "api", f"killed -9, answering again {time.monotonic() - started:.0f} s after its start"


def restart_postgres(cluster, rng: random.Random) -> tuple[str, str]:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "restart"], check=True, timeout=120)
    return "postgresql", "source and control DB restarted (pg_ctlcluster restart)"


def restart_redis(cluster, rng: random.Random) -> tuple[str, str]:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        client.shutdown(nosave=True)
    except redis.ConnectionError:  # the answer to SHUTDOWN is the connection closing
        pass
    subprocess.run(REDIS_START, check=True, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping():
                break
        except redis.ConnectionError:
            time.sleep(0.2)
    return "redis", "restarted with nothing kept (leases lost)"


FAULTS = {
    "worker": kill_worker,
    "broker": kill_component("broker"),
    "clickhouse": kill_component("clickhouse"),
    "registry": kill_component("registry"),
    "api": kill_api,
}
SHARED_FAULTS = {"postgresql": restart_postgres, "redis": restart_redis}


HDFS_FAULTS = {"hdfs_sink": kill_host_of(SINK)}  # when the run has HDFS


def available_faults(hdfs: bool = False) -> dict:
    return {**FAULTS, **(HDFS_FAULTS if hdfs else {}), **(SHARED_FAULTS if SHARED_RESTARTS else {})}


def plan(seed: int, seconds: float, kinds: list[str], first: float = 15.0, gap: tuple = (10.0, 25.0)) -> list:
    """(second, kind) pairs: a fault every `gap` seconds after `first`, kinds drawn round-robin from
    a seeded shuffle so a short run still meets each kind once."""
    rng = random.Random(seed)
    order = kinds[:]
    rng.shuffle(order)
    out, at, i = [], first, 0
    while at < seconds:
        out.append((at, order[i % len(order)]))
        i += 1
        at += rng.uniform(*gap)
    return out
