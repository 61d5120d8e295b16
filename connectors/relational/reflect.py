"""Table reflection through SQLAlchemy: columns, types and primary key as ColumnSpecs."""

from __future__ import annotations

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Engine

from schemas.sqltypes import ColumnSpec


class TableNotFound(LookupError):
    pass


def reflect_table(engine: Engine, table: str, schema: str | None = None) -> tuple[Table, list[ColumnSpec]]:
    metadata = MetaData()
    try:
        t = Table(table, metadata, schema=schema, autoload_with=engine)
    except Exception as exc:
        raise TableNotFound(f"table {schema + '.' if schema else ''}{table} not found: {exc}") from exc
    specs = [ColumnSpec(c.name, c.type, bool(c.nullable), bool(c.primary_key)) for c in t.columns]
    return t, specs
