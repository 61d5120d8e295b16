"""Shared fixtures: one real local stack (tansu broker, schema registry, ClickHouse) per test session.

Ports 39xxx keep the session clear of a developer's own stack (19xxx) and of the per-module
stacks some tests start. PostgreSQL and Redis are the machine's own services.
"""
from __future__ import annotations

import os

import psycopg
import pytest

from deploy.settings import Settings
from deploy.stack import Stack

PG_ADMIN = os.environ.get("HUILIU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = "huiliu_test"


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> Settings:
    state = tmp_path_factory.mktemp("huiliu-state")
    settings = Settings(
        state_dir=state,
        kafka_bootstrap="127.0.0.1:39092",
        schema_registry_url="http://127.0.0.1:38081",
        clickhouse_url="clickhouse://default:@127.0.0.1:39000/default",
        clickhouse_http_port=38123,
        api_port=38000,
        demo_source_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_TEST_DB}",
    )
    stack = Stack(settings)
    stack.up(progress=False)
    yield settings
    stack.down()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A dedicated PostgreSQL database for the tests, created fresh each session."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_TEST_DB}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_TEST_DB}"
