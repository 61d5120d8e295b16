"""Drive a connect cluster from tests and scripts: start the API and workers as processes, make
and fill a PostgreSQL table, read a change-event topic. Not used by the runtime itself.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from sqlalchemy import create_engine, text

from deploy.settings import settings_env
from schemas.serde import WireCodec


@pytest.fixture(scope="module", name="stack_settings")
def own_control_db(stack_settings, request):
    """For modules that import it and run workers: the session's servers with a PostgreSQL control
    DB of the module's own. Workers run every connector in their control DB, so in the session's
    shared one they also ran what other modules left there, and slowed or unbalanced the tests."""
    from tests.conftest import PG_ADMIN, PORT_BASE

    tag = hashlib.sha1(request.module.__name__.encode()).hexdigest()[:10]
    db = f"huiliu_ctl_{PORT_BASE}_{tag}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    yield stack_settings.model_copy(update={"control_db_url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"})
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def wait_until(check, timeout: float, interval: float = 0.3, message: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout}s (last: {last!r})")


def start_api(settings, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    base = f"http://{settings.api_host}:{settings.api_port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"API exited: {log.read_text()}")
        try:
            return httpx.get(base + "/connector-plugins", timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    wait_until(up, 60, message="API up")
    return proc, base


def start_worker(settings, worker_id: str, log: Path, lease: float = 3.0, max_attempts: int = 4) -> subprocess.Popen:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "worker",
            "--worker-id",
            worker_id,
            "--lease-seconds",
            str(lease),
            "--max-attempts",
            str(max_attempts),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def api_and_worker(settings, logs: Path, worker_id: str):
    """An API and one worker process on `settings`; yields a client with the operator key."""
    from api.auth import api_key_for

    api, base = start_api(settings, logs / "api.log")
    worker = start_worker(settings, worker_id, logs / "worker.log")
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(settings)}, timeout=60)
    try:
        yield client
    finally:
        client.close()
        stop(worker)
        stop(api)


@contextmanager
def cluster_of_run(settings, tmp_path_factory, run: str, label: str):
    """A module's API and worker; on leaving, the connectors whose names hold `run` are deleted."""
    with api_and_worker(settings, tmp_path_factory.mktemp(f"{label}-logs"), f"worker-{label}-{run}") as client:
        yield client
        for name in client.get("/connectors").json():
            if run in name:
                client.delete(f"/connectors/{name}")


@pytest.fixture(name="ch")
def clickhouse_of_module(stack_settings):
    """A ClickHouse client of the session's server (the module's settings)."""
    from sinks.clickhouse import client_from_url

    client = client_from_url(stack_settings.clickhouse_url)
    yield client
    client.disconnect()


@contextmanager
def api_and_workers(settings, logs: Path, worker_ids: list[str], lease: float):
    """An API and several workers sharing tasks with a short `lease`; yields {client, workers,
    logs}. Workers a test adds to `workers` (a restart, a joiner) are stopped too."""
    from api.auth import api_key_for

    api, base = start_api(settings, logs / "api.log")
    state = {
        "workers": {wid: start_worker(settings, wid, logs / f"{wid}.log", lease=lease) for wid in worker_ids},
        "client": httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(settings)}, timeout=60),
        "logs": logs,
    }
    try:
        yield state
    finally:
        client = state["client"]
        try:  # the processes are stopped even when the API cannot answer any more
            for name in client.get("/connectors").json():
                client.delete(f"/connectors/{name}")
        finally:
            client.close()
            for proc in state["workers"].values():
                stop(proc)
            stop(api)


def make_table(pg_url: str, table: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text, updated_at timestamp NOT NULL)"))
    engine.dispose()


def insert_rows(pg_url: str, table: str, ids) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        for i in ids:
            conn.execute(text(f"INSERT INTO {table} VALUES (:i, :n, clock_timestamp())"), {"i": i, "n": f"row {i}"})
    engine.dispose()


def timestamp_config(pg_url: str, table: str, system: str, password: str | None = None) -> dict:
    url = pg_url.replace("postgres@", f"postgres:{password}@") if password else pg_url
    return {
        "connector.class": "relational.timestamp",
        "tasks.max": 1,
        "url": url,
        "system": system,
        "db_schema": "public",
        "table": table,
        "timestamp_column": "updated_at",
        "batch_size": 200,
    }


class TopicReader:
    """Reads a topic from the start and keeps what arrived: (op, id) per event, and the decoded
    envelopes in topic order (`values`)."""

    def __init__(self, settings, topic: str):
        self.codec = WireCodec(settings.schema_registry_url)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        # assign, not subscribe: no group coordination, reading starts at once (topics have 1 partition)
        self.consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.events: list[tuple[str, int]] = []
        self.values: list[dict] = []

    def read(self, seconds: float = 1.0) -> list[tuple[str, int]]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            for m in self.consumer.consume(500, 0.5):
                if not m.error():
                    value = self.codec.decode(m.value())[1]
                    self.values.append(value)
                    self.events.append((value["op"], (value["after"] or value["before"])["id"]))
        return self.events

    def ids(self) -> set[int]:
        return {i for _, i in self.events}

    def wait_for_ids(self, expected: set[int], timeout: float = 60) -> set[int]:
        wait_until(
            lambda: expected <= self.ids() or (self.read(1.0) and False),
            timeout,
            message=f"ids {sorted(expected - self.ids())[:10]}... in the topic",
        )
        return self.ids()

    def close(self) -> None:
        self.consumer.close()
