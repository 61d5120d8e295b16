"""The columns a source's rows carry (their Avro field names), read without running the source.

First the registry subject of the topic (what the rows on it actually carry); when the topic has no
schema yet, the source connector itself: a relational source's table reflected (a short connection
with the validation's timeout, only to hosts the tenant may reach, counted by a probe rate limit
of its own — 429 beyond it — and kept a minute), a file connector's declared `columns`. A file connector without declared columns, a table
chosen by patterns, an unreachable registry or database: None, nothing can be said before data.
Names go through `schemas.naming.field_names` as the sources map them (Chinese names -> pinyin).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import inspect

from connectors import probes
from schemas.naming import CLEAN_SUFFIX, ORIGINAL_NAME, NameCollision, field_names, key_subject, value_subject

CACHE_SECONDS = 60.0
_CACHE: dict[tuple, tuple[float, SourceColumns]] = {}  # (tenant, url, table) -> (until, columns)


@dataclass
class SourceColumns:
    names: list[str]  # the rows' field names
    origin: str  # where they were read, for messages
    origin_zh: str
    originals: dict[str, str] = field(default_factory=dict)  # field name -> the source's own name, where different
    nullable: set[str] = field(default_factory=set)  # fields that may be null
    keys: list[str] | None = None  # the message key's fields (a sink's default key); None: not known

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
    nullable = {f["name"] for f in fields if isinstance(f.get("type"), list) and "null" in f["type"]}
    keys = _key_fields(registry_url, topic, timeout)
    return SourceColumns(names, f"registry subject {subject}", f"注册中心主题 {subject}", originals, nullable, keys)


def _key_fields(registry_url: str, topic: str, timeout: float) -> list[str] | None:
    """The fields of the topic's key subject ([] when the topic has no key schema)."""
    try:
        r = httpx.get(f"{registry_url.rstrip('/')}/subjects/{key_subject(topic)}/versions/latest", timeout=timeout)
        if r.status_code == 404:
            return []
        fields = _record_fields(json.loads(r.json()["schema"])) if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return [f["name"] for f in fields] if fields is not None else None


def _mapped(
    originals: list[str], where: str, origin: str, origin_zh: str, nullable: set[str], keys: list[str]
) -> SourceColumns | None:
    """Source column names (and which are nullable, which form the key) as the rows' field names."""
    try:
        names = field_names(originals, where)
    except NameCollision:
        return None  # the source's own validation refuses it, naming both columns
    renamed = {n: o for o, n in names.items() if n != o}
    return SourceColumns(
        list(names.values()), origin, origin_zh, renamed, {names[o] for o in nullable}, [names[k] for k in keys]
    )


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
    from connectors.reach import database_engine

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
            insp = inspect(conn)
            reflected = insp.get_columns(table, schema=schema)
            keys = insp.get_pk_constraint(table, schema=schema).get("constrained_columns") or []
    except Exception:  # noqa: BLE001 - unreachable, no such table: the live check at deploy names it
        return None
    finally:
        engine.dispose()
    if not reflected:
        return None
    names = [c["name"] for c in reflected]
    nullable = {c["name"] for c in reflected if c.get("nullable", True)}
    where = f"{schema}.{table}" if schema else table
    return _mapped(names, table, f"table {where} of the source", f"数据源的表 {where}", nullable, keys)


def from_connector(
    plugin: str, config: dict[str, Any], values: dict[str, Any], settings, tenant: str | None, principal=None
) -> SourceColumns | None:
    """`config` as written (for the scope check), `values` the parsed plugin config. `tenant` None:
    the whole data root and allow-list (a superuser's view)."""
    declared = values.get("columns")
    if plugin == "files" and isinstance(declared, list) and declared:
        cols = [c for c in declared if isinstance(c, dict) and isinstance(c.get("name"), str)]
        nullable = {c["name"] for c in cols if c.get("nullable", True) and not c.get("key")}  # as ColumnDef.spec
        keys = [c["name"] for c in cols if c.get("key")]
        where = str(values.get("table") or "")
        names = [c["name"] for c in cols]
        return _mapped(names, where, "the file connector's declared columns", "文件连接器声明的列", nullable, keys)
    if not plugin.startswith("relational."):
        return None
    from connectors.reach import scope_errors

    if scope_errors(config, values, settings, tenant, superuser=tenant is None):
        return None  # a path or host the tenant may not use is never connected to (deploy refuses it)
    key = (tenant, values.get("url"), json.dumps(_one_table(values)))
    cached = _CACHE.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]  # saving the same pipeline again and again connects once a minute
    if principal is not None:  # ProbeRateLimited: 429, as for a connector's live check
        probes.take_probe_token(settings, principal, purpose="columns:")
    found = _reflected(values, settings, tenant)
    if found is not None:
        if len(_CACHE) >= 256:
            _CACHE.clear()
        _CACHE[key] = (time.monotonic() + CACHE_SECONDS, found)
    return found


def for_topic(topic: str, settings, source: tuple | None = None) -> SourceColumns | None:
    """The registry's schema of `topic`, else `from_connector(*source)` when a source is given."""
    found = from_registry(settings.schema_registry_url, topic)
    if found is None and source is not None:
        found = from_connector(*source)
    return found


def _writer_columns(topic: str, settings, store, tenant: str | None) -> SourceColumns | None:
    """The columns of a stored source connector of `tenant` that writes `topic`."""
    from connectors.document import parse
    from connectors.topics import connector_topics

    for record in store.all({tenant} if tenant is not None else None):
        if record.kind != "source" or topic not in connector_topics(record, settings):
            continue
        spec, _ = parse(record.name, record.config, settings)
        if spec is not None:
            values = spec.plugin_config.model_dump()
            found = from_connector(spec.plugin.name, record.config, values, settings, record.tenant)
            if found is not None:
                return found
    return None


def topic_columns(topics: list[str], settings, store=None, tenant: str | None = None) -> list[SourceColumns]:
    """The columns of each topic that can be told: its registry subject (a clean topic's is its
    source topic's, which the runner copies), else a source connector of `tenant` in `store` that
    writes it. A store is opened here (and closed) only when needed and none was given."""
    found: list[SourceColumns] = []
    own = None
    try:
        for topic in topics:
            raw = topic[: -len(CLEAN_SUFFIX)] if topic.endswith(CLEAN_SUFFIX) else topic
            columns = from_registry(settings.schema_registry_url, topic)
            if columns is None and raw != topic:
                columns = from_registry(settings.schema_registry_url, raw)
            elif columns is not None and raw != topic and not columns.keys:
                # the runner registers the clean topic's value schema only; its key is the raw topic's
                columns.keys = _key_fields(settings.schema_registry_url, raw, 5.0)
            if columns is None:
                if store is None and own is None:
                    from connectors.store import ConnectorStore

                    own = ConnectorStore.for_settings(settings)
                columns = _writer_columns(raw, settings, store or own, tenant)
            if columns is not None:
                found.append(columns)
    finally:
        if own is not None:
            own.engine.dispose()
    return found
