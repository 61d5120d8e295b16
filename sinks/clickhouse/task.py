"""ClickHouse sink: ReplacingMergeTree tables kept current by key.

Each row carries `_version` (the source's monotonic sequence) so replays and duplicates collapse
under FINAL, and `_deleted` so deletes are applied as tombstones (readers filter `_deleted = 0`).
The table follows the registry schema: a new optional field is added as a Nullable column; a
widened type (sinks.clickhouse.evolve) changes the column (MODIFY COLUMN) and rows of the older,
narrower schema still go in; any other changed type stops the sink with an error naming topic,
field and schema id.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from schemas.naming import ORIGINAL_NAME, avro_name
from sinks.base import FatalSinkError, SinkError, SinkFrame, SinkTask
from sinks.clickhouse.backend import BackendError, StatementRefused, backend_for
from sinks.clickhouse.columns import META_COLUMNS, frame_series
from sinks.clickhouse.evolve import holds
from sinks.clickhouse.types import clickhouse_type, is_modern

log = logging.getLogger(__name__)


class ClickHouseSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="clickhouse://user:password@host:port/database, or chdb:///dir for embedded chdb")
    table: str
    key: list[str] | None = Field(None, description="ORDER BY columns; default: the topic's key fields")
    partition_by_date_field: str | None = Field(
        None, description="a non-null Date/DateTime field: PARTITION BY toYYYYMM"
    )


class ClickHouseSinkTask(SinkTask):
    columnar = True  # batches arrive decoded as frames and are inserted column by column
    frame_positions = False  # the table keeps _version from the envelope, not Kafka positions
    # What frame_series reads: the row images, op, ts_ms and the version (source.sequence). The
    # source's six strings and the transaction are parsed and skipped: decoding a batch took
    # 1.2 us a record, 0.7 with these (bench_clickhouse_sink's envelope, schemas.avro_columns).
    frame_columns = ["before", "after", "op", "ts_ms", "source.sequence"]
    # ClickHouse wants few large inserts: each makes a part to merge (5,000-row batches cost the
    # server 2.4 us of CPU a row, 0.8 at 50,000: bench_clickhouse_sink). 20,000 keeps a batch in
    # flight small enough for the sink to stay under 400 MB while catching up (bench_overload:
    # 362 MB, 472 at 50,000); a batch still closes after a second, so a quiet topic waits no longer.
    batch_bounds = (20_000, 1.0)

    def __init__(self, config: ClickHouseSinkConfig, schema_of):
        """`schema_of(schema_id) -> dict` returns the registry's envelope schema for an id."""
        self.config = config
        self.schema_of = schema_of
        self.backend = backend_for(config.url)
        self.table = avro_name(config.table)
        self._columns: dict[str, str] | None = None  # name -> type, as the table has them
        self._schema_fields: dict[int, list[tuple[str, str]]] = {}
        self._comments: dict[str, str] = {}  # field -> its source name, when it was renamed (schemas.naming)
        self._pending: list[SinkFrame] = []
        self._modern: bool | None = None

    # -- table layout -------------------------------------------------------------------------
    def _execute(self, sql: str, ddl: bool = False) -> list[tuple]:
        """A DDL statement the server refuses fails the sink at once (retrying sends the same
        statement again); anything else, and any connection trouble, is retried."""
        try:
            return self.backend.execute(sql)
        except StatementRefused as exc:
            if ddl:
                raise FatalSinkError(f"{self.backend.name} refused to change table {self.config.table}: {exc}") from exc
            raise SinkError(f"{self.backend.name} {self.config.table}: {exc}") from exc
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
            self._comments.update({f["name"]: f[ORIGINAL_NAME] for f in row["fields"] if f.get(ORIGINAL_NAME)})
        return self._schema_fields[schema_id]

    def _comment(self, field: str) -> str:
        """` COMMENT '<source name>'` for a field renamed from a Chinese (or otherwise invalid) name."""
        original = self._comments.get(field)
        if not original:
            return ""
        return " COMMENT '" + original.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def _table_columns(self) -> dict[str, str]:
        if self._columns is None:
            # self.table went through avro_name ([A-Za-z0-9_] only), so it is safe to inline
            rows = self._execute(
                f"SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '{self.table}'"
            )
            self._columns = dict(rows)
        return self._columns

    def _ensure_table(self, batch: SinkFrame) -> list[tuple[str, str]]:
        fields = self._row_fields(batch.schema_id)
        existing = self._table_columns()
        if not existing:
            key = self.config.key or list((batch.key or {}).keys())
            if not key:
                raise FatalSinkError(f"topic {batch.topic}: no key fields; set `key` on the ClickHouse sink")
            types = dict(fields)
            nullable = [k for k in key if types.get(k, "").startswith("Nullable(")]
            if nullable:
                raise FatalSinkError(
                    f"topic {batch.topic}: key column(s) {nullable} are nullable in schema id {batch.schema_id}; "
                    "ClickHouse cannot order a table by nullable columns: declare them required at the source "
                    "(a key column, or nullable: false) or choose non-nullable `key` fields for this sink"
                )
            cols = ", ".join(f"`{n}` {t}{self._comment(n)}" for n, t in fields + META_COLUMNS)
            partition = (
                f"PARTITION BY toYYYYMM(`{self.config.partition_by_date_field}`) "
                if self.config.partition_by_date_field
                else ""
            )
            order = ", ".join(f"`{k}`" for k in key)
            self._execute(
                f"CREATE TABLE IF NOT EXISTS `{self.table}` ({cols}) "
                f"ENGINE = ReplacingMergeTree(_version) {partition}ORDER BY ({order})",
                ddl=True,
            )
            self._columns = None
            return fields
        for name, ch_type in fields:
            have = existing.get(name)
            if have is None:
                if not ch_type.startswith("Nullable("):
                    raise FatalSinkError(
                        f"topic {batch.topic}: schema id {batch.schema_id} adds required field "
                        f"{name!r}; only optional (nullable) fields can be added to {self.table}"
                    )
                self._execute(
                    f"ALTER TABLE `{self.table}` ADD COLUMN `{name}` {ch_type}{self._comment(name)}", ddl=True
                )
                self._columns = None
            elif have == ch_type or holds(have, ch_type):
                continue  # the same, or a row of an older, narrower schema: it fits
            elif holds(ch_type, have):  # the source widened the column
                self._execute(f"ALTER TABLE `{self.table}` MODIFY COLUMN `{name}` {ch_type}", ddl=True)
                self._columns = None
            else:
                raise FatalSinkError(
                    f"topic {batch.topic}: field {name!r} is {ch_type} in schema id "
                    f"{batch.schema_id} but {have} in ClickHouse table {self.table}"
                )
        return fields

    # -- writes -------------------------------------------------------------------------------
    def put_frames(self, frames: list[SinkFrame]) -> None:
        self._pending.extend(frames)

    def flush(self) -> None:
        for batch in self._pending:
            fields = self._ensure_table(batch)
            try:
                self.backend.insert_frame(self.table, frame_series(batch.frame, fields))
            except BackendError as exc:
                raise SinkError(f"{self.backend.name} {self.config.table}: {exc}") from exc
        self._pending.clear()

    def close(self) -> None:
        self.backend.close()
