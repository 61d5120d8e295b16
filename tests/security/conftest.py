"""The attacker's suite (issue 20, "prove it"): one API process for the package, two tenants.

See world.py for who and what exists. Fixtures: `sec_settings`, `sec_api` (broker + registry + one
API process, package scope), `world` (tenants, principals and tenant a's objects), `openapi` (the
running API's document). Every test here carries the `security` mark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.settings import Settings
from tests.conftest import PORT_BASE
from tests.security.world import B, World, make_principals, tenant_root


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "security: the attacker's suite (tests/security): tenant isolation, file paths, sign-in"
    )


SERVER_FIXTURES = {"sec_api", "world", "openapi"}  # they start the broker, registry and API


def pytest_collection_modifyitems(config, items):
    """Every test here is `security`; those using the package's servers are `integration` too
    (tests/conftest.py's fast loop, `-m "not integration"`, leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.security)
            if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------- servers
@pytest.fixture(scope="package")
def sec_settings(tmp_path_factory) -> Settings:
    state = tmp_path_factory.mktemp("security-state")
    values: dict[str, Any] = dict(
        state_dir=state,
        control_db_url="",  # SQLite in the state dir: the package's own
        kafka_bootstrap=f"127.0.0.1:{PORT_BASE + 392}",
        schema_registry_url=f"http://127.0.0.1:{PORT_BASE + 381}",
        clickhouse_url=f"clickhouse://default:@127.0.0.1:{PORT_BASE + 300}/default",  # nothing there: not needed
        api_port=PORT_BASE + 300,
    )
    # Set only where the setting exists. The suite sends many connector configs from few principals:
    # the live-check rate limit (fix A) would answer 429 before the checks under test run. The
    # broker's log in memory: nothing here needs it durable (no object store to start).
    optional = {"probe_rate_per_minute": 100000.0, "probe_burst": 100000, "broker_storage": "memory"}
    values.update({k: v for k, v in optional.items() if k in Settings.model_fields})
    return Settings(**values)


@pytest.fixture(scope="package")
def sec_api(sec_settings):
    """Broker + registry + one API process; yields the API's base URL."""
    from deploy.stack import Stack
    from tests.api_process import start_api, stop_api

    stack = Stack(sec_settings)
    only = ("broker", "registry")
    try:
        stack.up(progress=False, only=only)
        proc, base = start_api(sec_settings)
        try:
            yield base
        finally:
            stop_api(proc)
    finally:
        stack.down(only=only)


@pytest.fixture(scope="package")
def world(sec_api, sec_settings) -> World:
    w = World(sec_api, sec_settings)
    make_principals(w, w.a)
    make_principals(w, w.b)
    tenant_root(sec_settings, B)
    w.create_role()
    w.create_group()
    w.create_victim()
    w.create_apikey()
    w.create_pipeline()
    w.create_connector()
    w.create_schema_change()
    w.create_import()
    w.create_schedule()
    w.create_alert()
    w.create_message()
    w.create_job()
    w.create_dataset()
    w.create_standard()
    w.create_ticket()
    w.create_service()
    w.create_quality_report()
    yield w
    w.client.close()


@pytest.fixture(scope="package")
def openapi(sec_api) -> dict:
    r = httpx.get(sec_api + "/openapi.json", timeout=30)
    assert r.status_code == 200
    return r.json()
