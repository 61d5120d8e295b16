"""Backup and restore of the control database and the schema registry's store (ENG-03).

A backup directory holds `control.db` (SQLite online-backup copy: consistent while other processes
write) or `control.pgdump` (pg_dump custom format, when the control DB is PostgreSQL),
`registry/registry.db`, and `manifest.json` (format, versions, time, sha256 and size of each file,
row counts per table). Restore checks the checksums first and refuses a non-empty target unless
`force`. Stop the API, pipelines and registry before restoring: SQLite files are replaced under them.
Not covered: business data in ClickHouse/HBase/HDFS (their own tools) and Kafka topics.

The control DB holds password hashes, API key hashes and sealed connector secrets, so a backup is
private: directory 0700, every file 0600. The key that opens the sealed secrets
(`connector_secrets.key`) is left out unless `include_keys` (`--include-keys`): a backup kept with
its key is as good as the secrets in clear. Keep the key apart (restore puts back a key only when
the backup has one; without it the target's own key must be the one the secrets were sealed with).
With a passphrase (`HUILIU_BACKUP_PASSPHRASE`) every file is encrypted (Fernet, key derived with
scrypt from the passphrase and a random salt kept in the manifest) and named `<file>.enc`;
restore needs the same passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from deploy.settings import Settings

FORMAT = 1
PASSPHRASE_ENV = "HUILIU_BACKUP_PASSPHRASE"


class BackupError(RuntimeError):
    pass


def registry_db(settings: Settings) -> Path:
    return settings.state_dir / "data" / "registry" / "registry.db"


def secrets_key(settings: Settings) -> Path:
    return settings.state_dir / "connector_secrets.key"  # connectors.secrets.Vault's key file


def _copy_private(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as out:
        out.write(src.read_bytes())


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def _pg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (before anything writes to it), or tighten it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        path.chmod(0o600)


def _fernet(passphrase: str, salt: bytes):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _sqlite_copy(src: Path, dst: Path) -> None:
    """SQLite's online backup API: a consistent snapshot even while writers are active."""
    _private_file(dst)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst, timeout=30)
    try:
        source.backup(target)
        # A backup is one self-contained file: no -wal beside it (WAL mode is copied from the source).
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()


def sqlite_row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def _entry(root: Path, rel: str, kind: str) -> dict:
    p = root / rel
    entry = {"file": rel, "kind": kind, "sha256": _sha256(p), "bytes": p.stat().st_size}
    if kind == "sqlite":
        entry["rows"] = sqlite_row_counts(p)
    return entry


def backup(settings: Settings, to: Path, include_keys: bool = False, passphrase: str | None = None) -> dict:
    """`passphrase` None = from HUILIU_BACKUP_PASSPHRASE (unset or empty: not encrypted)."""
    to = Path(to)
    if to.exists() and any(to.iterdir()):
        raise BackupError(f"{to} is not empty; choose a new directory for each backup")
    to.mkdir(parents=True, exist_ok=True)
    to.chmod(0o700)
    passphrase = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV) or None
    items = {}
    url = settings.resolved_control_db_url
    src = _sqlite_path(url)
    if src is not None:
        if not src.exists():
            raise BackupError(f"control DB {src} does not exist")
        _sqlite_copy(src, to / "control.db")
        items["control_db"] = _entry(to, "control.db", "sqlite")
    elif make_url(url).get_backend_name() == "postgresql":
        out = to / "control.pgdump"
        _private_file(out)  # pg_dump truncates and writes it: the mode stays 0600
        run = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={out}", f"--dbname={_pg_url(url)}"],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            raise BackupError(f"pg_dump failed: {run.stderr.strip()[:500]}")
        items["control_db"] = _entry(to, "control.pgdump", "pg_dump")
    else:
        raise BackupError(f"unsupported control DB {make_url(url).get_backend_name()}")
    reg = registry_db(settings)
    if reg.exists():
        _sqlite_copy(reg, to / "registry" / "registry.db")
        items["registry"] = _entry(to, "registry/registry.db", "sqlite")
    key = secrets_key(settings)
    if include_keys and key.exists():
        _copy_private(key, to / key.name)
        items["secrets_key"] = _entry(to, key.name, "key")
    encryption = None
    if passphrase:
        salt = os.urandom(16)
        fernet = _fernet(passphrase, salt)
        for item in items.values():
            plain = to / item["file"]
            sealed = plain.with_name(plain.name + ".enc")
            _private_file(sealed)
            sealed.write_bytes(fernet.encrypt(plain.read_bytes()))
            plain.unlink()
            item.update(file=item["file"] + ".enc", sha256=_sha256(sealed), bytes=sealed.stat().st_size)
        encryption = {"scheme": "fernet-scrypt", "salt": base64.b64encode(salt).decode(), "n": 2**15, "r": 8, "p": 1}
    manifest = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "huiliu_version": _version(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "source_state_dir": str(settings.state_dir),
        "keys_included": "secrets_key" in items,
        "encryption": encryption,
        "items": items,
    }
    _private_file(to / "manifest.json")
    (to / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("huiliu")
    except Exception:
        return "unknown"


def verify(src: Path) -> dict:
    manifest = json.loads((Path(src) / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    for name, item in manifest["items"].items():
        p = Path(src) / item["file"]
        if not p.exists() or _sha256(p) != item["sha256"]:
            raise BackupError(f"{name}: {p} is missing or its checksum does not match the manifest")
    return manifest


def _sqlite_nonempty(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0 and any(sqlite_row_counts(path).values())


def _sql_nonempty(url: str) -> bool:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return any(
                conn.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() for t in inspect(conn).get_table_names()
            )
    finally:
        engine.dispose()


def _decrypted(manifest: dict, src: Path, work: Path, passphrase: str | None) -> Path:
    """The backup directory to restore from: `src` itself, or a private copy with the files decrypted."""
    enc = manifest.get("encryption")
    if not enc:
        return src
    passphrase = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV) or None
    if not passphrase:
        raise BackupError(f"the backup is encrypted: set {PASSPHRASE_ENV} to its passphrase")
    from cryptography.fernet import InvalidToken

    fernet = _fernet(passphrase, base64.b64decode(enc["salt"]))
    for item in manifest["items"].values():
        plain_name = item["file"].removesuffix(".enc")
        target = work / plain_name
        _private_file(target)
        try:
            target.write_bytes(fernet.decrypt((src / item["file"]).read_bytes()))
        except InvalidToken:
            raise BackupError("wrong passphrase for this backup") from None
        item["file"] = plain_name
    return work


def restore(settings: Settings, src: Path, force: bool = False, passphrase: str | None = None) -> dict:
    manifest = verify(src)
    with tempfile.TemporaryDirectory(prefix="huiliu-restore-") as work:
        return _restore(settings, _decrypted(manifest, Path(src), Path(work), passphrase), manifest, force)


def _restore(settings: Settings, src: Path, manifest: dict, force: bool) -> dict:
    url = settings.resolved_control_db_url
    target = _sqlite_path(url)
    items = manifest["items"]
    if not force:
        busy = []
        if target is not None and _sqlite_nonempty(target):
            busy.append(str(target))
        elif target is None and _sql_nonempty(url):
            busy.append(make_url(url).render_as_string(hide_password=True))
        if "registry" in items and _sqlite_nonempty(registry_db(settings)):
            busy.append(str(registry_db(settings)))
        key = secrets_key(settings)
        if (
            "secrets_key" in items
            and key.exists()
            and key.read_bytes() != (src / items["secrets_key"]["file"]).read_bytes()
        ):
            busy.append(f"{key} (another key: secrets sealed with it would no longer open)")
        if busy:
            raise BackupError(f"target not empty: {', '.join(busy)}; use --force to overwrite")
    ctl = items["control_db"]
    if ctl["kind"] == "sqlite":
        if target is None:
            raise BackupError("backup holds a SQLite control DB but the configured control DB is not SQLite")
        _replace_sqlite(src / ctl["file"], target)
    else:
        if make_url(url).get_backend_name() != "postgresql":
            raise BackupError("backup holds a pg_dump but the configured control DB is not PostgreSQL")
        run = subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={_pg_url(url)}", str(src / ctl["file"])],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            raise BackupError(f"pg_restore failed: {run.stderr.strip()[:500]}")
    if "registry" in items:
        _replace_sqlite(src / items["registry"]["file"], registry_db(settings))
    if "secrets_key" in items:
        _copy_private(src / items["secrets_key"]["file"], secrets_key(settings))
    target_db = _sqlite_path(url)
    if target_db is not None and target_db.exists():
        target_db.chmod(0o600)
    return manifest


def _replace_sqlite(backup_file: Path, target: Path) -> None:
    """Copy the backup over the target through the backup API (also clears a stale WAL)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    tmp.unlink(missing_ok=True)
    _sqlite_copy(backup_file, tmp)
    shutil.move(tmp, target)  # atomic rename on one file system
