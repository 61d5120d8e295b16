"""Security issue 20, backups: the control DB is private live and in backups (0600 files, 0700
directory), the connector key is left out unless asked for, and a passphrase encrypts the backup."""

from __future__ import annotations

import json
import os
import stat

import pytest

from connectors.secrets import Vault
from deploy.control import StageCounters
from deploy.settings import Settings
from tests.support.cli import cli


def private(path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def source_state(tmp_path) -> Settings:
    source = Settings(state_dir=tmp_path / "source")
    source.state_dir.mkdir()
    StageCounters(source.resolved_control_db_url, "people").add("runner", {"valid": 5})
    return source


def test_the_live_control_db_and_its_wal_are_private(tmp_path):
    source = source_state(tmp_path)
    db = source.state_dir / "control.db"
    assert private(db)
    assert all(private(p) for p in source.state_dir.glob("control.db-*"))
    # A file left readable by an older release is tightened on the next start.
    db.chmod(0o644)
    from deploy.control import private_sqlite_file

    private_sqlite_file(source.resolved_control_db_url)
    assert private(db)


@pytest.mark.slow  # key derivation (10 s)
def test_a_backup_is_private_and_leaves_the_key_out_unless_asked(tmp_path):
    source = source_state(tmp_path)
    Vault(source.state_dir).encrypt({"password": "pg-s3cret"})  # creates connector_secrets.key
    done = cli(source, "backup", "--to", str(tmp_path / "bk"))
    assert done.returncode == 0, done.stderr
    bk = tmp_path / "bk"
    manifest = json.loads((bk / "manifest.json").read_text())
    assert "secrets_key" not in manifest["items"] and not (bk / "connector_secrets.key").exists()
    assert manifest["keys_included"] is False
    assert private(bk) and all(private(p) for p in bk.rglob("*") if p.is_file())
    restored = cli(Settings(state_dir=tmp_path / "target"), "restore", "--from", str(bk))
    assert restored.returncode == 0 and "no connector_secrets.key" in restored.stdout
    assert private(tmp_path / "target" / "control.db")


@pytest.mark.slow  # key derivation per file (10 s)
def test_a_passphrase_encrypts_every_file(tmp_path):
    source = source_state(tmp_path)
    Vault(source.state_dir).encrypt({"password": "pg-s3cret"})
    env = {"HUILIU_BACKUP_PASSPHRASE": "a long backup passphrase"}
    os.environ.update(env)
    try:
        done = cli(source, "backup", "--to", str(tmp_path / "bk"), "--include-keys")
    finally:
        del os.environ["HUILIU_BACKUP_PASSPHRASE"]
    assert done.returncode == 0, done.stderr
    bk = tmp_path / "bk"
    manifest = json.loads((bk / "manifest.json").read_text())
    assert manifest["encryption"]["scheme"] == "fernet-scrypt"
    files = sorted(p.name for p in bk.iterdir())
    assert files == ["connector_secrets.key.enc", "control.db.enc", "manifest.json"]
    assert b"SQLite format" not in (bk / "control.db.enc").read_bytes()
    target = Settings(state_dir=tmp_path / "target")
    refused = cli(target, "restore", "--from", str(bk))
    assert refused.returncode == 1 and "HUILIU_BACKUP_PASSPHRASE" in refused.stderr
    os.environ["HUILIU_BACKUP_PASSPHRASE"] = "the wrong one"
    try:
        wrong = cli(target, "restore", "--from", str(bk))
        os.environ.update(env)
        restored = cli(target, "restore", "--from", str(bk))
    finally:
        del os.environ["HUILIU_BACKUP_PASSPHRASE"]
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    assert restored.returncode == 0, restored.stderr
    assert StageCounters(target.resolved_control_db_url, "people").read() == {"runner": {"valid": 5}}
    assert (target.state_dir / "connector_secrets.key").read_bytes() == (
        source.state_dir / "connector_secrets.key"
    ).read_bytes()
