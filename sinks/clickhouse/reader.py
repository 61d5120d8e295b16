"""Reading the sink's tables back, for data services: bounded, parameterised, current rows only.

    columns = table_columns(client, table)           # {name: ClickHouse type}; {} when there is no such table
    rows = read_rows(client, table, columns, select=[...], where=[(field, "eq"|"in"|"gte"|"lte", value)],
                     order_by=[...], limit=50, offset=0, timeout_s=10, max_rows=1000)

The tables are the ones sinks/clickhouse/task.py writes: ReplacingMergeTree kept current by key,
`_deleted` tombstones. A read is `FINAL` (so the current version of a row is returned, not every
version written) and skips tombstones. Identifiers are checked against `system.columns` and quoted;
every value travels as a clickhouse-driver parameter, never inside the SQL text. Each query carries
`max_execution_time`, `max_result_rows` and `readonly`, so a caller cannot make it unbounded.
"""

from __future__ import annotations

import re
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_OPS = {"eq": "=", "gte": ">=", "lte": "<="}
FINAL_ENGINES = ("Replacing", "Collapsing", "VersionedCollapsing", "Aggregating", "Summing")


def identifier(name: str) -> str:
    if not _IDENT.match(name or ""):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def table_columns(client, table: str) -> dict[str, str]:
    rows = client.execute(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = %(t)s",
        {"t": table},
    )
    return {name: type_ for name, type_ in rows}


def table_engine(client, table: str) -> str:
    rows = client.execute(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = %(t)s", {"t": table}
    )
    return rows[0][0] if rows else ""


def coerce(type_: str, value: Any) -> Any:
    """A filter value (text from a query string) as the column's Python type; ValueError when it is not one."""
    base = type_.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    if isinstance(value, str) and (base.startswith("Int") or base.startswith("UInt")):
        return int(value)
    if isinstance(value, str) and (base.startswith("Float") or base.startswith("Decimal")):
        return float(value)
    return value


def read_rows(
    client,
    table: str,
    columns: dict[str, str],
    select: list[str],
    where: list[tuple[str, str, Any]],
    order_by: list[str],
    limit: int,
    offset: int,
    timeout_s: int = 10,
    max_rows: int = 1000,
    engine: str | None = None,
) -> list[dict[str, Any]]:
    for name in [*select, *(w[0] for w in where), *order_by]:
        if name not in columns:
            raise ValueError(f"table {table!r} has no column {name!r}")
    engine = table_engine(client, table) if engine is None else engine
    final = " FINAL" if any(e in engine for e in FINAL_ENGINES) else ""
    clauses, params = [], {}
    if "_deleted" in columns:
        clauses.append("`_deleted` = 0")
    for n, (field, op, value) in enumerate(where):
        p = f"p{n}"
        if op == "in":
            clauses.append(f"{identifier(field)} IN %({p})s")
            params[p] = tuple(value)
        else:
            clauses.append(f"{identifier(field)} {_OPS[op]} %({p})s")
            params[p] = value
    params["limit"], params["offset"] = min(int(limit), max_rows), int(offset)
    sql = (
        f"SELECT {', '.join(identifier(c) for c in select)} FROM {identifier(table)}{final}"
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        + (f" ORDER BY {', '.join(identifier(c) for c in order_by)}" if order_by else "")
        + " LIMIT %(offset)s, %(limit)s"
    )
    settings = {
        "max_execution_time": int(timeout_s),
        "max_result_rows": int(max_rows),
        "result_overflow_mode": "break",
        "readonly": 2,
    }
    rows = client.execute(sql, params, settings=settings)
    return [dict(zip(select, row)) for row in rows]
