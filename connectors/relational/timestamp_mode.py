"""Timestamp / monotonic-column increments (AGG-02, mode 2).

Rows are read in (update column, primary key) order past the stored offset. The key is part of
the offset so several rows sharing the boundary timestamp are never skipped; rows newer than
`now - safety_lag` wait for the next poll so a transaction committing late with an earlier
timestamp is still seen. The first pass is the snapshot (op `r`); later rows are upserts (op
`u`): this mode cannot tell inserts from updates, nor see deletes (use trigger, diff or log CDC).
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, create_engine, or_, select

from connectors.relational.reflect import reflect_table
from deploy.control import OffsetStore
from deploy.kafka import AckedProducer, ensure_topics
from schemas.envelope import envelope_schema, key_schema, make_event
from schemas.naming import key_subject, topic_name, value_subject
from schemas.serde import WireCodec

log = logging.getLogger(__name__)


class TimestampSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="connector name; offsets are stored under it")
    url: str = Field(description="SQLAlchemy URL of the source database")
    system: str = Field(description="source system name, second part of the topic name")
    table: str
    db_schema: str | None = Field(None, description="database schema (PostgreSQL namespace)")
    timestamp_column: str
    safety_lag_seconds: float = Field(0.0, ge=0)
    batch_size: int = Field(5000, gt=0)
    topic_prefix: str = "huiliu"
    partitions: int = Field(1, gt=0)
    unknown_types: str = Field("error", pattern="^(error|string)$")


def _to_micros(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day).timestamp() * 1_000_000)
    return int(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _from_json(value: Any, like: Any) -> Any:
    if isinstance(value, str) and isinstance(like, type) and issubclass(like, datetime):
        return datetime.fromisoformat(value)
    return value


class TimestampSourceTask:
    def __init__(self, config: TimestampSourceConfig, bootstrap: str, codec: WireCodec, control_db_url: str,
                 counters=None):
        self.config = config
        self.engine = create_engine(config.url, future=True, pool_pre_ping=True)
        self.table, self.columns = reflect_table(self.engine, config.table, config.db_schema)
        if config.timestamp_column not in self.table.c:
            raise ValueError(f"timestamp_column {config.timestamp_column!r} is not a column of {config.table}")
        self.key_columns = [c.name for c in self.columns if c.primary_key]
        if not self.key_columns:
            raise ValueError(f"table {config.table} has no primary key; timestamp mode needs one to order ties")
        self.topic = topic_name(config.topic_prefix, config.system, config.db_schema, config.table)
        self.codec = codec
        self.value_id = codec.register(value_subject(self.topic), envelope_schema(
            config.system, config.db_schema, config.table, self.columns, config.unknown_types))
        self.key_id = codec.register(key_subject(self.topic), key_schema(
            config.system, config.db_schema, config.table, self.columns, config.unknown_types))
        ensure_topics(bootstrap, [self.topic], config.partitions)
        self.producer = AckedProducer(bootstrap)
        self.offsets = OffsetStore(control_db_url, config.name)
        self.partition_key = f"{config.db_schema or ''}.{config.table}"
        self.counters = counters

    def _query(self, offset: dict | None):
        ts = self.table.c[self.config.timestamp_column]
        keys = [self.table.c[k] for k in self.key_columns]
        stmt = select(self.table).order_by(ts, *keys).limit(self.config.batch_size)
        if self.config.safety_lag_seconds:
            stmt = stmt.where(ts <= datetime.now() - timedelta(seconds=self.config.safety_lag_seconds))
        if offset and offset.get("ts") is not None:
            last_ts = _from_json(offset["ts"], ts.type.python_type if hasattr(ts.type, "python_type") else None)
            last_key = offset["key"]
            # (ts, k1, k2...) > (last_ts, last_k1, ...) written out, so every dialect can run it
            ties = [ts > last_ts]
            for i in range(len(keys)):
                ties.append(and_(ts == last_ts, *[keys[j] == last_key[j] for j in range(i)], keys[i] > last_key[i]))
            stmt = stmt.where(or_(*ties))
        return stmt

    def poll_once(self) -> int:
        """Read one batch past the offset, publish it, and store the offset once acknowledged."""
        offset = self.offsets.load(self.partition_key)
        snapshot = not (offset and offset.get("snapshot_done"))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(self._query(offset))]
        if not rows:
            if snapshot:
                self.offsets.save(self.partition_key, {**(offset or {"ts": None, "key": None}), "snapshot_done": True})
            return 0
        now_ms = int(time.time() * 1000)
        for row in rows:
            position = {"ts": _jsonable(row[self.config.timestamp_column]),
                        "key": [_jsonable(row[k]) for k in self.key_columns]}
            source = {"system": self.config.system, "database": self.engine.url.database, "schema": self.config.db_schema,
                      "table": self.config.table, "connector": self.config.name,
                      "position": json.dumps(position), "sequence": _to_micros(row[self.config.timestamp_column]),
                      "snapshot": snapshot}
            event = make_event("r" if snapshot else "u", None, row, now_ms, source)
            key = self.codec.encode(self.key_id, {k: row[k] for k in self.key_columns})
            self.producer.produce(self.topic, self.codec.encode(self.value_id, event), key)
        self.producer.flush_acked()
        last = rows[-1]
        # snapshot_done flips only on an empty poll: the snapshot is over once it caught up
        new_offset = {"ts": _jsonable(last[self.config.timestamp_column]),
                      "key": [_jsonable(last[k]) for k in self.key_columns],
                      "snapshot_done": not snapshot}
        self.offsets.save(self.partition_key, new_offset)
        if self.counters:
            self.counters.add("source", {"read": len(rows)})
        return len(rows)

    def drain(self) -> int:
        """Poll until no row is left past the offset; returns how many rows were published."""
        total = 0
        while (n := self.poll_once()):
            total += n
        return total

    def run(self, stop, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            if not self.poll_once():
                stop.wait(idle_seconds)
