"""`huiliu demo` as a user runs it, on embedded defaults: PostgreSQL unreachable -> SQLite source,
its own stack on its own ports; the summary's figures must agree with ClickHouse and the source.
Its second part, through the API: the table harvested into the catalogue with its sensitive fields
classified, a service published by another person than its author, an application granted fewer
fields, and two app-key calls answering rows masked by classification, the second from the cache."""

from __future__ import annotations

import json
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
    check_platform_part(out, env, login.group(2), login.group(3), engine)


GRANTED = ["person_id", "citizen_id", "name", "division_code", "phone"]


def check_platform_part(out: str, env: dict, user: str, password: str, source) -> None:
    """The second summary's claims, read back from the source, and from the control DB through the API
    (the demo's stack is down by now; what the catalogue, services and audit log hold is not)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import api_key_for
    from deploy.settings import Settings
    from streams.transforms.masking import keep

    for field, level in (("citizen_id", "secret"), ("name", "sensitive"), ("phone", "sensitive")):
        assert re.search(rf"classified {field}\s*│\s*{level}: ", out), out[-4000:]
    calls = re.findall(r"call (\d) with the app key\s*│\s*HTTP (\d+), X-Huiliu-Cache: (\w+), (\d+) rows", out)
    assert calls == [("1", "200", "miss", "2"), ("2", "200", "hit", "2")], out[-4000:]
    rows = [json.loads(line) for line in re.findall(r"masked row: (\{.*\})", out)]
    assert len(rows) == 2 and all(list(r) == GRANTED for r in rows), rows
    with source.connect() as conn:
        clear = {
            r.person_id: r
            for r in conn.execute(
                text("SELECT person_id, citizen_id, name, phone FROM population WHERE person_id IN (:a, :b)"),
                {"a": rows[0]["person_id"], "b": rows[1]["person_id"]},
            )
        }
    for row in rows:  # secret: keep 6 + 4; sensitive: keep 3 + 2 (a short name: its first character)
        person = clear[row["person_id"]]
        assert row["citizen_id"] == keep(person.citizen_id, 6, 4) != person.citizen_id
        assert row["name"] == keep(person.name.strip(), 3, 2) != person.name.strip()
        assert row["phone"] == keep(person.phone.strip(), 3, 2) != person.phone.strip()

    names = {k[len("HUILIU_") :].lower(): v for k, v in env.items() if k.startswith("HUILIU_")}
    settings = Settings(**{k: v for k, v in names.items() if k in Settings.model_fields})
    with TestClient(create_app(settings)) as api:
        token = api.post("/auth/token", data={"username": user, "password": password}).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        urn = re.search(r"catalogue dataset\s*│\s*(\S+)", out).group(1)
        dataset = api.get("/metadata/datasets", params={"kind": "sink_table"}, headers=admin).json()["items"]
        assert [d["urn"] for d in dataset] == [urn] and urn.endswith("/default.population")
        fields = {
            f["name"]: f["business"] for f in api.get(f"/metadata/datasets/{urn}", headers=admin).json()["fields"]
        }
        assert fields["citizen_id"]["classification"] == "secret" and fields["phone"]["classification"] == "sensitive"
        versions = api.get("/services/population/versions", headers=admin).json()
        assert [(v["status"], v["author"], v["reviewer"]) for v in versions] == [
            ("published", "demo-admin", "demo-reviewer")
        ]
        (application,) = api.get("/services/population/applications", headers=admin).json()
        assert (application["applicant"], application["status"]) == ("demo-applicant", "approved")
        assert application["fields_granted"] == GRANTED and len(application["fields_wanted"]) > len(GRANTED)
        # the calls' entries carry no tenant (an app key is nobody's account): the operator reads them
        operator = {"X-API-Key": api_key_for(settings)}
        served = api.get("/audit", params={"action": "services.call"}, headers=operator).json()
        assert [(e["actor"], e["status"]) for e in served] == [("app:civil_affairs_portal", 200)] * 2
