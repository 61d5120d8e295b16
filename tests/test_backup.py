"""`huiliu backup` / `huiliu restore`: a round trip into a fresh state directory keeps registry
subjects and schema ids and every control DB row; restore refuses a non-empty target."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from api.scheduling.store import ScheduleStore
from connectors.secrets import Vault
from deploy.control import OffsetStore, StageCounters
from deploy.settings import Settings
from tests.support.cli import cli

REGISTRY_PORT = 30320

pytestmark = pytest.mark.integration  # starts the schema registry and the API's stores


class Registry:
    """Our schema registry on a state dir's registry data directory."""

    def __init__(self, settings: Settings):
        self.dir = settings.state_dir / "data" / "registry"
        self.url = f"http://127.0.0.1:{REGISTRY_PORT}"

    def __enter__(self):
        self.log = self.dir.parent.parent / "registry-test.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "schemas.registry",
                "--host",
                "127.0.0.1",
                "--port",
                str(REGISTRY_PORT),
                "--data-dir",
                str(self.dir),
            ],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 90  # a loaded 2-core machine starts Python slowly
        while time.time() < deadline:
            try:
                httpx.get(self.url + "/subjects", timeout=2).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        self.proc.kill()
        pytest.fail(f"registry did not start: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)

    def snapshot(self) -> dict:
        out = {}
        for subject in httpx.get(self.url + "/subjects").json():
            for v in httpx.get(f"{self.url}/subjects/{subject}/versions").json():
                s = httpx.get(f"{self.url}/subjects/{subject}/versions/{v}").json()
                out[(subject, v)] = (s["id"], s["schema"])
        return out


def schema(name: str, *fields: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": f, "type": "string"} for f in fields]})


def control_rows(settings: Settings) -> dict:
    conn = sqlite3.connect(settings.state_dir / "control.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def test_backup_and_restore_round_trip(tmp_path):
    source = Settings(state_dir=tmp_path / "source")
    url = source.resolved_control_db_url
    source.state_dir.mkdir()
    StageCounters(url, "people").add("runner", {"valid": 8, "quarantined": 2})
    OffsetStore(url, "people-source").save("civil.population", {"ts": 123, "id": 9})
    ScheduleStore(url, source.state_dir).create("nightly", "noop", {"count": 1}, "0 2 * * *", [], True, "alice")
    sealed = Vault(source.state_dir).encrypt({"password": "pg-s3cret"})  # as stored for a connector
    with Registry(source) as reg:
        for subject, s in [
            ("a-value", schema("A", "x")),
            ("b-value", schema("B", "y")),
            ("a-value", schema("A", "x", "z")),
        ]:
            r = httpx.post(f"{reg.url}/subjects/{subject}/versions", json={"schema": s})
            if r.status_code == 409:  # BACKWARD: a new field without default; relax for the test
                httpx.put(f"{reg.url}/config/{subject}", json={"compatibility": "NONE"})
                r = httpx.post(f"{reg.url}/subjects/{subject}/versions", json={"schema": s})
            assert r.status_code == 200, r.text
        before_registry = reg.snapshot()
        # Backups are taken while the registry is running: SQLite's online backup keeps them consistent.
        # --include-keys: the connector key is left out by default (tests/test_backup_privacy.py).
        done = cli(source, "backup", "--to", str(tmp_path / "bk"), "--include-keys")
    assert done.returncode == 0, done.stderr
    assert len(before_registry) == 3
    before_control = control_rows(source)
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert set(manifest["items"]) == {"control_db", "registry", "secrets_key"}
    assert (tmp_path / "bk" / "connector_secrets.key").stat().st_mode & 0o077 == 0
    assert (
        manifest["items"]["control_db"]["rows"]["schedules"] == 1 and len(manifest["items"]["registry"]["sha256"]) == 64
    )
    assert manifest["python"] and manifest["created_at"] and manifest["sqlite"]

    target = Settings(state_dir=tmp_path / "fresh")
    done = cli(target, "restore", "--from", str(tmp_path / "bk"))
    assert done.returncode == 0, done.stderr
    assert control_rows(target) == before_control
    assert Vault(target.state_dir).decrypt(sealed) == {"password": "pg-s3cret"}  # the key came along
    with Registry(target) as reg:
        assert reg.snapshot() == before_registry
        r = httpx.post(f"{reg.url}/subjects/c-value/versions", json={"schema": schema("C", "q")})
        assert r.json()["id"] > max(i for i, _ in before_registry.values())  # ids keep counting from the backup

    # The target is not empty now: refused without --force, accepted with it.
    refused = cli(target, "restore", "--from", str(tmp_path / "bk"))
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert cli(target, "restore", "--from", str(tmp_path / "bk"), "--force").returncode == 0
    with Registry(target) as reg:
        assert reg.snapshot() == before_registry  # c-value is gone again: the backup won


def test_restore_refuses_a_tampered_backup_and_backup_refuses_a_used_directory(tmp_path):
    source = Settings(state_dir=tmp_path / "source")
    source.state_dir.mkdir()
    StageCounters(source.resolved_control_db_url, "p").add("sink", {"written": 1})
    assert cli(source, "backup", "--to", str(tmp_path / "bk")).returncode == 0
    again = cli(source, "backup", "--to", str(tmp_path / "bk"))
    assert again.returncode == 1 and "not empty" in again.stderr
    conn = sqlite3.connect(tmp_path / "bk" / "control.db")
    conn.execute("UPDATE stage_counters SET value = 999")
    conn.commit()
    conn.close()
    bad = cli(Settings(state_dir=tmp_path / "other"), "restore", "--from", str(tmp_path / "bk"))
    assert bad.returncode == 1 and "checksum" in bad.stderr


PG_ADMIN = os.environ.get("HUILIU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def test_postgresql_control_db_goes_through_pg_dump(tmp_path, pg_url):
    import psycopg
    from sqlalchemy import create_engine

    restored_url = pg_url + "_restored"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {restored_url.rsplit('/', 1)[1]} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {restored_url.rsplit('/', 1)[1]}")
    source = Settings(state_dir=tmp_path / "pg-source", control_db_url=pg_url)
    StageCounters(pg_url, "pg-people").add("runner", {"valid": 3, "quarantined": 1})
    ScheduleStore(pg_url, source.state_dir).create("pg-nightly", "noop", {}, "0 3 * * *", [], True, "bob")
    done = cli(source, "backup", "--to", str(tmp_path / "bk"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["items"]["control_db"]["kind"] == "pg_dump" and "registry" not in manifest["items"]

    target = Settings(state_dir=tmp_path / "pg-target", control_db_url=restored_url)
    done = cli(target, "restore", "--from", str(tmp_path / "bk"))
    assert done.returncode == 0, done.stderr

    def rows(url):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return (
                    sorted(conn.exec_driver_sql("SELECT pipeline, stage, metric, value FROM stage_counters").all()),
                    conn.exec_driver_sql("SELECT name, cron, created_by FROM schedules").all(),
                )
        finally:
            engine.dispose()

    try:
        assert rows(restored_url) == rows(pg_url)
        refused = cli(target, "restore", "--from", str(tmp_path / "bk"))
        assert refused.returncode == 1 and "not empty" in refused.stderr
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {restored_url.rsplit('/', 1)[1]} WITH (FORCE)")
