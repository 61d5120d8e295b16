"""Control-DB migrations: a DB made by release 0.1.0 (eaa9ece, tables from create_all, no
alembic_version) with data in it is upgraded by `huiliu db upgrade` and loses nothing; processes
that start at once migrate exactly once. On SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from deploy.control import OffsetStore
from deploy.migrate import differences, head, upgrade
from tests.conftest import PG_ADMIN, PORT_BASE

pytestmark = pytest.mark.integration  # PostgreSQL, and the previous release's code from git

REPO = Path(__file__).resolve().parents[1]
PREVIOUS_RELEASE = "eaa9ece"
SEED_WITH_OLD_CODE = """
import sys
from api.identity.store import store_for
from api.audit.log import AuditLog
from api.scheduling.store import ScheduleStore
from deploy.control import OffsetStore, StageCounters
url = sys.argv[1]
store_for(url).create_user("alice", "correct-horse-9", tenant="a")
OffsetStore(url, "people-source").save("civil.population", {"ts": 123, "id": 9})
StageCounters(url, "people").add("runner", {"valid": 8, "quarantined": 2})
ScheduleStore(url).create("nightly", "noop", {"count": 1}, "0 2 * * *", [], True, "alice")
AuditLog(url).record(actor="alice", actor_kind="user", action="auth.login", method="POST", path="/auth/token",
                     status=200, tenant="a")
# connectors as 0.1.0 stored them: its runner plugin was registered as a sink
from sqlalchemy import create_engine
from connectors.store import connect_metadata, connectors_table
engine = create_engine(url)
connect_metadata.create_all(engine)
row = dict(config_masked="{}", config_enc="x", target_state="RUNNING", version=1, task_count=1, created_at=0,
           updated_at=0)
with engine.begin() as conn:
    conn.execute(connectors_table.insert().values(name="people-runner", kind="sink", plugin="runner.lean", **row))
    conn.execute(connectors_table.insert().values(name="people-sink", kind="sink", plugin="clickhouse", **row))
"""


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("release-0.1.0")
    archive = subprocess.run(["git", "archive", PREVIOUS_RELEASE], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def pg_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def control_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    return pg_database(f"huiliu_migrate_{PORT_BASE}")


def huiliu(*args: str, url: str, state: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HUILIU_CONTROL_DB_URL": url, "HUILIU_STATE_DIR": str(state)}
    done = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = (
                "identity_users",
                "source_offsets",
                "stage_counters",
                "schedules",
                "audit_log",
                "connect_connectors",
            )
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in tables}
    finally:
        engine.dispose()


def test_a_control_db_of_the_previous_release_is_upgraded_without_losing_data(previous_release, control_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(previous_release)}
    seeded = subprocess.run(
        [sys.executable, "-c", SEED_WITH_OLD_CODE, control_url], cwd=previous_release, env=env, capture_output=True
    )
    assert seeded.returncode == 0, seeded.stderr.decode()[-3000:]
    before = counts(control_url)
    assert not inspect(create_engine(control_url)).has_table("alembic_version")

    out = huiliu("db", "upgrade", url=control_url, state=tmp_path / "state").stdout
    assert f"empty -> {head()}" in out
    assert (
        counts(control_url)
        == before
        == {"identity_users": 1, "source_offsets": 1, "stage_counters": 2, "schedules": 1, "audit_log": 1}
        | {"connect_connectors": 2}
    )
    with create_engine(control_url).connect() as conn:
        kinds = dict(conn.execute(text("SELECT name, kind FROM connect_connectors")).all())
    assert kinds == {"people-runner": "processor", "people-sink": "sink"}
    assert OffsetStore(control_url, "people-source").load("civil.population") == {"ts": 123, "id": 9}
    assert f"at {head()}; newest {head()}" in huiliu("db", "current", url=control_url, state=tmp_path / "state").stdout
    again = huiliu("db", "upgrade", url=control_url, state=tmp_path / "state").stdout
    assert f"control DB at {head()}" in again and counts(control_url) == before


def test_processes_starting_at_once_migrate_exactly_once(tmp_path):
    url = pg_database(f"huiliu_migrate_race_{PORT_BASE}")
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda i: huiliu("db", "upgrade", url=url, state=tmp_path / f"s{i}").stdout, range(4)))
    assert sum("empty ->" in out for out in runs) == 1, runs
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head()
    engine.dispose()


def test_the_migrations_build_exactly_the_tables_the_code_defines(control_url):
    """A column or table added to a definition without a migration turns this red (`huiliu db
    revision -m ...` writes the migration)."""
    engine = create_engine(control_url)
    try:
        upgrade(engine)
        assert differences(engine) == []
    finally:
        engine.dispose()
