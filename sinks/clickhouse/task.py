"""ClickHouse sink: ReplacingMergeTree tables kept current by key.

Each row carries `_version` (the source's monotonic sequence) so replays and duplicates collapse
under FINAL, and `_deleted` so deletes are applied as tombstones (readers filter `_deleted = 0`).
The table follows the registry schema: a new optional field is added as a Nullable column; a
changed type stops the sink with an error naming topic, field and schema id.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

from schemas.naming import avro_name
from sinks.base import FatalSinkError, SinkError, SinkRecord, SinkTask
from sinks.clickhouse.backend import BackendError, backend_for
from sinks.clickhouse.types import clickhouse_type, is_modern

log = logging.getLogger(__name__)

META_COLUMNS = [("_op", "String"), ("_version", "UInt64"), ("_deleted", "UInt8"), ("_ts_ms", "Int64")]


class ClickHouseSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="clickhouse://user:password@host:port/database, or chdb:///dir for embedded chdb")
    table: str
    key: list[str] | None = Field(None, description="ORDER BY columns; default: the topic's key fields")
    partition_by_date_field: str | None = Field(None, description="a non-null Date/DateTime field: PARTITION BY toYYYYMM")


class ClickHouseSinkTask(SinkTask):
    def __init__(self, config: ClickHouseSinkConfig, schema_of):
        """`schema_of(schema_id) -> dict` returns the registry's envelope schema for an id."""
        self.config = config
        self.schema_of = schema_of
        self.backend = backend_for(config.url)
        self.table = avro_name(config.table)
        self._columns: dict[str, str] | None = None  # name -> type, as the table has them
        self._schema_fields: dict[int, list[tuple[str, str]]] = {}
        self._pending: list[SinkRecord] = []
        self._modern: bool | None = None

    # -- table layout -------------------------------------------------------------------------
    def _execute(self, sql: str) -> list[tuple]:
        try:
            return self.backend.execute(sql)
        except BackendError as exc:
            raise SinkError(f"{self.backend.name} {self.config.table}: {exc}") from exc

    def _is_modern(self) -> bool:
        if self._modern is None:
            self._modern = is_modern(self._execute("SELECT version()")[0][0])
        return self._modern

    def _row_fields(self, schema_id: int) -> list[tuple[str, str]]:
        if schema_id not in self._schema_fields:
            envelope = self.schema_of(schema_id)
            # The row record is defined inline in `before`; `after` refers to it by name.
            before = next(f for f in envelope["fields"] if f["name"] == "before")
            row = next(b for b in before["type"] if isinstance(b, dict))
            modern = self._is_modern()
            self._schema_fields[schema_id] = [(f["name"], clickhouse_type(f["type"], modern)) for f in row["fields"]]
        return self._schema_fields[schema_id]

    def _table_columns(self) -> dict[str, str]:
        if self._columns is None:
            # self.table went through avro_name ([A-Za-z0-9_] only), so it is safe to inline
            rows = self._execute("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                                 f"AND table = '{self.table}'")
            self._columns = dict(rows)
        return self._columns

    def _ensure_table(self, record: SinkRecord) -> list[tuple[str, str]]:
        fields = self._row_fields(record.schema_id)
        existing = self._table_columns()
        if not existing:
            key = self.config.key or list((record.key or {}).keys())
            if not key:
                raise FatalSinkError(f"topic {record.topic}: no key fields; set `key` on the ClickHouse sink")
            cols = ", ".join(f"`{n}` {t}" for n, t in fields + META_COLUMNS)
            partition = f"PARTITION BY toYYYYMM(`{self.config.partition_by_date_field}`) " if self.config.partition_by_date_field else ""
            order = ", ".join(f"`{k}`" for k in key)
            self._execute(f"CREATE TABLE IF NOT EXISTS `{self.table}` ({cols}) "
                          f"ENGINE = ReplacingMergeTree(_version) {partition}ORDER BY ({order})")
            self._columns = None
            return fields
        for name, ch_type in fields:
            have = existing.get(name)
            if have is None:
                if not ch_type.startswith("Nullable("):
                    raise FatalSinkError(f"topic {record.topic}: schema id {record.schema_id} adds required field "
                                         f"{name!r}; only optional (nullable) fields can be added to {self.table}")
                self._execute(f"ALTER TABLE `{self.table}` ADD COLUMN `{name}` {ch_type}")
                self._columns = None
            elif have != ch_type:
                raise FatalSinkError(f"topic {record.topic}: field {name!r} is {ch_type} in schema id "
                                     f"{record.schema_id} but {have} in ClickHouse table {self.table}")
        return fields

    # -- writes -------------------------------------------------------------------------------
    def put(self, records: list[SinkRecord]) -> None:
        self._pending.extend(records)

    def flush(self) -> None:
        if not self._pending:
            return
        by_schema: dict[int, list[SinkRecord]] = {}
        for rec in self._pending:
            by_schema.setdefault(rec.schema_id, []).append(rec)
        for schema_id, records in by_schema.items():
            fields = self._ensure_table(records[0])
            names = [n for n, _ in fields]
            columns = [[] for _ in names] + [[] for _ in META_COLUMNS]
            for rec in records:
                row = rec.row or {}
                for i, name in enumerate(names):
                    columns[i].append(_to_clickhouse(row.get(name)))
                base = len(names)
                columns[base].append(rec.op)
                columns[base + 1].append(rec.value["source"]["sequence"])
                columns[base + 2].append(1 if rec.op == "d" else 0)
                columns[base + 3].append(rec.value["ts_ms"])
            try:
                self.backend.insert_columns(self.table, names + [m for m, _ in META_COLUMNS], columns)
            except BackendError as exc:
                raise SinkError(f"{self.backend.name} {self.config.table}: {exc}") from exc
        self._pending.clear()

    def close(self) -> None:
        self.backend.close()


def _to_clickhouse(value):
    # clickhouse-driver writes aware datetimes by their instant; naive ones as server-local time.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    if isinstance(value, uuid.UUID):  # mapped to String so 18.16 and newer servers agree
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
