"""Where the ClickHouse sink sends SQL: a server over the native protocol (clickhouse-driver) or
the embedded chdb engine in this process (`chdb:///path/to/dir`), behind one small interface."""

from __future__ import annotations

import threading
from typing import Any, Protocol
from urllib.parse import urlparse

import polars as pl
from clickhouse_driver.errors import Error as ClickHouseError
from clickhouse_driver.errors import ServerException

from deploy.clickhouse import client_from_url  # noqa: F401 - part of this module's interface (sinks.clickhouse)
from schemas.optional import optional_import
from sinks.clickhouse.columns import python_values
from sinks.clickhouse.native import insert_block


class BackendError(Exception):
    """The store did not take the statement (down, timeout, refused)."""


class StatementRefused(BackendError):
    """The server answered and refused the statement itself (bad DDL, unsupported on this version):
    sending it again cannot succeed. `code` is ClickHouse's error code."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


# Server error codes that are about the server's state, not the statement: worth retrying.
RETRYABLE_CODES = {159, 160, 202, 203, 209, 210, 241, 242, 252, 319, 425, 473}  # timeouts, limits, readonly...


class ClickHouseBackend(Protocol):
    name: str

    def execute(self, sql: str) -> list[tuple]: ...

    def insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None: ...

    def insert_frame(self, table: str, columns: list[tuple[str, str, pl.Series]]) -> None:
        """Insert (column, type, values) columns; `type` is what the schema maps the values to."""

    def close(self) -> None: ...


class NativeBackend:
    name = "ClickHouse"

    def __init__(self, url: str):
        self.client = client_from_url(url)

    def execute(self, sql: str) -> list[tuple]:
        try:
            return self.client.execute(sql)
        except ServerException as exc:  # the server answered: the statement itself was refused
            self.client.disconnect()
            message = str(exc).split("Stack trace")[0].strip()
            if exc.code in RETRYABLE_CODES:
                raise BackendError(message) from exc
            raise StatementRefused(message, exc.code) from exc
        except (ClickHouseError, OSError, EOFError) as exc:
            self.client.disconnect()  # a half-read socket must not be reused
            raise BackendError(str(exc).split("Stack trace")[0].strip()) from exc

    def insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        col_list = ", ".join(f"`{n}`" for n in names)
        try:
            self.client.execute(f"INSERT INTO `{table}` ({col_list}) VALUES", columns, columnar=True)
        except (ClickHouseError, OSError, EOFError) as exc:
            self.client.disconnect()
            raise BackendError(str(exc).split("Stack trace")[0].strip()) from exc

    def insert_frame(self, table: str, columns: list[tuple[str, str, pl.Series]]) -> None:
        """Written as the server's block layout from the columns' buffers (sinks.clickhouse.native),
        against the types the server announces for the insert."""
        try:
            insert_block(self.client, table, [(name, values) for name, _, values in columns], python_values)
        except (ClickHouseError, OSError, EOFError) as exc:
            self.client.disconnect()
            raise BackendError(str(exc).split("Stack trace")[0].strip()) from exc

    def close(self) -> None:
        self.client.disconnect()


_chdb_sessions: dict[str, Any] = {}
_chdb_lock = threading.Lock()


class ChdbBackend:
    """Embedded ClickHouse (chdb): one session per data directory per process, shared."""

    name = "chdb"

    def __init__(self, url: str):
        # imported here: only chdb users pay for loading the engine
        session = optional_import("chdb.session", extra="stack")

        path = urlparse(url).path or ":memory:"
        with _chdb_lock:
            if path not in _chdb_sessions:
                _chdb_sessions[path] = session.Session(path)
        self.session = _chdb_sessions[path]

    def execute(self, sql: str) -> list[tuple]:
        try:
            result = self.session.query(sql, "ArrowTable")
        except Exception as exc:  # chdb raises plain runtime errors
            raise BackendError(str(exc)) from exc
        if result is None or not hasattr(result, "to_pylist"):
            return []
        return [tuple(row.values()) for row in result.to_pylist()]

    def insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        import pyarrow as pa

        batch = pa.table({n: pa.array(c) for n, c in zip(names, columns)})  # noqa: F841 - read by Python(batch)
        col_list = ", ".join(f"`{n}`" for n in names)
        try:
            self.session.query(f"INSERT INTO `{table}` ({col_list}) SELECT * FROM Python(batch)")
        except Exception as exc:
            raise BackendError(str(exc)) from exc

    def insert_frame(self, table: str, columns: list[tuple[str, str, pl.Series]]) -> None:
        self.insert_columns(table, [n for n, _, _ in columns], [python_values(v, t) for _, t, v in columns])

    def close(self) -> None:
        """The session is shared by the process; it stays open."""


def backend_for(url: str) -> ClickHouseBackend:
    scheme = urlparse(url).scheme
    if scheme == "chdb":
        return ChdbBackend(url)
    if scheme in ("clickhouse", "clickhouses"):
        return NativeBackend(url)
    raise ValueError(f"url: unknown scheme {scheme!r}; use clickhouse://host:port/db or chdb:///path")
