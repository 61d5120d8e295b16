"""What a relational source captures: tables by include/exclude patterns, columns, custom SELECTs.

Shared by the snapshot, trigger and diff modes. Tables are matched with fnmatch on
`schema.table` (the schema is the PostgreSQL namespace, the MariaDB database, SQLite's `main`);
columns on `schema.table.column`, or on the bare column name when the pattern has no dot.
Key columns are always kept: events are keyed and chunked by them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy.types as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import column, inspect, select, text
from sqlalchemy.engine import Engine

from connectors.base import CapturedTable
from connectors.relational.reflect import reflect_table
from schemas.sqltypes import ColumnSpec


class UnsupportedDatabase(ValueError):
    """A capture mode was configured against a database it cannot serve; the message names the field."""


def dialect_family(engine: Engine) -> str:
    name = engine.dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def require_dialect(engine: Engine, mode: str, supported: tuple[str, ...], field: str = "url") -> str:
    family = dialect_family(engine)
    if family not in supported:
        raise UnsupportedDatabase(
            f"{field}: {mode} mode supports {', '.join(supported)}; the configured database is "
            f"{engine.dialect.name} ({engine.url.render_as_string(hide_password=True)})"
        )
    return family


class TableSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include: list[str] = Field(["*"], description="fnmatch patterns on `schema.table`; a table must match one")
    exclude: list[str] = Field(default_factory=list, description="fnmatch patterns on `schema.table` to leave out")
    schemas: list[str] | None = Field(None, description="schemas/databases to list; default: the connection's own")
    include_columns: list[str] = Field(
        default_factory=list,
        description=("fnmatch patterns on `schema.table.column` (or a bare column name); empty = every column"),
    )
    exclude_columns: list[str] = Field(default_factory=list, description="column patterns to leave out")


_TYPE_NAMES = {
    "int": sa.Integer,
    "integer": sa.Integer,
    "smallint": sa.SmallInteger,
    "bigint": sa.BigInteger,
    "text": sa.Text,
    "string": sa.String,
    "varchar": sa.String,
    "float": sa.Float,
    "double": sa.Float,
    "date": sa.Date,
    "timestamp": sa.DateTime,
    "datetime": sa.DateTime,
    "time": sa.Time,
    "boolean": sa.Boolean,
    "bool": sa.Boolean,
    "bytes": sa.LargeBinary,
    "uuid": sa.Uuid,
}


def parse_type(name: str) -> Any:
    """`numeric(12,2)`, `bigint`, `timestamp`... -> a SQLAlchemy type for a custom SELECT's column."""
    m = re.fullmatch(r"\s*(numeric|decimal)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+))?\s*\))?\s*", name, re.I)
    if m:
        return sa.Numeric(int(m[2]) if m[2] else None, int(m[3]) if m[3] else None)
    try:
        return _TYPE_NAMES[name.strip().lower()]()
    except KeyError:
        raise ValueError(
            f"queries.columns: unknown type {name!r}; use one of numeric(p,s), " + ", ".join(sorted(_TYPE_NAMES))
        ) from None


class QuerySource(BaseModel):
    """A custom SELECT read as if it were a table (snapshot mode)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="name used as the table part of the topic and as the offset partition")
    sql: str = Field(description="the SELECT; it is wrapped as a subquery, so no ORDER BY/LIMIT of its own")
    key: list[str] = Field(min_length=1, description="unique columns of the result; chunks are cut by them")
    columns: dict[str, str] | None = Field(
        None,
        description=(
            "result column -> type (e.g. bigint, numeric(12,2), timestamp); default: guessed from the first rows"
        ),
    )


@dataclass(eq=False)
class SourceUnit:
    """One thing to read: a table or a custom SELECT, with the columns kept and the key."""

    captured: CapturedTable
    source: Any  # a SQLAlchemy Table or subquery
    columns: list[Any]  # selected SQLAlchemy columns
    key: list[Any]  # key columns, in key order

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key_names(self) -> list[str]:
        return [c.name for c in self.key]

    def select(self):
        return select(*self.columns).select_from(self.source).order_by(*self.key)

    def key_values(self, row: dict[str, Any]) -> list[Any]:
        return [row[k] for k in self.key_names]


def _column_wanted(sel: TableSelection, qualified: str, col: str) -> bool:
    def hit(patterns):
        return any(fnmatch.fnmatchcase(f"{qualified}.{col}" if "." in p else col, p) for p in patterns)

    return (not sel.include_columns or hit(sel.include_columns)) and not hit(sel.exclude_columns)


def select_tables(
    engine: Engine,
    sel: TableSelection,
    system: str,
    unknown_types: str = "error",
    skip: tuple[str, ...] = (),
    need_key: str | None = None,
) -> list[SourceUnit]:
    """Reflect the selected tables; `skip` names tables the connector owns (its change log);
    `need_key` names the mode that refuses tables without a primary key."""
    insp = inspect(engine)
    schemas = sel.schemas or [insp.default_schema_name]
    units = []
    for schema in schemas:
        for name in sorted(insp.get_table_names(schema=schema)):
            qualified = f"{schema}.{name}"
            if name in skip or not any(fnmatch.fnmatchcase(qualified, p) for p in sel.include):
                continue
            if any(fnmatch.fnmatchcase(qualified, p) for p in sel.exclude):
                continue
            table, specs = reflect_table(engine, name, schema)
            keys = [s.name for s in specs if s.primary_key]
            if need_key and not keys:
                raise ValueError(
                    f"tables: {qualified} has no primary key; {need_key} mode needs one (exclude it or add a key)"
                )
            kept = [s for s in specs if s.primary_key or _column_wanted(sel, qualified, s.name)]
            captured = CapturedTable(system, name, tuple(kept), engine.url.database, schema, unknown_types)
            units.append(SourceUnit(captured, table, [table.c[s.name] for s in kept], [table.c[k] for k in keys]))
    return units


def _guess_type(values: list[Any]) -> Any:
    import datetime as dt
    import decimal

    sample = next((v for v in values if v is not None), None)
    for py, sql in (
        (bool, sa.Boolean),
        (int, sa.BigInteger),
        (float, sa.Float),
        (decimal.Decimal, sa.Numeric),
        (dt.datetime, sa.DateTime),
        (dt.date, sa.Date),
        (dt.time, sa.Time),
        (bytes, sa.LargeBinary),
    ):
        if isinstance(sample, py):
            return sql(38, 10) if sql is sa.Numeric else sql()
    return sa.String()


def query_unit(engine: Engine, q: QuerySource, system: str, unknown_types: str = "error") -> SourceUnit:
    """A custom SELECT as a source: its columns are declared or guessed from a sample of rows."""
    raw = text(q.sql)
    if q.columns:
        types = {n: parse_type(t) for n, t in q.columns.items()}
    else:
        with engine.connect() as conn:
            result = conn.execute(select(text("*")).select_from(raw.subquery("q")).limit(100))
            names, rows = list(result.keys()), result.all()
        types = {n: _guess_type([r[i] for r in rows]) for i, n in enumerate(names)}
    missing = [k for k in q.key if k not in types]
    if missing:
        raise ValueError(f"queries[{q.name}].key: {missing} are not columns of the query ({list(types)})")
    sub = raw.columns(*[column(n, t) for n, t in types.items()]).subquery(f"q_{q.name}")
    specs = tuple(ColumnSpec(n, t, n not in q.key, n in q.key) for n, t in types.items())
    captured = CapturedTable(system, q.name, specs, engine.url.database, None, unknown_types)
    return SourceUnit(captured, sub, [sub.c[n] for n in types], [sub.c[k] for k in q.key])
