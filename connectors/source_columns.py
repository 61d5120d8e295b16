"""The columns a source's rows carry (their Avro field names), read without running the source.

First the registry subject of the topic (what the rows on it actually carry); when the topic has no
schema yet, the source connector itself: a relational source's table reflected (a short connection
with the validation's timeout, only to hosts the tenant may reach, counted by the probe rate
limit), a file connector's declared `columns`. A file connector without declared columns, a table
chosen by patterns, an unreachable registry or database: None, nothing can be said before data.
Names go through `schemas.naming.field_names` as the sources map them (Chinese names -> pinyin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import inspect

from connectors import probes
from schemas.naming import ORIGINAL_NAME, NameCollision, field_names, value_subject


@dataclass
class SourceColumns:
    names: list[str]  # the rows' field names
    origin: str  # where they were read, for messages
    origin_zh: str
    originals: dict[str, str] = field(default_factory=dict)  # field name -> the source's own name, where different

    def shown(self, names: list[str]) -> str:
        return ", ".join(f"{n} ({self.originals[n]})" if n in self.originals else n for n in names) or "(none)"

    def field_for(self, original: str) -> str | None:
        """The field name of a source column named by its own (e.g. Chinese) name."""
        return next((f for f, o in self.originals.items() if o == original), None)


def _record_fields(schema: Any) -> list[dict] | None:
    """The fields of the envelope's row record (`after`), or of a plain record schema."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    fields = schema.get("fields") or []
    for f in fields:
        if f.get("name") in ("after", "before"):
            for option in f["type"] if isinstance(f["type"], list) else [f["type"]]:
                if isinstance(option, dict) and option.get("type") == "record":
                    return option.get("fields") or []
    return fields


def from_registry(registry_url: str, topic: str, timeout: float = 5.0) -> SourceColumns | None:
    subject = value_subject(topic)
    try:
        r = httpx.get(f"{registry_url.rstrip('/')}/subjects/{subject}/versions/latest", timeout=timeout)
        if r.status_code != 200:
            return None  # no schema yet (404), or the registry cannot say
        fields = _record_fields(json.loads(r.json()["schema"]))
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    if fields is None:
        return None
    names = [f["name"] for f in fields]
    originals = {f["name"]: f[ORIGINAL_NAME] for f in fields if isinstance(f.get(ORIGINAL_NAME), str)}
    return SourceColumns(names, f"registry subject {subject}", f"注册中心主题 {subject}", originals)


def _mapped(originals: list[str], where: str, origin: str, origin_zh: str) -> SourceColumns | None:
    try:
        names = field_names(originals, where)
    except NameCollision:
        return None  # the source's own validation refuses it, naming both columns
    return SourceColumns(list(names.values()), origin, origin_zh, {n: o for o, n in names.items() if n != o})


def _one_table(values: dict[str, Any]) -> tuple[str | None, str] | None:
    """(schema, table) of a relational source that names exactly one table, as its topic is named."""
    table = values.get("table")
    tables = values.get("tables")
    if not isinstance(table, str) and isinstance(tables, list) and len(tables) == 1 and isinstance(tables[0], str):
        table = tables[0]
        if "." in table and "db_schema" in values:  # 'schema.table' where the plugin has schemas
            schema, table = table.split(".", 1)
            return schema, table
    return (values.get("db_schema"), table) if isinstance(table, str) else None


def _reflected(values: dict[str, Any], settings, tenant: str | None) -> SourceColumns | None:
    from connectors.validation import database_engine

    found = _one_table(values)
    url = values.get("url")
    if found is None or not isinstance(url, str):
        return None
    schema, table = found
    try:
        pinned = probes.pinned_address(settings, tenant, url)
        engine = database_engine(url, float(settings.probe_timeout_s), pinned)
    except Exception:  # noqa: BLE001 - refused host, unknown dialect, no driver: the source's checks say why
        return None
    try:
        with engine.connect() as conn:
            names = [c["name"] for c in inspect(conn).get_columns(table, schema=schema)]
    except Exception:  # noqa: BLE001 - unreachable, no such table: the live check at deploy names it
        return None
    finally:
        engine.dispose()
    where = f"{schema}.{table}" if schema else table
    return _mapped(names, table, f"table {where} of the source", f"数据源的表 {where}") if names else None


def from_connector(
    plugin: str, config: dict[str, Any], values: dict[str, Any], settings, tenant: str | None, principal=None
) -> SourceColumns | None:
    """`config` as written (for the scope check), `values` the parsed plugin config. `tenant` None:
    the whole data root and allow-list (a superuser's view)."""
    declared = values.get("columns")
    if plugin == "files" and isinstance(declared, list) and declared:
        names = [c["name"] for c in declared if isinstance(c, dict) and isinstance(c.get("name"), str)]
        return _mapped(
            names, str(values.get("table") or ""), "the file connector's declared columns", "文件连接器声明的列"
        )
    if not plugin.startswith("relational."):
        return None
    from connectors.validation import scope_errors

    if scope_errors(config, values, settings, tenant, superuser=tenant is None):
        return None  # a path or host the tenant may not use is never connected to (deploy refuses it)
    if principal is not None:
        try:
            probes.take_probe_token(settings, principal, purpose="columns:")
        except probes.ProbeRateLimited:
            return None  # checked again at deploy; a save is not refused for the rate limit
    return _reflected(values, settings, tenant)


def for_topic(topic: str, settings, source: tuple | None = None) -> SourceColumns | None:
    """The registry's schema of `topic`, else `from_connector(*source)` when a source is given."""
    found = from_registry(settings.schema_registry_url, topic)
    if found is None and source is not None:
        found = from_connector(*source)
    return found
