"""MySQL/MariaDB log-based CDC (AGG-02, mode 4): the binlog in ROW format through mysql-replication.

Snapshot then stream, no gap and no duplicate at the hand-over (mysqldump's recipe):
`FLUSH TABLES WITH READ LOCK` stops every commit; `START TRANSACTION WITH CONSISTENT SNAPSHOT`
(REPEATABLE READ) then sees exactly the transactions whose events lie before the binlog position
`SHOW MASTER STATUS` reports under that same lock; `UNLOCK TABLES` lets writers go on (the lock
is held for milliseconds). The tables are read in that transaction, in batches across polls, and
the stream starts at the reported position: every later commit is streamed, none twice.
A restart during the snapshot redoes it (snapshot rows may repeat, changes not).

Streaming: a BinLogStreamReader (non-blocking) per read pass, only row, XID/COMMIT and GTID
events of the captured tables. Rows are held until their transaction's XID (or COMMIT query)
event, and the offset is that event's end position: a resume never starts inside a transaction
(a rows event needs the table-map event before it). The offset is stored by the runtime after
the broker acknowledged, and only then is it used to resume, so a restart neither loses nor
repeats a transaction. Source position per row: {"file", "pos" (end of the rows event), "row"};
sequence = file index << 45 | pos << 13 | row, growing along the binlog.
Server requirements: log_bin, binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL
(column names in the binlog; `huiliu servers prepare` configures them), and the
RELOAD + REPLICATION SLAVE/CLIENT privileges. Server gone: `poll` reconnects with backoff.
Schema change (issue 15, connectors.schema_changes): an ALTER/RENAME/DROP/CREATE TABLE query event
naming a captured table makes the task re-reflect it there; a compatible change is followed (rows
after it carry the new layout), an incompatible one stops the task with the offset before the DDL.
"""

from __future__ import annotations

import logging
import re
import struct
import time
import zlib
from typing import Any

import pymysql
from pydantic import Field

from schemas.optional import missing_extra

try:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent
except ModuleNotFoundError as exc:
    raise missing_extra(exc, "pymysqlreplication", extra="mysql") from None

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from connectors.base import CapturedTable, ChangeEvent, RelationalSourceSettings, SourceBatch, SourceTask
from connectors.relational.cdc_common import Backoff, row_converter
from connectors.relational.log_snapshot import ConsistentSnapshot
from connectors.relational.reflect import reflect_table
from connectors.schema_changes import Evolution

log = logging.getLogger(__name__)
STREAM_ERRORS = (pymysql.err.Error, OSError, EOFError, struct.error)
_DDL = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:ALTER|CREATE|RENAME|DROP)\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"(?:`?(\w+)`?\.)?`?(\w+)`?",
    re.IGNORECASE | re.DOTALL,
)


class MysqlBinlogConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database (mysql+pymysql://...)")
    system: str = Field(description="source system name, second part of the topic name")
    tables: list[str] = Field(min_length=1, description="captured tables of the URL's database")
    server_id: int | None = Field(None, gt=0, description="replica id; unique per connector (default from name)")
    batch_size: int = Field(5000, gt=0, description="snapshot rows / streamed rows per poll")
    idle_wait_seconds: float = Field(0.2, ge=0, description="pause after reaching the binlog's end")


class BinlogNotConfigured(RuntimeError):
    pass


def sequence_of(file: str, pos: int, row: int = 0) -> int:
    index = int(file.rsplit(".", 1)[1])
    return (index << 45) | (pos << 13) | min(row, 8191)


class MysqlBinlogTask(SourceTask):
    def __init__(self, config: MysqlBinlogConfig):
        self.config = config
        self.name = config.name
        url = make_url(config.url)
        self.database = url.database
        self.conn_settings = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
        }
        self.server_id = config.server_id or 1000 + zlib.crc32(config.name.encode()) % 1_000_000
        self.partition = f"mysql_binlog:{self.database}"
        engine = create_engine(config.url, future=True)
        self.tables: dict[str, CapturedTable] = {}
        try:
            for name in config.tables:
                _, columns = reflect_table(engine, name)
                self.tables[name] = CapturedTable(
                    config.system, name, tuple(columns), self.database, None, config.unknown_types
                )
        finally:
            engine.dispose()
        self.convert = {k: row_converter(t.columns, t.table, t.unknown_types) for k, t in self.tables.items()}
        self.offset: dict[str, Any] = {}
        self.stream: BinLogStreamReader | None = None
        self.backoff = Backoff()
        self._snap: ConsistentSnapshot | None = None
        self._next_pass = 0.0
        self._returned: dict[str, Any] | None = None  # offset of the last batch handed out
        self.evolution = Evolution(config.name, config.url)

    def _connect(self, **kw) -> pymysql.Connection:
        return pymysql.connect(
            **self.conn_settings, database=self.database, charset="utf8mb4", connect_timeout=10, **kw
        )

    def _check_server(self, cur) -> None:
        cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image')")
        v = {k.lower(): val for k, val in cur.fetchall()}
        if v.get("log_bin") != "ON":
            raise BinlogNotConfigured(
                "log_bin is OFF; binlog CDC needs log_bin=ON with binlog_format=ROW "
                "(`huiliu servers prepare` configures it)"
            )
        if v.get("binlog_format") != "ROW" or v.get("binlog_row_image") != "FULL":
            raise BinlogNotConfigured(
                f"binlog_format is {v.get('binlog_format')} and binlog_row_image is "
                f"{v.get('binlog_row_image')}; binlog CDC needs ROW and FULL"
            )

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.offset = dict(offsets.get(self.partition) or {})
        for table in self.tables.values():  # a held schema change keeps the capture stopped
            self.evolution.resume(table)
        conn = self._connect(cursorclass=pymysql.cursors.SSCursor)
        cur = conn.cursor()
        self._check_server(cur)
        if self.offset.get("snapshot_done"):
            conn.close()
            return
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("FLUSH TABLES WITH READ LOCK")  # no commit can slip between snapshot and position
        try:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SHOW MASTER STATUS")
            file, pos = cur.fetchall()[0][:2]
        finally:
            cur.execute("UNLOCK TABLES")
        log.info("%s: snapshot at %s:%s", self.name, file, pos)
        cur.close()
        self._snap = ConsistentSnapshot(
            conn,
            self.tables,
            self.convert,
            lambda name, table: self._select(conn, name, table),
            {"file": file, "pos": pos, "snapshot": True},
            sequence_of(file, pos),
            {"snapshot_done": True, "file": file, "pos": pos},
        )

    @staticmethod
    def _select(conn, name: str, table: CapturedTable):
        cur = conn.cursor()
        cur.execute("SELECT {} FROM `{}`".format(", ".join(f"`{c.name}`" for c in table.columns), name))
        return cur

    def poll(self) -> SourceBatch:
        return self._poll_snapshot() if self._snap is not None else self._poll_stream()

    def _poll_snapshot(self) -> SourceBatch:
        events, frames = self._snap.read(self.config.batch_size)
        if not self._snap.finished:
            return SourceBatch(events, {}, frames)
        self.offset, self._snap = self._snap.finish(), None
        return SourceBatch(events, {self.partition: dict(self.offset)}, frames)

    def _open_stream(self) -> BinLogStreamReader:
        return BinLogStreamReader(
            connection_settings=dict(self.conn_settings),
            server_id=self.server_id,
            blocking=False,
            resume_stream=True,
            log_file=self.offset["file"],
            log_pos=self.offset["pos"],
            is_mariadb=False,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, XidEvent, QueryEvent, MariadbGtidEvent],
            only_schemas=[self.database],
            enable_logging=False,
        )

    def _poll_stream(self) -> SourceBatch:
        if self._returned != self.offset:  # the last batch was not stored: read it again
            self._close_stream()
            self._returned = dict(self.offset)
        if self.stream is None:
            if not self.backoff.ready() or time.monotonic() < self._next_pass:
                return SourceBatch()
            self.stream = self._open_stream()
        events: list[ChangeEvent] = []
        pending: list[ChangeEvent] = []
        txn_id, counts, offset = None, {}, dict(self.offset)
        try:
            while len(events) < self.config.batch_size:
                ev = self.stream.fetchone()
                if ev is None:  # end of the binlog for now: a new pass (two connections) after a pause
                    self._close_stream()
                    self._next_pass = time.monotonic() + self.config.idle_wait_seconds
                    break
                if isinstance(ev, MariadbGtidEvent):
                    txn_id, pending, counts = ev.gtid, [], {}
                elif isinstance(ev, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
                    if ev.schema == self.database and ev.table in self.tables:
                        pending.extend(self._events(ev, txn_id, len(pending), counts))
                elif isinstance(ev, XidEvent) or (isinstance(ev, QueryEvent) and ev.query.strip().upper() != "BEGIN"):
                    table = self._ddl_table(ev) if isinstance(ev, QueryEvent) else None
                    if table is not None:
                        if events:  # publish what came before the DDL; it is read again next poll
                            self._close_stream()
                            break
                        self._evolve(table)  # SchemaChangeHeld stops the task, offset before the DDL
                    events.extend(pending)  # transaction (or DDL) complete: a safe resume point
                    pending, counts = [], {}
                    offset = {"snapshot_done": True, "file": self.stream.log_file, "pos": ev.packet.log_pos}
            self.backoff.ok()
        except STREAM_ERRORS as exc:
            self.backoff.failed(exc, f"{self.name}: reading the binlog")
            self._close_stream()  # a partly read transaction is read again from the last commit
        if offset == self.offset:
            return SourceBatch(events)
        self._returned = offset
        return SourceBatch(events, {self.partition: offset})

    def _ddl_table(self, ev) -> str | None:
        """The captured table a DDL statement changes, if any."""
        found = _DDL.match(ev.query or "")
        if not found:
            return None
        schema, table = found.group(1), found.group(2)
        db = schema or (ev.schema.decode() if isinstance(ev.schema, bytes) else ev.schema)
        return table if db == self.database and table in self.tables else None

    def _evolve(self, name: str) -> None:
        engine = create_engine(self.config.url, future=True)
        try:
            _, columns = reflect_table(engine, name)
        finally:
            engine.dispose()
        old = self.tables[name]
        new = CapturedTable(old.system, old.table, tuple(columns), old.database, None, old.unknown_types)
        table = self.evolution.apply(old, new)
        self.tables[name] = table
        self.convert[name] = row_converter(table.columns, table.table, table.unknown_types)

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        if self.partition in offsets:
            self.offset = dict(offsets[self.partition])  # stored: the resume point from now on

    def _events(self, ev, txn_id: str | None, done: int, counts: dict[str, int]) -> list[ChangeEvent]:
        table = self.tables[ev.table]
        convert = self.convert[ev.table]
        file, pos = self.stream.log_file, ev.packet.log_pos
        op = {WriteRowsEvent: "c", UpdateRowsEvent: "u", DeleteRowsEvent: "d"}[type(ev)]
        out = []
        for i, row in enumerate(ev.rows):
            if op == "u":
                before, after = convert(row["before_values"]), convert(row["after_values"])
            elif op == "c":
                before, after = None, convert(row["values"])
            else:
                before, after = convert(row["values"]), None
            n = done + i + 1
            counts[ev.table] = counts.get(ev.table, 0) + 1
            out.append(
                ChangeEvent(
                    table,
                    op,
                    before,
                    after,
                    ev.timestamp * 1000,
                    {"file": file, "pos": pos, "row": i},
                    sequence_of(file, pos, i),
                    False,
                    {"id": txn_id or f"{file}:{pos}", "total_order": n, "data_collection_order": counts[ev.table]},
                )
            )
        return out

    def _close_stream(self) -> None:
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception:
                pass
            self.stream = None

    def close(self) -> None:
        self._close_stream()
        if self._snap is not None:
            self._snap.close()
            self._snap = None
