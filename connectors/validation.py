"""Validate a connector before it runs: static checks (document.parse), mode vs database, where
the config points (paths inside the caller's data root, hosts and ports on the tenant's allow-list:
connectors/paths.py, connectors/probes.py), and a live check (connect with a bounded timeout, the
table and named columns exist), rate-limited per principal.

Errors name the field and never quote a secret, a driver's message or a file's content: a live
check says "cannot connect to host:port" or "authentication failed", nothing finer (closed,
filtered and wrong-protocol ports look the same). `validate_response` renders them in Kafka
Connect's `PUT /connector-plugins/{plugin}/config/validate` shape.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from connectors import probes
from connectors.document import RUNTIME_KEYS, ConnectorSpec, FieldError, parse
from connectors.plugins import Plugin
from connectors.reach import database_engine, scope_errors
from connectors.secrets import mask
from schemas.naming import NameCollision, field_names

TIMEOUT_S = 5  # default; the settings' probe_timeout_s wins
_AUTH_WORDS = ("password", "authentication", "access denied", "auth failed", "not authorized", "login")


def _where(url: str) -> str:
    try:
        parsed = make_url(url)
        return f"{parsed.host}:{parsed.port or probes.DEFAULT_PORTS.get(parsed.get_backend_name(), '')}"
    except ArgumentError:
        return "the server"


def _failure(exc: BaseException, where: str) -> FieldError:
    """Only two outcomes, whatever the driver said: rejected credentials or no connection."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if any(w in text for w in _AUTH_WORDS):
        return FieldError("url", f"authentication failed at {where}")
    return FieldError("url", f"cannot connect to {where}")


def _check_database(values: dict[str, Any], timeout: float, pinned: str | None = None) -> list[FieldError]:
    url = values["url"]
    try:
        parsed = make_url(url)
    except ArgumentError:
        return [FieldError("url", "not a database URL (dialect+driver://user:password@host:port/database)")]
    backend = parsed.get_backend_name()
    where = "the SQLite file" if backend == "sqlite" else _where(url)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).is_file():
            return [FieldError("url", "SQLite database file does not exist")]
    try:
        engine = database_engine(url, timeout, pinned)
    except (NoSuchModuleError, ImportError):
        return [FieldError("url", f"no driver for {parsed.drivername}")]
    errors: list[FieldError] = []
    try:
        with engine.connect() as conn:
            table = values.get("table")
            schema = values.get("db_schema") or values.get("schema")
            if isinstance(table, str):
                insp = inspect(conn)
                if not insp.has_table(table, schema=schema):
                    where_s = f" in schema {schema}" if schema else ""
                    errors.append(FieldError("table", f"table {table!r} does not exist{where_s}"))
                else:
                    names = [c["name"] for c in insp.get_columns(table, schema=schema)]
                    columns = set(names)
                    for key, value in values.items():  # timestamp_column, key_column...: must be real columns
                        if key.endswith("_column") and isinstance(value, str) and value not in columns:
                            errors.append(FieldError(key, f"{value!r} is not a column of {table}"))
                    try:  # column names that would meet as one Avro field name (schemas.naming)
                        if not values.get("include_columns") and not values.get("exclude_columns"):
                            field_names(names, table)
                    except NameCollision as exc:
                        errors.append(FieldError("table", str(exc)))
    except Exception as exc:  # noqa: BLE001 - any driver error is a reason not to run
        if backend == "sqlite":
            errors.append(FieldError("url", "the SQLite file cannot be opened as a database"))
        else:
            errors.append(_failure(exc, where))
    finally:
        engine.dispose()
    return errors


def _check_clickhouse(values: dict[str, Any], timeout: float, pinned: str | None = None) -> list[FieldError]:
    from collections import deque

    from sinks.clickhouse import client_from_url

    client = client_from_url(values["url"])
    client.connection.connect_timeout = client.connection.send_receive_timeout = timeout  # a check is short
    if pinned:
        client.connection.hosts = deque([(pinned, port) for _, port in client.connection.hosts])
    try:
        client.execute("SELECT 1")
        return []
    except Exception as exc:  # noqa: BLE001
        return [_failure(exc, _where(values["url"]))]
    finally:
        client.disconnect()


def _check_socket(values: dict[str, Any], timeout: float, pinned: str | None = None) -> list[FieldError]:
    try:
        socket.create_connection((pinned or values["host"], int(values["port"])), timeout).close()
        return []
    except OSError:
        return [FieldError("host", f"cannot connect to {values['host']}:{values['port']}")]


def dialect_errors(plugin: Plugin, values: dict[str, Any]) -> list[FieldError]:
    url = values.get("url")
    if not plugin.dialects or not isinstance(url, str):
        return []
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return []
    if backend not in plugin.dialects:
        return [
            FieldError(
                "connector.class",
                f"mode {plugin.name} does not support {backend} databases (supported: {', '.join(plugin.dialects)})",
            )
        ]
    return []


def live_errors(spec: ConnectorSpec, timeout: float = TIMEOUT_S, pinned: str | None = None) -> list[FieldError]:
    """`pinned`: the checked address to connect to (probes.pinned_address), else the URL's host."""
    values = spec.plugin_config.model_dump()
    url = values.get("url")
    if isinstance(url, str) and url.startswith("clickhouse"):
        return _check_clickhouse(values, timeout, pinned)
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        try:
            make_url(url).get_dialect()
        except (ArgumentError, NoSuchModuleError):
            if spec.plugin.name.startswith("relational."):
                return [
                    FieldError(
                        "url", "not a database URL with a known dialect (dialect+driver://user:password@host/db)"
                    )
                ]
            return []  # some other kind of URL (ftp, sftp...): the plugin checks it when it runs
        return _check_database(values, timeout, pinned)
    if isinstance(values.get("host"), str) and values.get("port"):
        return _check_socket(values, timeout)
    return []


def stored_path_errors(record, spec: ConnectorSpec, settings) -> list[FieldError]:
    """For a worker about to run a stored connector (perhaps saved before these checks): its
    paths must be inside its tenant's data root (no tenant: the whole root), never server state."""
    tenant = getattr(record, "tenant", None)
    return scope_errors(
        record.config, spec.plugin_config.model_dump(), settings, tenant, superuser=tenant is None, hosts=False
    )


def validate(
    name: str | None,
    config: Any,
    settings=None,
    live: bool = True,
    principal=None,
    tenant: str | None = None,
    superuser: bool | None = None,
    store=None,
) -> tuple[ConnectorSpec | None, list[FieldError]]:
    """Static checks, scope checks, then (rate-limited per `principal`) the live check; for a
    runner, its rules and transforms against its input's columns, for a ClickHouse sink its key
    (registry, else a source connector of the tenant in `store`: connectors.column_errors,
    connectors.sink_keys).

    Scope: `tenant` (the connector's, which the caller was checked to see), else the principal's
    (superusers: the whole data root); with neither (CLI, a pipeline without tenant) the whole data
    root. The rate limit counts the principal's live checks. Raises `probes.ProbeRateLimited`."""
    spec, errors = parse(name, config, settings)
    if spec is None:
        return None, errors
    errors = dialect_errors(spec.plugin, spec.plugin_config.model_dump())
    if errors:
        return None, errors
    if settings is None:
        from deploy.settings import get_settings

        settings = get_settings()
    if principal is not None and tenant is None:
        tenant, superuser = principal.tenant, bool(principal.superuser)
    if superuser is None:
        superuser = tenant is None
    errors = scope_errors(config, spec.plugin_config.model_dump(), settings, tenant, superuser)
    if not errors and live:
        if principal is not None:
            probes.take_probe_token(settings, principal)
        values = spec.plugin_config.model_dump()
        url, allow_tenant = values.get("url"), None if superuser else tenant
        try:  # connect to an address that was checked, not to whatever the name resolves to next
            pinned = probes.pinned_address(settings, allow_tenant, url) if isinstance(url, str) else None
        except probes.HostRefused as exc:
            return None, [FieldError("url", str(exc).split(": ", 1)[-1])]
        errors = live_errors(spec, float(settings.probe_timeout_s), pinned)
        if not errors and spec.plugin.name.startswith("runner."):
            from connectors.column_errors import runner_column_errors

            errors = runner_column_errors(spec, settings, store, tenant)
        elif not errors and spec.plugin.name == "clickhouse":
            from connectors.sink_keys import sink_key_errors

            errors = sink_key_errors(spec, settings, store, tenant)
    return (spec if not errors else None), errors


_TYPES = {
    "string": "STRING",
    "integer": "INT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "array": "LIST",
    "object": "MAP",
}


def _type_of(schema: dict) -> str:
    if "type" in schema:
        return _TYPES.get(schema["type"], "STRING")
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _type_of(option)
    return "STRING"


def validate_response(plugin: Plugin, config: dict[str, Any], errors: list[FieldError]) -> dict:
    """Kafka Connect's validate answer: error_count and one entry per config key with its errors."""
    schema = plugin.config_model.model_json_schema()
    props, required = schema.get("properties", {}), set(schema.get("required", []))
    shown = mask(config)
    definitions = [
        ("connector.class", {"type": "string", "description": "the plugin"}, True, "Common"),
        ("tasks.max", {"type": "integer", "default": 1, "description": "maximum number of tasks"}, False, "Common"),
    ]
    if plugin.reads_topics:
        definitions.append(("topics", {"type": "array", "description": "topics to read"}, True, "Common"))
    definitions += [(k, p, k in required, plugin.name) for k, p in props.items() if k not in RUNTIME_KEYS]
    known = {d[0] for d in definitions}
    by_key: dict[str, list[str]] = {}
    for e in errors:
        key = e.field if e.field in known else e.field.split(".")[0]
        by_key.setdefault(key if key in known or key in config else "connector.class", []).append(e.message)
    entries = []
    for order, (key, prop, req, group) in enumerate(definitions):
        value = shown.get(key, prop.get("default"))
        entries.append(
            {
                "definition": {
                    "name": key,
                    "type": _type_of(prop),
                    "required": req,
                    "default_value": None if prop.get("default") is None else str(prop["default"]),
                    "importance": "HIGH" if req else "MEDIUM",
                    "documentation": prop.get("description", ""),
                    "group": group,
                    "order": order,
                    "width": "NONE",
                    "display_name": key,
                    "dependents": [],
                },
                "value": {
                    "name": key,
                    "value": None if value is None else str(value),
                    "recommended_values": [],
                    "errors": by_key.get(key, []),
                    "visible": True,
                },
            }
        )
    for key in config:  # keys the plugin does not know: listed so their errors have a place
        if key not in known and key not in RUNTIME_KEYS:
            entries.append(
                {
                    "definition": {
                        "name": key,
                        "type": "STRING",
                        "required": False,
                        "default_value": None,
                        "importance": "LOW",
                        "documentation": "not a key of this plugin",
                        "group": plugin.name,
                        "order": len(entries),
                        "width": "NONE",
                        "display_name": key,
                        "dependents": [],
                    },
                    "value": {
                        "name": key,
                        "value": str(shown[key]),
                        "recommended_values": [],
                        "errors": by_key.get(key, []),
                        "visible": True,
                    },
                }
            )
    return {"name": plugin.name, "error_count": len(errors), "groups": ["Common", plugin.name], "configs": entries}
