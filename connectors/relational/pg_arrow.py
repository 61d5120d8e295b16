"""PostgreSQL chunks straight into Arrow: ADBC's PostgreSQL driver (binary COPY protocol into
Arrow arrays), for snapshots. Through SQLAlchemy and psycopg every value became a Python object
first: 36k rows/s of a 12-column table against 132k through ADBC, measured side by side (the
ratio is in tests/benchmarks/bench_capture.py's snapshot figure).

`PgArrowReader` holds one read-only REPEATABLE READ transaction for every chunk it reads and
exports its snapshot, so a connection that reads some chunks another way (SQLAlchemy, for a table
whose columns do not convert) sees the very same data. Statements are SQLAlchemy selects compiled
with numbered parameters ($1, $2): the values travel as parameters, never in the SQL text, except
integers: the driver reads a statement without parameters through `COPY ... TO STDOUT (FORMAT
binary)` and one with parameters row by row, half as fast (1M rows of the benchmark's table in
20k-row keyset chunks: 0.92 s against 1.81 s), and a Python int renders as nothing but digits.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pyarrow as pa
from sqlalchemy import Text, cast
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

_DIALECT = asyncpg.dialect(paramstyle="numeric_dollar")  # only to compile: $1-style SQL, nothing connects


def available() -> bool:
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def libpq_uri(sqlalchemy_url: str) -> str:
    """postgresql+psycopg://u:p@h:5432/db?sslmode=require -> postgresql://u:p@h:5432/db?sslmode=require"""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgArrowReader:
    def __init__(self, sqlalchemy_url: str, snapshot: bool = True):
        self.uri, self.snapshot = libpq_uri(sqlalchemy_url), snapshot
        self._conn = None
        self.snapshot_id: str | None = None
        self._lock = threading.Lock()  # one statement at a time: chunks may be read on a prefetch thread

    def _cursor(self):
        if self._conn is None:
            import adbc_driver_postgresql.dbapi as dbapi

            self._conn = dbapi.connect(self.uri, autocommit=not self.snapshot)
            if self.snapshot:  # the first statement of the driver's transaction sets its kind
                cursor = self._conn.cursor()
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                self.snapshot_id = cursor.fetchone()[0]
                cursor.close()
        return self._conn.cursor()

    def exported_snapshot(self) -> str | None:
        """The id of the transaction's snapshot (`SET TRANSACTION SNAPSHOT` takes it), opening it if need be."""
        with self._lock:
            self._cursor().close()
            return self.snapshot_id

    def read(self, stmt) -> pa.Table:
        """The rows of a SQLAlchemy select as PostgreSQL's own Arrow types (numeric as text)."""
        compiled = stmt.compile(dialect=_DIALECT)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        if params and all(type(v) is int for v in params):  # keyset chunks of integer keys: COPY
            compiled, params = stmt.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}), ()
        with self._lock:
            cursor = self._cursor()
            try:
                cursor.execute(str(compiled), params or None)
                return cursor.fetch_arrow_table()
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback() if self.snapshot else None
            finally:
                self._conn.close()
                self._conn = None
                self.snapshot_id = None


def as_text(stmt, names: set[str]):
    """`stmt` with the selected columns in `names` read as text. For numeric columns the row wants
    as decimals: the driver turns binary numeric into text itself, 0.5-0.6 us a row of CPU for the
    benchmark's one numeric(12,2) column (all 12 columns read in 1.34-1.60 us a row, 0.90-0.95
    with that column as text), where PostgreSQL's own text output costs little; either text
    becomes the same decimal in `conform`."""
    if not names:
        return stmt
    columns = [cast(c, Text).label(c.name) if c.name in names else c for c in stmt.selected_columns]
    return stmt.with_only_columns(*columns, maintain_column_froms=True)


def plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """PostgreSQL types Arrow has no type for arrive as an extension over text (numeric, json, uuid...)."""
    if isinstance(column.type, pa.BaseExtensionType):
        return pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
    return column


def conform(rows: pa.Table, names: list[str], arrow_type: pa.StructType) -> pa.Table | None:
    """`rows` with the columns and types of the table's Avro row, or None when a column does not
    convert exactly (the chunk is then read as Python rows and each row decided on its own)."""
    index = {n: i for i, n in enumerate(names)}
    arrays = []
    try:
        for field in arrow_type:
            column = plain(rows.column(index[field.name]))
            arrays.append(column if column.type == field.type else column.cast(field.type, safe=True))
    except (KeyError, pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        log.debug("chunk not read as Arrow: %s", exc)
        return None
    return pa.Table.from_arrays(arrays, schema=pa.schema(list(arrow_type)))


def python_values(column: pa.ChunkedArray) -> list:
    """A (key) column as the Python values SQLAlchemy would have given, numeric as Decimal."""
    values = plain(column).to_pylist()
    if isinstance(column.type, pa.BaseExtensionType) and column.type.extension_name == "arrow.opaque":
        if getattr(column.type, "type_name", "") == "numeric":
            return [None if v is None else Decimal(v) for v in values]
    return values
