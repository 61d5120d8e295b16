"""The ClickHouse sink describes its tables for the catalogue: columns from `system.columns`
(type, position, key, default, comment — the source name of a renamed field), rows, bytes and last
change from the active `system.parts`.

    describe_tables(url, tables) -> schemas.catalog.Harvest
"""

from __future__ import annotations

from urllib.parse import urlparse

from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.urns import dataset_urn, host_namespace, system_urn
from schemas.naming import avro_name
from sinks.clickhouse.backend import BackendError, StatementRefused, backend_for

UNKNOWN_IDENTIFIER = 47  # ClickHouse's code for a column the server does not have


def _quoted(names: list[str]) -> str:
    return ", ".join("'" + n.replace("\\", "\\\\").replace("'", "\\'") + "'" for n in names)


def _columns(backend, names: list[str]) -> list[tuple]:
    """(table, name, type, position, comment, in primary key, default) per column. Servers before
    ClickHouse 19 (Debian's 18.16, the local stack's) have no `system.columns.position`; they list a
    table's columns in declaration order, so the position is counted instead."""
    where = f"WHERE database = currentDatabase() AND table IN ({_quoted(names)})"
    try:
        return backend.execute(
            "SELECT table, name, type, position, comment, is_in_primary_key, default_expression "
            f"FROM system.columns {where} ORDER BY table, position"
        )
    except StatementRefused as exc:
        if exc.code != UNKNOWN_IDENTIFIER:
            raise
    rows = backend.execute(
        f"SELECT table, name, type, comment, is_in_primary_key, default_expression FROM system.columns {where}"
    )
    counted: dict[str, int] = {}
    out = []
    for table, name, type_, comment, in_key, default in rows:
        counted[table] = counted.get(table, 0) + 1
        out.append((table, name, type_, counted[table], comment, in_key, default))
    return sorted(out, key=lambda r: (r[0], r[3]))


def describe_tables(url: str, tables: list[str]) -> Harvest:
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        namespace, database = "clickhouse://embedded", (parsed.path or "").strip("/") or "default"
    else:
        namespace = host_namespace("clickhouse", f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 9000}")
        database = (parsed.path or "/default").strip("/") or "default"
    names = sorted({avro_name(t) for t in tables})
    backend = backend_for(url)
    errors: list[str] = []
    try:
        columns = _columns(backend, names)
        try:
            parts = backend.execute(
                "SELECT table, sum(rows), sum(bytes_on_disk), toUnixTimestamp(max(modification_time)) FROM system.parts "
                f"WHERE active AND database = currentDatabase() AND table IN ({_quoted(names)}) GROUP BY table"
            )
        except BackendError as exc:
            parts, _ = [], errors.append(f"system.parts: {str(exc)[:200]}")
    finally:
        backend.close()
    by_table: dict[str, list[FieldInfo]] = {}
    for table, name, type_, position, comment, in_key, default in columns:
        by_table.setdefault(table, []).append(
            FieldInfo(
                name=name,
                type=type_,
                position=int(position),
                nullable=type_.startswith("Nullable("),
                key=bool(in_key),
                default=default or None,
                comment=comment or None,
            )
        )
    stats = {p[0]: {"rows": int(p[1]), "bytes": int(p[2]), "last_change": int(p[3])} for p in parts}
    datasets = []
    for table in names:
        if table not in by_table:
            errors.append(f"{database}.{table}: no such table yet (the sink creates it with its first rows)")
            continue
        key = [f.name for f in by_table[table] if f.key]
        datasets.append(
            DatasetInfo(
                urn=dataset_urn(namespace, f"{database}.{table}"),
                name=f"{database}.{table}",
                kind="sink_table",
                fields=by_table[table],
                properties={"primary_key": key or None, "kind_detail": "ReplacingMergeTree", **stats.get(table, {})},
            )
        )
    system = SystemInfo(
        urn=system_urn(namespace, database),
        name=f"clickhouse {database}",
        kind="clickhouse",
        properties={"namespace": namespace, "database": database},
    )
    return Harvest(system=system, datasets=datasets, errors=errors)
