"""Snapshot (batch) reads of relational tables and custom SELECTs (AGG-01).

Each poll returns one chunk of one table, cut by keyset pagination on the primary key
(`WHERE key > last ORDER BY key LIMIT chunk_size`), so a chunk costs one index range scan however
deep into the table it is. The offset of a table is the last key of its last finished chunk: a
restart resumes after it and never re-reads a finished chunk (the chunk in flight when it stopped
is read again: at least once).

Consistency: every chunk of every table is read in one transaction that sees one snapshot —
PostgreSQL REPEATABLE READ (read only), MariaDB/MySQL `START TRANSACTION WITH CONSISTENT
SNAPSHOT`, SQLite one read transaction (in rollback-journal mode it blocks writers meanwhile; WAL
does not). A resumed snapshot opens a new transaction, so rows changed between the stop and the
restart are read in their newer state. Other SQLAlchemy dialects (Oracle, SQL Server, DB2, DM,
KingbaseES...) run with `consistency: none` (each chunk its own statement).

PostgreSQL chunks read through ADBC are read one ahead on a thread (`prefetch.ChunkPrefetch`),
cast to the row's types and given their positions there too, while the runtime encodes and
produces the chunk before; numeric columns come as PostgreSQL's text (`pg_arrow.as_text`). The
task is `pipelined`: a chunk's position is stored once the broker acknowledged it, on the
runtime's acks thread (`connectors.acks`), while the next chunk is already read and encoded.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from sqlalchemy import create_engine

from connectors.base import ChangeEvent, RelationalSourceSettings, RowFrame, SourceBatch, SourceTask
from connectors.columns import frame_of, json_lists, row_type
from connectors.plugins import source_plugin
from connectors.relational import pg_arrow
from connectors.relational.prefetch import ChunkPrefetch
from connectors.relational.rowcodec import from_json, jsonable, keyset_after
from connectors.relational.selection import (
    QuerySource,
    SourceUnit,
    TableSelection,
    dialect_family,
    query_unit,
    require_dialect,
    select_tables,
)

log = logging.getLogger(__name__)
_json = json.JSONEncoder().encode

CONSISTENT_DATABASES = ("postgresql", "mysql", "sqlite")


class SnapshotSourceConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database")
    system: str = Field(description="source system name, second part of the topic name")
    tables: TableSelection | None = Field(
        default_factory=TableSelection,
        description=(
            "tables to read (include/exclude patterns on schema.table, column patterns); null = none, "
            "only the custom queries"
        ),
    )
    queries: list[QuerySource] = Field(default_factory=list, description="custom SELECTs read as tables")
    chunk_size: int = Field(10_000, gt=0, description="rows per chunk (one poll, one stored offset)")
    reader: Literal["auto", "arrow", "rows"] = Field(
        "auto",
        description=(
            "auto = PostgreSQL tables straight into Arrow (ADBC, binary COPY) when the driver is installed, "
            "Python rows otherwise; rows = always through SQLAlchemy"
        ),
    )
    consistency: Literal["snapshot", "none"] = Field(
        "snapshot",
        description=(
            "snapshot = one consistent transaction (postgresql, mysql/mariadb, sqlite); none = any SQLAlchemy "
            "dialect, chunks read independently"
        ),
    )


@source_plugin(
    "relational.snapshot",
    config_model=SnapshotSourceConfig,
    description="snapshot (batch) reads of tables and custom SELECTs, chunked and resumable (AGG-01)",
)
class SnapshotSourceTask(SourceTask):
    pipelined = True  # committed() is the base's no-op: nothing to do on the acks thread

    def __init__(self, config: SnapshotSourceConfig):
        self.config = config
        self.name = config.name
        self.engine = create_engine(config.url, future=True, pool_pre_ping=True)
        self.family = dialect_family(self.engine)
        if config.consistency == "snapshot":
            require_dialect(self.engine, "snapshot (consistency: snapshot)", CONSISTENT_DATABASES, field="consistency")
        self.units: list[SourceUnit] = []
        if config.tables is not None:
            self.units += select_tables(
                self.engine, config.tables, config.system, config.unknown_types, need_key="snapshot"
            )
        self.units += [query_unit(self.engine, q, config.system, config.unknown_types) for q in config.queries]
        if not self.units:
            raise ValueError("tables/queries: the selection matches no table and no query is given")
        self.progress: dict[str, dict[str, Any]] = {}
        self._conn = None
        self.arrow: pg_arrow.PgArrowReader | None = None
        if self.family == "postgresql" and config.reader != "rows" and pg_arrow.available():
            self.arrow = pg_arrow.PgArrowReader(config.url, snapshot=config.consistency == "snapshot")
        self._rows_only: set[str] = set()  # units whose columns did not convert to Arrow
        self._prefetch: tuple[SourceUnit, ChunkPrefetch] | None = None  # the unit whose chunks are read ahead

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self._stop_prefetch()
        self.progress = {u.captured.partition: dict(offsets.get(u.captured.partition) or {}) for u in self.units}

    def _connection(self):
        """The one connection (and transaction) every chunk is read through."""
        if self._conn is None:
            conn = self.engine.connect()
            if self.config.consistency == "snapshot":
                if self.family == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                    if self.arrow is not None:  # the same snapshot as the Arrow reader's chunks
                        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self.arrow.exported_snapshot()}'")
                elif self.family == "mysql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                    conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                elif self.family == "sqlite":
                    conn.exec_driver_sql("BEGIN")
            self._conn = conn
        return self._conn

    def _stop_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch[1].close()
            self._prefetch = None

    def _release(self) -> None:
        self._stop_prefetch()
        if self.arrow is not None:
            self.arrow.close()
        if self._conn is not None:
            try:
                self._conn.rollback()
            finally:
                self._conn.close()
                self._conn = None

    def _last_key(self, unit: SourceUnit, offset: dict[str, Any]) -> list[Any] | None:
        stored = offset.get("chunk_last_key")
        if stored is None:
            return None
        return [from_json(col.type, v) for col, v in zip(unit.key, stored)]

    def poll(self) -> SourceBatch:
        unit = next((u for u in self.units if not self.progress[u.captured.partition].get("done")), None)
        if unit is None:
            self._release()  # do not hold a snapshot open once everything is read
            return SourceBatch()
        partition = unit.captured.partition
        offset = self.progress[partition]
        started_us = offset.get("started_us") or int(time.time() * 1_000_000)
        last = self._last_key(unit, offset)
        arrow = self._read_arrow(unit, last)
        if arrow is not None:
            events: list[ChangeEvent] = []
            done, count = arrow.read <= self.config.chunk_size, arrow.rows.num_rows
            chunk_last = arrow.last_key or offset.get("chunk_last_key")
        else:
            result = self._connection().execute(self._chunk_statement(unit, last))
            names = list(result.keys())
            rows = result.all()  # one fetchall, not a fetchone per row
            done = len(rows) <= self.config.chunk_size
            del rows[self.config.chunk_size :]
            count = len(rows)
            key_idx = [names.index(k) for k in unit.key_names]
            chunk_last = [jsonable(rows[-1][i]) for i in key_idx] if rows else offset.get("chunk_last_key")
        now_ms = int(time.time() * 1000)
        if arrow is not None:
            frame = self._arrow_frame(unit, arrow, now_ms, started_us)
        else:
            head = _position_head(chunk_last)
            # One row version per snapshot pass: the pass's start time (kept across a resume).
            frame = self._frame(unit, names, rows, key_idx, head, now_ms, started_us)
            events = (
                []
                if frame is not None
                else [
                    ChangeEvent(unit.captured, "r", None, dict(zip(names, row)), now_ms, position, started_us, True)
                    for row, position in zip(rows, _row_positions(head, rows, key_idx))
                ]
            )
        new_offset = {
            "chunk_last_key": chunk_last,
            "rows": offset.get("rows", 0) + count,
            "started_us": started_us,
            "done": done,
        }
        self.progress[partition] = new_offset
        if done:
            log.info("snapshot of %s finished: %d rows", partition, new_offset["rows"])
        return SourceBatch(events, {partition: dict(new_offset)}, [frame] if frame is not None else [])

    def _chunk_statement(self, unit: SourceUnit, last: list[Any] | None):
        # one row more than a chunk tells whether this is the last chunk, so no empty chunk follows
        stmt = unit.select().limit(self.config.chunk_size + 1)
        return stmt if last is None else stmt.where(keyset_after(unit.key, last))

    def _read_chunk(self, unit: SourceUnit, last: list[Any] | None) -> tuple[ArrowChunk, list[Any] | None]:
        """One chunk through ADBC, in the row's Arrow types, and the key the next one starts after
        (None: this is the last). Runs on the prefetch thread, so the casts and the rows' positions
        are worked out there too, beside the runtime encoding the chunk before."""
        arrow_type = row_type(unit.captured)
        # numeric columns the row wants as decimals (keys excepted: their values cut the chunks)
        as_text = {f.name for f in arrow_type if pa.types.is_decimal(f.type)} - set(unit.key_names)
        table = self.arrow.read(pg_arrow.as_text(self._chunk_statement(unit, last), as_text))
        read, size = table.num_rows, self.config.chunk_size
        names = table.column_names
        following = (
            None
            if read <= size
            else [pg_arrow.python_values(table.column(names.index(k)).slice(size - 1, 1))[0] for k in unit.key_names]
        )
        table = table.slice(0, size)
        keys = [table.column(names.index(k)) for k in unit.key_names]
        count = table.num_rows
        last_key = [jsonable(pg_arrow.python_values(k.slice(count - 1))[0]) for k in keys] if count else None
        rows = pg_arrow.conform(table, names, arrow_type)
        positions = _key_positions(_position_head(last_key), keys) if rows is not None and count else None
        return ArrowChunk(rows, keys, read, last_key, positions), following

    def _prefetched(self, unit: SourceUnit, last: list[Any] | None) -> ArrowChunk:
        """The chunk after `last`, read ahead on the unit's prefetch thread (started here when the
        unit or the position is not the one it read for)."""
        for attempt in range(2):
            if self._prefetch is None or self._prefetch[0] is not unit or attempt:
                self._stop_prefetch()
                reader = ChunkPrefetch(
                    lambda after: self._read_chunk(unit, after), last, name=f"snapshot-{unit.captured.table}"
                )
                self._prefetch = (unit, reader)
            try:
                after, chunk = self._prefetch[1].take()
            except LookupError:  # asked past the table's last chunk: read again from `last`
                continue
            if _same_key(after, last):
                return chunk
        raise RuntimeError(f"snapshot of {unit.captured.partition}: no chunk read after {last!r}")

    def _read_arrow(self, unit: SourceUnit, last: list[Any] | None) -> ArrowChunk | None:
        """The chunk after `last` read through ADBC, or None: then it is read as Python rows (no
        Arrow reader, or columns that do not convert)."""
        partition = unit.captured.partition
        if self.arrow is None or row_type(unit.captured) is None or partition in self._rows_only:
            return None
        chunk = self._prefetched(unit, last)
        if chunk.rows is None:
            log.info("snapshot of %s: columns do not convert to Arrow, reading Python rows", partition)
            self._stop_prefetch()
            self._rows_only.add(partition)
            return None
        return chunk

    @staticmethod
    def _arrow_frame(unit: SourceUnit, chunk: ArrowChunk, now_ms: int, started_us: int) -> RowFrame | None:
        rows = chunk.rows
        if rows.num_rows == 0:
            return None
        # one row version per pass: one dictionary entry, encoded once
        same = pa.array(np.zeros(rows.num_rows, np.int32))
        sequences = pa.DictionaryArray.from_arrays(same, pa.array([started_us], pa.int64()))
        return RowFrame(unit.captured, "r", rows, chunk.positions, sequences, now_ms, True)

    @staticmethod
    def _frame(unit: SourceUnit, names, rows, key_idx, head, now_ms, started_us) -> RowFrame | None:
        """The chunk in columns (see connectors.columns), or None: then one event per row."""
        if not rows:
            return None
        keys = [[row[i] for row in rows] for i in key_idx]
        positions = json_lists(head, keys, "}") or _row_positions(head, rows, key_idx)
        return frame_of(unit.captured, names, rows, positions, started_us, now_ms, snapshot=True)

    @property
    def finished(self) -> bool:
        return all(p.get("done") for p in self.progress.values())

    def close(self) -> None:
        self._release()
        self.engine.dispose()


@dataclass
class ArrowChunk:
    """A chunk read through ADBC: `rows` in the row's Arrow types (None: a column does not
    convert), its key columns, the rows read (one more than the chunk says more follow), the
    chunk's last key as JSON values and each row's position (JSON text)."""

    rows: pa.Table | None
    keys: list[pa.ChunkedArray]
    read: int
    last_key: list[Any] | None
    positions: pa.Array | None


def _position_head(chunk_last: list[Any] | None) -> str:
    """The position as JSON text, the chunk's part encoded once: {"chunk_last_key": ..., "key": [...]}"""
    return '{"chunk_last_key": ' + _json(chunk_last) + ', "key": '


def _same_key(a: list[Any] | None, b: list[Any] | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and list(map(jsonable, a)) == list(map(jsonable, b))
    )


def _key_positions(head: str, keys: list[pa.ChunkedArray]) -> pa.Array:
    """Per row `head + [k1, k2, ...] + "}"`: in Arrow for integer keys, from Python values for others."""
    positions = _integer_positions(head, keys)
    if positions is None:
        values = [pg_arrow.python_values(k) for k in keys]
        positions = pa.array(
            [head + _json([jsonable(k[i]) for k in values]) + "}" for i in range(len(keys[0]))], pa.string()
        )
    return positions


def _integer_positions(head: str, keys: list[pa.ChunkedArray]) -> pa.Array | None:
    """Per row `head + [k1, k2, ...] + "}"` straight from integer key columns (None for other types:
    only integers print the same in Arrow and in JSON)."""
    if not keys or not all(pa.types.is_integer(k.type) and not k.null_count for k in keys):
        return None
    parts: list = [head + "["]
    for i, k in enumerate(keys):
        parts += ([] if i == 0 else [", "]) + [k.combine_chunks().cast(pa.string())]
    return pc.binary_join_element_wise(*parts, "]}", "")


def _row_positions(head: str, rows, key_idx: list[int]) -> list[str]:
    """Each row's position: the chunk's `head` + its key values as a JSON list."""
    return [head + _json([jsonable(row[i]) for i in key_idx]) + "}" for row in rows]
