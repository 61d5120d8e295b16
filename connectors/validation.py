"""Validate a connector before it runs: static checks (document.parse), mode vs database, and a
live check (connect with a short timeout, the table and named columns exist).

Errors name the field and never quote a secret. `validate_response` renders them in Kafka
Connect's `PUT /connector-plugins/{plugin}/config/validate` shape.
"""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from connectors.document import RUNTIME_KEYS, ConnectorSpec, FieldError, parse
from connectors.plugins import Plugin
from connectors.secrets import host_of, mask, scrub

TIMEOUT_S = 3
_CONNECT_ARGS = {
    "postgresql": {"connect_timeout": TIMEOUT_S},
    "mysql": {"connect_timeout": TIMEOUT_S},
    "mariadb": {"connect_timeout": TIMEOUT_S},
}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_database(values: dict[str, Any]) -> list[FieldError]:
    url = values["url"]
    try:
        parsed = make_url(url)
    except ArgumentError:
        return [FieldError("url", "not a database URL (dialect+driver://user:password@host:port/database)")]
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        from pathlib import Path

        if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).exists():
            return [FieldError("url", f"SQLite database file {parsed.database} does not exist")]
    try:
        engine = create_engine(url, connect_args=_CONNECT_ARGS.get(backend, {}))
    except (NoSuchModuleError, ImportError) as exc:
        return [FieldError("url", f"no driver for {parsed.drivername}: {exc}")]
    errors: list[FieldError] = []
    try:
        with engine.connect() as conn:
            table = values.get("table")
            schema = values.get("db_schema") or values.get("schema")
            if isinstance(table, str):
                insp = inspect(conn)
                if not insp.has_table(table, schema=schema):
                    where = f" in schema {schema}" if schema else ""
                    errors.append(FieldError("table", f"table {table!r} does not exist{where}"))
                else:
                    columns = {c["name"] for c in insp.get_columns(table, schema=schema)}
                    for key, value in values.items():  # timestamp_column, key_column...: must be real columns
                        if key.endswith("_column") and isinstance(value, str) and value not in columns:
                            errors.append(FieldError(key, f"{value!r} is not a column of {table}"))
    except Exception as exc:  # noqa: BLE001 - any driver error is a reason not to run
        text = _first_line(exc)
        if "password" in text.lower() or "authentication" in text.lower() or "access denied" in text.lower():
            errors.append(FieldError("url", f"credentials rejected by {host_of(url)}: {scrub(text, values)}"))
        else:
            errors.append(FieldError("url", f"cannot connect to {backend} at {host_of(url)}: {scrub(text, values)}"))
    finally:
        engine.dispose()
    return errors


def _check_clickhouse(values: dict[str, Any]) -> list[FieldError]:
    from sinks.clickhouse import client_from_url

    client = client_from_url(values["url"])
    try:
        client.execute("SELECT 1")
        return []
    except Exception as exc:  # noqa: BLE001
        return [
            FieldError(
                "url", f"cannot connect to ClickHouse at {host_of(values['url'])}: {scrub(_first_line(exc), values)}"
            )
        ]
    finally:
        client.disconnect()


def _check_socket(values: dict[str, Any]) -> list[FieldError]:
    try:
        socket.create_connection((values["host"], int(values["port"])), TIMEOUT_S).close()
        return []
    except OSError as exc:
        return [FieldError("host", f"cannot reach {values['host']}:{values['port']}: {exc}")]


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


def live_errors(spec: ConnectorSpec) -> list[FieldError]:
    values = spec.plugin_config.model_dump()
    url = values.get("url")
    if isinstance(url, str) and url.startswith("clickhouse"):
        return _check_clickhouse(values)
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
        return _check_database(values)
    if isinstance(values.get("host"), str) and values.get("port"):
        return _check_socket(values)
    return []


def validate(
    name: str | None, config: Any, settings=None, live: bool = True
) -> tuple[ConnectorSpec | None, list[FieldError]]:
    spec, errors = parse(name, config, settings)
    if spec is None:
        return None, errors
    errors = dialect_errors(spec.plugin, spec.plugin_config.model_dump())
    if not errors and live:
        errors = live_errors(spec)
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
    if plugin.kind == "sink":
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
