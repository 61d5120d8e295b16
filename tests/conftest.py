"""Shared fixtures: one real local stack (tansu broker, schema registry, ClickHouse) per test session.

Ports PORT_BASE+n (23xxx unless HUILIU_TEST_PORT_BASE says otherwise) keep the session clear of a developer's own stack (19xxx) and of the per-module
stacks some tests start. PostgreSQL and Redis are the machine's own services.
"""

from __future__ import annotations

import os

import psycopg
import pytest

from deploy.settings import Settings
from deploy.stack import Stack

PG_ADMIN = os.environ.get("HUILIU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
# Several test sessions may run side by side (developers, helpers): each takes its own port block.
# The default block sits below Linux's ephemeral range (32768-60999), so no client socket of
# another test can be holding one of these ports when a server wants it.
# Under pytest-xdist (`make test` runs two workers) each worker is a session of its own: worker
# gwN takes the block N thousand above, its own stack, PostgreSQL databases and control DB.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PORT_BASE = int(os.environ.get("HUILIU_TEST_PORT_BASE", "23000")) + (
    1000 * int(_WORKER[2:]) if _WORKER.startswith("gw") else 0
)
PG_TEST_DB = f"huiliu_test_{PORT_BASE}"


PG_CONTROL_DB = f"huiliu_control_{PORT_BASE}"

# A test that needs one of these talks to live servers: it is marked `integration`, so
# `pytest -m "not integration"` is the fast loop of pure logic. Modules that start servers of
# their own without these fixtures mark themselves (`pytestmark = pytest.mark.integration`).
SERVICE_FIXTURES = {"stack_settings", "pg_url", "mysql_url"}


# Out of the fast loop too: Hadoop clusters, Flink mini-clusters, and tests slow by nature
SERVER_MARKS = {"hdfs", "flink", "slow", "long"}


# Modules whose servers take fixed ports from overlapping ranges share a worker (one after the other).
SHARED_PORTS = {"tests/test_stack.py": "ports-29xxx", "tests/test_hbase_sink.py": "ports-29xxx"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or SERVER_MARKS & marks:
            item.add_marker(pytest.mark.integration)


def work_unit(nodeid: str) -> str:
    """What one xdist worker runs whole: a module; tests/security all together (its last modules
    check what its earlier ones did on the same servers); modules on overlapping fixed ports."""
    module = nodeid.split("::")[0]
    return "security" if module.startswith("tests/security/") else SHARED_PORTS.get(module, module)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` (make test) with work_unit as the scope. (xdist's loadgroup marks do not
    reach the scheduler under pytest 9.2, whose node ids no longer come from `_nodeid`.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> Settings:
    state = tmp_path_factory.mktemp("huiliu-state")
    # The session's API, worker and sink processes share one control DB: PostgreSQL, as in a
    # deployment of many processes (SQLite's WAL has the WAL-reset bug before 3.51.3, see
    # deploy/control.py). Modules that read a control DB file directly use their own SQLite one.
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_CONTROL_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_CONTROL_DB}")
    settings = Settings(
        state_dir=state,
        control_db_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_CONTROL_DB}",
        kafka_bootstrap=f"127.0.0.1:{PORT_BASE + 92}",
        schema_registry_url=f"http://127.0.0.1:{PORT_BASE + 81}",
        clickhouse_url=f"clickhouse://default:@127.0.0.1:{PORT_BASE}/default",
        clickhouse_http_port=PORT_BASE + 123,
        api_port=PORT_BASE + 100,
        demo_source_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_TEST_DB}",
    )
    stack = Stack(settings)
    try:
        stack.up(progress=False)
        yield settings
    finally:
        stack.down()  # also after a failed start: nothing half-started is left behind


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A dedicated PostgreSQL database for the tests, created fresh each session."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_TEST_DB}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_TEST_DB}"


MYSQL_ADMIN = os.environ.get("HUILIU_TEST_MYSQL_ADMIN", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """A dedicated MariaDB database for the tests, created fresh each session."""
    from sqlalchemy import create_engine, text

    engine = create_engine(MYSQL_ADMIN)
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEST_DB}"))
        conn.execute(text(f"CREATE DATABASE {PG_TEST_DB} CHARACTER SET utf8mb4"))
    engine.dispose()
    return f"mysql+pymysql://root@127.0.0.1:3306/{PG_TEST_DB}?charset=utf8mb4"
