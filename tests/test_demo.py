"""`huiliu demo` as a user runs it, on embedded defaults: PostgreSQL unreachable -> SQLite source,
its own stack on its own ports; the summary's figures must agree with ClickHouse and the source."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PORT_BASE

pytestmark = pytest.mark.integration  # starts a stack of its own

BASE = PORT_BASE + 500  # a block of its own: the demo starts (and stops) its own stack


@pytest.mark.slow
def test_demo_runs_on_embedded_defaults(tmp_path):
    state = tmp_path / "state"
    env = {
        **os.environ,
        "HUILIU_STATE_DIR": str(state),
        "HUILIU_KAFKA_BOOTSTRAP": f"127.0.0.1:{BASE + 92}",
        "HUILIU_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{BASE + 81}",
        "HUILIU_CLICKHOUSE_URL": f"clickhouse://default:@127.0.0.1:{BASE}/default",
        "HUILIU_CLICKHOUSE_HTTP_PORT": str(BASE + 123),
        "HUILIU_DEMO_SOURCE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",  # nothing listens
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--rows", "400"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "using embedded SQLite" in out
    assert "broker storage: durable" in out
    captured = int(re.search(r"rows captured \(source\)\s*│\s*(\d+)", out).group(1))
    passed = int(re.search(r"passed quality rules\s*│\s*(\d+)", out).group(1))
    in_clickhouse = int(re.search(r"rows in ClickHouse \(FINAL\)\s*│\s*(\d+)", out).group(1))
    quarantined = sum(int(n) for n in re.findall(r"quarantined by \w+\s*│\s*(\d+)", out))
    assert captured == 400 and passed == in_clickhouse and passed + quarantined == 400

    # It ends with the console's address and a sign-in that works.
    login = re.search(r"open (http://\S+/console/) and sign in as (\S+) with password (\S+)", out)
    assert login, out[-1500:]
    from api.identity.store import store_for
    from deploy.settings import Settings

    store = store_for(Settings(state_dir=state).resolved_control_db_url)
    assert store.check_login(login.group(2), login.group(3))[0] == "ok"
    assert (state / "console_demo_password").stat().st_mode & 0o777 == 0o600

    # The deliberately bad rows are exactly what the rules refused.
    engine = create_engine(f"sqlite:///{state / 'files' / 'demo' / 'demo_source.db'}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, phone FROM population")).all()
    bad = sum(
        1 for name, phone in rows if not (name or "").strip() or not re.fullmatch(r"1[3-9]\d{9}", (phone or "").strip())
    )
    assert 0 < bad == quarantined
