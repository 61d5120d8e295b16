"""Harvest a relational database through SQLAlchemy inspection: tables and views, columns (type,
nullable, default, comment, key), primary keys, indexes, table comments and row-count estimates.
Works for any dialect that inspects (PostgreSQL, MariaDB/MySQL, SQLite tested); the batched
`get_multi_*` calls read a whole schema in a few queries (2,000 tables in seconds, not minutes).

    harvest_relational(engine, url, system_name, schemas=None, include=None) -> Harvest
"""

from __future__ import annotations

import fnmatch
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.urns import relational_namespace, relational_urn, system_urn

_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "pg_toast", "mysql", "performance_schema", "sys"}


def _type_name(column: dict[str, Any], dialect) -> str:
    try:
        return column["type"].compile(dialect=dialect)
    except Exception:  # a type the dialect cannot render back (e.g. reflected NullType)
        return str(column["type"])


def _estimates(engine: Engine, schema: str | None) -> dict[str, int]:
    """Row estimates the server keeps (no COUNT(*)): pg_class.reltuples, information_schema.tables."""
    name = engine.dialect.name
    try:
        with engine.connect() as conn:
            if name == "postgresql":
                rows = conn.execute(
                    text(
                        "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'm')"
                    ),
                    {"s": schema or "public"},
                )
            elif name in ("mysql", "mariadb"):
                rows = conn.execute(
                    text("SELECT table_name, table_rows FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": schema or conn.exec_driver_sql("SELECT DATABASE()").scalar()},
                )
            else:
                return {}
            return {r[0]: int(r[1]) for r in rows if r[1] is not None and int(r[1]) >= 0}
    except Exception:  # statistics are a bonus: a server that hides them still gets its columns read
        return {}


def _schemas(inspector, schemas: list[str] | None) -> list[str | None]:
    if schemas:
        return list(schemas)
    default = inspector.default_schema_name
    return [default] if default else [None]


def harvest_relational(
    engine: Engine,
    url: str,
    system_name: str,
    schemas: list[str] | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Harvest:
    """`include`/`exclude`: fnmatch patterns on `schema.table` (a connector's own selection)."""
    namespace, database = relational_namespace(url)
    inspector = inspect(engine)
    datasets: list[DatasetInfo] = []
    errors: list[str] = []
    for schema in _schemas(inspector, schemas):
        if schema in _SYSTEM_SCHEMAS:
            continue
        label = schema or inspector.default_schema_name or ""

        def wanted(name: str, label=label) -> bool:
            full = f"{label}.{name}"
            return (
                not include or any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(name, p) for p in include)
            ) and not any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(name, p) for p in exclude or ())

        kinds = {n: "table" for n in inspector.get_table_names(schema=schema) if wanted(n)}
        kinds.update({n: "view" for n in inspector.get_view_names(schema=schema) if wanted(n)})
        if not kinds:
            continue
        names = sorted(kinds)
        columns = inspector.get_multi_columns(schema=schema, filter_names=names, kind=_all_kinds())
        pks = inspector.get_multi_pk_constraint(schema=schema, filter_names=names, kind=_all_kinds())
        comments = _multi(inspector.get_multi_table_comment, schema, names)
        indexes = _multi(inspector.get_multi_indexes, schema, names)
        rows = _estimates(engine, schema)
        for name in names:
            cols = columns.get((schema, name))
            if cols is None:
                errors.append(f"{label}.{name}: columns could not be read")
                continue
            key = list((pks.get((schema, name)) or {}).get("constrained_columns") or [])
            fields = [
                FieldInfo(
                    name=c["name"],
                    type=_type_name(c, engine.dialect),
                    position=i + 1,
                    nullable=bool(c.get("nullable", True)),
                    key=c["name"] in key,
                    default=None if c.get("default") is None else str(c["default"]),
                    comment=c.get("comment") or None,
                )
                for i, c in enumerate(cols)
            ]
            properties = {
                "comment": ((comments.get((schema, name)) or {}).get("text")) or None,
                "primary_key": key or None,
                "kind_detail": kinds[name],
                "indexes": [
                    {"name": ix.get("name"), "columns": ix.get("column_names"), "unique": bool(ix.get("unique"))}
                    for ix in indexes.get((schema, name)) or []
                ],
                "rows": rows.get(name),
                "schema": label,
                "database": database,
            }
            datasets.append(
                DatasetInfo(
                    urn=relational_urn(url, label, name),
                    name=f"{label}.{name}" if label else name,
                    kind=kinds[name],
                    fields=fields,
                    properties=properties,
                )
            )
    system = SystemInfo(
        urn=system_urn(namespace, database),
        name=system_name,
        kind=namespace.split(":", 1)[0],
        properties={"namespace": namespace, "database": database, "dialect": engine.dialect.name},
    )
    return Harvest(system=system, datasets=datasets, errors=errors)


def _all_kinds():
    from sqlalchemy.engine.reflection import ObjectKind

    return ObjectKind.TABLE | ObjectKind.VIEW


def _multi(method, schema: str | None, names: list[str]) -> dict:
    """A batched reflection a dialect may not support (e.g. comments on SQLite): empty then."""
    try:
        return method(schema=schema, filter_names=names, kind=_all_kinds())
    except NotImplementedError:
        return {}
