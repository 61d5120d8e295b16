"""Timestamp / monotonic-column increments (AGG-02, mode 2).

Rows are read in (update column, primary key) order past the stored offset. The key is part of
the offset so several rows sharing the boundary timestamp are never skipped; rows newer than
`now - safety_lag` wait for the next poll so a transaction committing late with an earlier
timestamp is still seen. The first pass is the snapshot (op `r`); later rows are upserts (op
`u`): this mode cannot tell inserts from updates, nor see deletes (use trigger, diff or log CDC).
Schema change (issue 15): the table is reflected again before a poll at most every
`schema_check_seconds`; a change is followed or holds the capture (connectors.schema_changes)
before any row is read with the new layout, so the offset never passes an unread row.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import and_, create_engine, or_, select

from connectors.base import CapturedTable, ChangeEvent, RelationalSourceSettings, SourceBatch, SourceTask
from connectors.relational.reflect import reflect_table
from connectors.schema_changes import Evolution

log = logging.getLogger(__name__)


class TimestampSourceConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database")
    system: str = Field(description="source system name, second part of the topic name")
    table: str
    db_schema: str | None = Field(None, description="database schema (PostgreSQL namespace)")
    timestamp_column: str
    safety_lag_seconds: float = Field(0.0, ge=0)
    batch_size: int = Field(5000, gt=0)
    schema_check_seconds: float = Field(5.0, ge=0, description="how often the table is reflected for schema changes")


def to_micros(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day).timestamp() * 1_000_000)
    return int(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class TimestampSourceTask(SourceTask):
    def __init__(self, config: TimestampSourceConfig):
        self.config = config
        self.name = config.name
        self.engine = create_engine(config.url, future=True, pool_pre_ping=True)
        self.table, columns = reflect_table(self.engine, config.table, config.db_schema)
        if config.timestamp_column not in self.table.c:
            raise ValueError(f"timestamp_column {config.timestamp_column!r} is not a column of {config.table}")
        self.captured = CapturedTable(
            config.system,
            config.table,
            tuple(columns),
            self.engine.url.database,
            config.db_schema,
            config.unknown_types,
        )
        self.key_columns = self.captured.key_columns
        if not self.key_columns:
            raise ValueError(f"table {config.table} has no primary key; timestamp mode needs one to order ties")
        self.offset: dict[str, Any] = {}
        self.evolution = Evolution(config.name, config.url)
        self._checked = time.monotonic()

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.offset = dict(offsets.get(self.captured.partition) or {})
        self.evolution.resume(self.captured)  # a held schema change keeps the capture stopped

    def _check_schema(self) -> None:
        """Reflect the table again; follow a change, or stop (SchemaChangeHeld) before reading with it."""
        if time.monotonic() - self._checked < self.config.schema_check_seconds:
            return
        table, columns = reflect_table(self.engine, self.config.table, self.config.db_schema)
        self._checked = time.monotonic()
        old = self.captured
        new = CapturedTable(old.system, old.table, tuple(columns), old.database, old.schema, old.unknown_types)
        followed = self.evolution.apply(old, new)
        if followed is not old:
            self.table, self.captured = table, followed

    def _query(self):
        ts = self.table.c[self.config.timestamp_column]
        keys = [self.table.c[k] for k in self.key_columns]
        stmt = select(self.table).order_by(ts, *keys).limit(self.config.batch_size)
        if self.config.safety_lag_seconds:
            stmt = stmt.where(ts <= datetime.now() - timedelta(seconds=self.config.safety_lag_seconds))
        if self.offset.get("ts") is not None:
            last_ts = self.offset["ts"]
            if ts.type.python_type is datetime:
                last_ts = datetime.fromisoformat(last_ts)
            last_key = self.offset["key"]
            # (ts, k1, k2...) > (last_ts, last_k1, ...) written out, so every dialect can run it
            ties = [ts > last_ts]
            for i in range(len(keys)):
                ties.append(and_(ts == last_ts, *[keys[j] == last_key[j] for j in range(i)], keys[i] > last_key[i]))
            stmt = stmt.where(or_(*ties))
        return stmt

    def poll(self) -> SourceBatch:
        self._check_schema()
        snapshot = not self.offset.get("snapshot_done")
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(self._query())]
        partition = self.captured.partition
        if not rows:
            if snapshot:  # the snapshot is over once a poll finds nothing more
                self.offset = {"ts": self.offset.get("ts"), "key": self.offset.get("key"), "snapshot_done": True}
                return SourceBatch([], {partition: dict(self.offset)})
            return SourceBatch()
        now_ms = int(time.time() * 1000)
        events = []
        for row in rows:
            ts_value = row[self.config.timestamp_column]
            position = {"ts": jsonable(ts_value), "key": [jsonable(row[k]) for k in self.key_columns]}
            events.append(
                ChangeEvent(
                    self.captured, "r" if snapshot else "u", None, row, now_ms, position, to_micros(ts_value), snapshot
                )
            )
        self.offset = {**events[-1].position, "snapshot_done": not snapshot}
        return SourceBatch(events, {partition: dict(self.offset)})

    def close(self) -> None:
        self.engine.dispose()
