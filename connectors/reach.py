"""What a connector config may reach, checked before anything is opened: paths inside the
caller's data root, hosts and ports on the tenant's allow-list, server-only keys left alone; and
database engines whose connections time out and go to the address that was checked.

    from connectors.reach import scope_errors, database_engine
    scope_errors(config, values, settings, tenant, superuser=False)   # -> [FieldError]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from connectors import paths, probes
from schemas.field_errors import FieldError

SERVER_KEYS = ("control_db_url",)  # filled in from the settings, never from a config


def _connect_args(backend: str, timeout: float) -> dict:
    t = max(1, int(round(timeout)))
    if backend == "postgresql":
        return {"connect_timeout": t}
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": t, "read_timeout": t, "write_timeout": t}
    if backend == "sqlite":
        return {"timeout": timeout}
    return {}


def database_engine(url: str, timeout: float, pinned: str | None = None):
    """An engine whose connections time out and go to `pinned` (an address that was checked), not
    to whatever the URL's host resolves to next. Raises NoSuchModuleError/ImportError (no driver)."""
    parsed = make_url(url)
    connect_args, target = _connect_args(parsed.get_backend_name(), timeout), url
    if pinned and parsed.get_backend_name() == "postgresql":
        connect_args["hostaddr"] = pinned  # libpq connects there; `host` still names the server (TLS)
    elif pinned:
        target = parsed.set(host=pinned)
    return create_engine(target, connect_args=connect_args)


# -- where a config points ---------------------------------------------------------------------
_PATH_KEYS = ("paths", "key_file", "state_dir", "path")


_PATH_SUFFIXES = ("_file", "_dir", "_path")


def _is_path_key(key: str) -> bool:
    return key in _PATH_KEYS or key.endswith(_PATH_SUFFIXES)


def _walk(values: dict[str, Any], prefix: str, settings, tenant, root: Path, hosts: bool = True) -> list[FieldError]:
    errors: list[FieldError] = []

    def guard(field: str, fn, *args) -> None:
        try:
            fn(*args)
        except (paths.PathRefused, probes.HostRefused) as exc:
            errors.append(FieldError(field, str(exc).split(": ", 1)[-1]))

    local_store = values.get("kind") == "local" and "root" in values
    for key, value in values.items():
        field = f"{prefix}{key}"
        if value is None or key in SERVER_KEYS:
            continue
        if isinstance(value, dict):
            errors += _walk(value, field + ".", settings, tenant, root, hosts)
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                errors += _walk(v, f"{field}.{i}.", settings, tenant, root, hosts)
        elif isinstance(value, str) and (key == "url" or key.endswith(("_url", "_uri"))):
            if _is_sqlite(value):
                guard(field, paths.check_sqlite_url, value, root, field, settings)
            elif hosts:
                guard(field, probes.check_url, settings, tenant, value, field)
        elif key == "root" and local_store:
            guard(field, paths.resolve_inside, root, value, field, settings)
        elif key == "pattern" and local_store:
            guard(field, paths.check_pattern, value, field)
        elif _is_path_key(key) and isinstance(value, str):
            guard(field, paths.resolve_inside, root, value, field, settings)
        elif _is_path_key(key) and isinstance(value, list):
            for i, v in enumerate(value):
                guard(f"{field}.{i}", paths.resolve_inside, root, str(v), f"{field}.{i}", settings)
        elif hosts and key == "host" and isinstance(value, str) and values.get("kind") not in ("local", "hdfs"):
            port = values.get("port") or probes.DEFAULT_PORTS.get(str(values.get("kind")))
            guard(field, probes.check_host, settings, tenant, value, port, field)
    return errors


def _is_sqlite(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "sqlite"
    except ArgumentError:
        return False


def scope_errors(
    config: dict[str, Any], values: dict[str, Any], settings, tenant, superuser: bool, hosts: bool = True
) -> list[FieldError]:
    """Paths outside the caller's data root, hosts/ports off the tenant's allow-list (unless
    `hosts=False`), server-only keys set by the caller: checked before anything is opened or
    connected."""
    errors = [FieldError(k, "set by the server, not by a config") for k in SERVER_KEYS if k in config]
    try:
        root = paths.root_for(settings, tenant, superuser)
    except paths.PathRefused as exc:
        return errors + [FieldError(exc.param, exc.reason)]
    return errors + _walk(values, "", settings, None if superuser else tenant, root, hosts)
