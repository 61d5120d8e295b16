"""PostgreSQL log-based CDC (AGG-02, mode 4): a logical replication slot read over the streaming
replication protocol (connectors.relational.pg_replication).

Route: the built-in `pgoutput` plugin (no server package to install); the server's walsender
decodes and streams while the capture publishes the previous batch. The slot is confirmed (the
standby status's flushed LSN) only in `committed()`, i.e. after the runtime stored the offset the
broker acknowledged. The stream delivers whole committed transactions in commit order, so the
resume point is always a commit's end LSN: a (re)connection starts streaming at the stored offset
and the server skips the transactions it covers; a crash between storing the offset and
confirming it re-reads nothing the stored offset covers (end LSN <= stored LSN is skipped too):
no duplicates.

Snapshot then stream, no gap and no duplicate at the hand-over:
1. The slot is created first; every transaction committing after its consistent point will
   be decoded. Transactions that committed before it are not decoded but are finished before
   the slot returns, so any later snapshot sees them.
2. Then a REPEATABLE READ transaction takes the snapshot S; its first statement records S
   (`pg_current_snapshot()`: xmin, xmax, in-progress xids) and `bound`, the WAL insert LSN read
   after S was taken. Tables are read in that one transaction, in batches across polls.
3. Streaming from the slot, a decoded transaction whose effects S already contains must be
   dropped, every other one emitted. S contains exactly the transactions visible to it
   (xid < xmin, or xid < xmax and not in xip); that xid test is what the filter applies. It is
   only needed while commit LSN < bound: a transaction visible to S committed (wrote its commit
   record) before S was taken, hence before `bound`, so from the first commit at or past `bound`
   on the filter is dropped from the offset. An LSN-only cut-off would be wrong: commit records
   and visibility are not ordered the same way (a later commit record can become visible first).
A restart during the snapshot (no offset stored yet) redoes it with a new slot and snapshot:
snapshot rows may repeat, changes are neither lost nor repeated.
Heartbeat: when the captured tables are idle, a transactional logical message is written every
`heartbeat_seconds`, so the slot still moves forward and the server can recycle WAL that only
other tables' changes filled.

Images: captured tables are set to REPLICA IDENTITY FULL so updates and deletes carry the whole
before image (and unchanged TOAST values can be filled from it). With `replica_identity_full:
false` the tables must already be FULL; key-only before images are not supported. TRUNCATE and
DDL are not emitted. Schema change (issue 15, connectors.schema_changes): a relation message whose
columns, types or type modifiers differ from the ones seen before for a table makes the task
re-reflect it before the transaction's events are built; a compatible change is followed (new
schema version, events from that transaction on carry the new layout), an incompatible one stops
the task with the events before that transaction published and the offset just before it.
Sequence: the change's LSN (grows per row); snapshot rows carry the slot's restart LSN, lower than
any decoded change. Server gone (restart, network): `poll` reconnects with backoff by itself.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Transformer
from pydantic import Field
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from connectors.base import CapturedTable, RelationalSourceSettings, SourceBatch, SourceTask
from connectors.relational.cdc_common import Backoff, row_converter
from connectors.relational.cdc_pg_events import EventBuilder
from connectors.relational.cdc_pgoutput import PgOutputDecoder, int_to_lsn, lsn_to_int
from connectors.relational.log_snapshot import ConsistentSnapshot
from connectors.relational.pg_replication import ReplicationStream, drop_slot, keepalive_end
from connectors.relational.reflect import reflect_table
from connectors.schema_changes import Evolution

log = logging.getLogger(__name__)


class PgLogicalConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database (postgresql+psycopg://...)")
    system: str = Field(description="source system name, second part of the topic name")
    tables: list[str] = Field(min_length=1, description="captured tables, 'table' or 'schema.table'")
    db_schema: str = Field("public", description="schema of tables named without one")
    slot_name: str | None = Field(None, description="replication slot; default huiliu_<name>")
    publication: str | None = Field(None, description="publication; default huiliu_<name>")
    replica_identity_full: bool = Field(True, description="set REPLICA IDENTITY FULL on the tables")
    batch_size: int = Field(5000, gt=0, description="snapshot rows per poll")
    max_changes: int = Field(20000, gt=0, description="decoded messages per poll (whole transactions)")
    heartbeat_seconds: float = Field(30.0, gt=0, description="idle time before a heartbeat message")
    wait_seconds: float = Field(
        0.2, ge=0, description="how long a poll waits for the first change when none is buffered"
    )
    linger_seconds: float = Field(
        0.05,
        ge=0,
        description="how long a poll waits for more changes after the first (larger batches cost less CPU a change)",
    )

    def ident(self) -> str:
        return re.sub(r"[^a-z0-9_]", "_", f"huiliu_{self.name}".lower())[:63]


class LogicalDecodingNotConfigured(RuntimeError):
    pass


def _xid_visible(xid32: int, snap: dict) -> bool:
    """Is the (32-bit, from pgoutput) xid visible to the exported snapshot (64-bit xids)?"""
    xmax = snap["xmax"]
    diff = (xid32 - xmax) & 0xFFFFFFFF  # circular distance: xids within 2^31 after xmax are newer
    full = xmax + diff if diff < 1 << 31 else xmax - ((1 << 32) - diff)
    return full < snap["xmin"] or (full < xmax and full not in snap["xip"])


class PgLogicalTask(SourceTask):
    # The runtime stores a batch's offset on its acks thread while this task reads the next one;
    # the stream never sends a transaction twice, so the next batch starts where this one ended.
    pipelined = True

    def __init__(self, config: PgLogicalConfig):
        self.config = config
        self.name = config.name
        self.slot = config.slot_name or config.ident()
        self.publication = config.publication or config.ident()
        self.partition = f"pg_logical:{self.slot}"
        self.conninfo = make_url(config.url).set(drivername="postgresql").render_as_string(hide_password=False)
        engine = create_engine(config.url, future=True)
        self.tables: dict[tuple[str, str], CapturedTable] = {}
        try:
            for name in config.tables:
                schema, table = name.split(".", 1) if "." in name else (config.db_schema, name)
                _, columns = reflect_table(engine, table, schema)
                self.tables[(schema, table)] = CapturedTable(
                    config.system, table, tuple(columns), engine.url.database, schema, config.unknown_types
                )
        finally:
            engine.dispose()
        self.convert = {k: row_converter(t.columns, t.table, t.unknown_types) for k, t in self.tables.items()}
        self.conn: psycopg.Connection | None = None  # SQL: slot and publication set-up, heartbeats
        self.stream: ReplicationStream | None = None  # the slot's changes, streamed
        self._pending: list = []  # complete transactions read but not yet turned into events
        self._stored = 0  # LSN of the last stored offset, confirmed to the server by the polling thread
        self._read_end = 0  # end LSN of the last complete transaction read from the stream
        self._quiet: tuple[int, int] | None = None  # (a keepalive's end of WAL, _read_end when it came)
        self.backoff = Backoff()
        self.offset: dict[str, Any] = {}
        self.confirmed = 0
        self.last_change = time.monotonic()
        self._snap: ConsistentSnapshot | None = None  # the snapshot in progress
        self.handover_skipped = 0  # transactions dropped because the snapshot already held them
        self.evolution = Evolution(config.name, config.url)
        self._layouts: dict[tuple[str, str], tuple] = {}  # per table: the relation layout seen last
        self._checked: dict[int, Any] = {}  # relation oid -> the relation message already compared

    # --- connections -------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
        level = conn.execute("SHOW wal_level").fetchone()[0]
        if level != "logical":
            conn.close()
            raise LogicalDecodingNotConfigured(
                f"wal_level is {level}; logical decoding needs wal_level=logical "
                "(`huiliu servers prepare` sets it and restarts the server)"
            )
        self.decoder = PgOutputDecoder()
        # the bulk path reads texts as UTF-8; other encodings are decoded value by value by psycopg
        self.events = EventBuilder(self.tables, Transformer(conn), columnar=conn.info.encoding == "utf-8")
        return conn

    def _slot_confirmed(self, conn) -> int | None:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        ).fetchone()
        return None if row is None else lsn_to_int(row[0] or "0/0")

    def _prepare_tables(self, conn) -> None:
        names = [sql.Identifier(s, t) for s, t in self.tables]
        exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)).fetchone()
        verb = "ALTER PUBLICATION {} SET TABLE {}" if exists else "CREATE PUBLICATION {} FOR TABLE {}"
        conn.execute(sql.SQL(verb).format(sql.Identifier(self.publication), sql.SQL(", ").join(names)))
        for (schema, table), ident in zip(self.tables, names):
            current = conn.execute(
                "SELECT relreplident FROM pg_class WHERE oid = %s::regclass", (f'"{schema}"."{table}"',)
            ).fetchone()[0]
            if current == "f":
                continue
            if not self.config.replica_identity_full:
                raise ValueError(
                    f"replica_identity_full is false but {schema}.{table} is not REPLICA IDENTITY "
                    "FULL; before images need it (ALTER TABLE ... REPLICA IDENTITY FULL)"
                )
            conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(ident))

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.offset = dict(offsets.get(self.partition) or {})
        for table in self.tables.values():  # a held schema change keeps the capture stopped
            self.evolution.resume(table)
        self.conn = self._connect()
        self._prepare_tables(self.conn)
        self._layouts = {key: self._catalog_layout(self.conn, key) for key in self.tables}
        confirmed = self._slot_confirmed(self.conn)
        if self.offset.get("snapshot_done"):
            if confirmed is None:
                raise RuntimeError(
                    f"replication slot {self.slot} is gone: changes since offset "
                    f"{self.offset.get('lsn')} are lost; clear the offsets to snapshot again"
                )
            self.confirmed = confirmed  # the stream starts at the stored offset; the first commit confirms it
            return
        if confirmed is not None and not self.offset:  # a slot left by an earlier run whose offsets are gone
            self.conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            confirmed = None
        if confirmed is None:
            self.conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))
        self._begin_snapshot()

    def _begin_snapshot(self) -> None:
        restart, consistent = self.conn.execute(
            "SELECT restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        snap_conn = psycopg.connect(self.conninfo, connect_timeout=10)
        snap_conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap_conn.read_only = True
        # one statement: the snapshot is taken when it starts, the insert LSN read after that
        text, bound = snap_conn.execute(
            "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text"
        ).fetchone()
        xmin, xmax, xip = text.split(":")
        snap_filter = {
            "xmin": int(xmin),
            "xmax": int(xmax),
            "xip": [int(x) for x in xip.split(",") if x],
            "bound": bound,
        }
        self._snap = ConsistentSnapshot(
            snap_conn,
            self.tables,
            self.convert,
            lambda key, table: self._select(snap_conn, key, table),
            {"lsn": consistent, "snapshot": True},
            lsn_to_int(restart),
            {"snapshot_done": True, "lsn": consistent, "filter": snap_filter},
        )
        log.info(
            "%s: snapshot %s (bound %s) after slot %s consistent at %s", self.name, text, bound, self.slot, consistent
        )

    @staticmethod
    def _select(conn, key: tuple[str, str], table: CapturedTable):
        cursor = conn.cursor(name=f"huiliu_snapshot_{key[0]}.{key[1]}")  # server-side: rows come in batches
        cursor.execute(
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns), sql.Identifier(*key)
            )
        )
        return cursor

    def poll(self) -> SourceBatch:
        return self._poll_snapshot() if self._snap is not None else self._poll_stream()

    def _poll_snapshot(self) -> SourceBatch:
        events, frames = self._snap.read(self.config.batch_size)
        if not self._snap.finished:
            return SourceBatch(events, {}, frames)
        self.offset, self._snap = self._snap.finish(), None
        return SourceBatch(events, {self.partition: dict(self.offset)}, frames)

    def _poll_stream(self) -> SourceBatch:
        try:
            if self.conn is None:
                if not self.backoff.ready():
                    return SourceBatch()
                self.conn = self._connect()
                self.confirmed = self._slot_confirmed(self.conn) or 0
            if self.stream is None:  # streams from the stored offset: the server skips what it covers
                self.stream = ReplicationStream(self.conninfo, self.slot, self.offset["lsn"], self._stream_options())
                self.decoder, self._pending = PgOutputDecoder(), []  # a stream starts at a transaction boundary
                self._read_end, self._quiet = lsn_to_int(self.offset["lsn"]), None
            self._advance(self._confirmable())
            txns = self._pending
            feed, c = self.decoder.feed, self.config
            for message in self.stream.read(c.max_changes, c.wait_seconds, c.linger_seconds):
                if message[0] == 0x6B:  # keepalive: its end of WAL is confirmable once what came before is stored
                    if self.decoder.between_transactions:
                        self._quiet = (keepalive_end(message), self._read_end)
                    continue
                txn = feed(message)
                if txn is not None:
                    txns.append(txn)
                    self._read_end = txn.end_lsn
            self._pending = []
            self.backoff.ok()
            if not txns and time.monotonic() - self.last_change > self.config.heartbeat_seconds:
                self.conn.execute("SELECT pg_logical_emit_message(true, 'huiliu_heartbeat', '')")
                self.last_change = time.monotonic()
        except psycopg.OperationalError as exc:
            self._lost(exc, "reading the slot")
            return SourceBatch()
        accepted: list = []  # transactions to publish
        offset = dict(self.offset)  # self.offset changes only once stored (committed)
        done = before = lsn_to_int(offset["lsn"])
        progressed = False
        for i, txn in enumerate(txns):
            if txn.end_lsn <= done:
                continue  # already published before a crash
            progressed = True
            before, done = done, txn.end_lsn
            filt = offset.get("filter")
            if filt and txn.commit_lsn >= lsn_to_int(filt["bound"]):
                offset.pop("filter")  # past the hand-over: no later commit can be in the snapshot
            elif filt and _xid_visible(txn.xid, filt):
                self.handover_skipped += 1
                continue  # its effects are in the snapshot already
            changed = self._changed_relations(txn)
            if changed and any(t.messages for t in accepted):  # publish what came before first; this one next poll
                self._pending = txns[i:]
                offset["lsn"] = int_to_lsn(before)
                return self._batch(accepted, offset)
            for key, rel in changed.items():
                self._evolve(key, rel)  # SchemaChangeHeld stops the task here, offset before this transaction
            accepted.append(txn)
        if not progressed:
            return SourceBatch()
        self.last_change = time.monotonic()
        offset["lsn"] = int_to_lsn(done)
        return self._batch(accepted, offset)

    def _batch(self, txns: list, offset: dict[str, Any]) -> SourceBatch:
        events, frames = self.events.build(txns)
        return SourceBatch(events, {self.partition: offset}, frames)

    def _confirmable(self) -> int:
        """The LSN the server may move the slot to: the stored offset, or past it the end of WAL a
        keepalive reported once every transaction read before that keepalive is stored (WAL with
        no captured commit in it: other databases', checkpoints). Without this a fast shutdown of
        the server waits for wal_sender_timeout: its walsender exits only once the client
        confirmed all WAL it sent, the shutdown checkpoint included."""
        if self._quiet is not None and self._stored >= self._quiet[1]:
            return max(self._stored, self._quiet[0])
        return self._stored

    def _stream_options(self) -> dict[str, str]:
        return {"proto_version": "1", "publication_names": self.publication, "messages": "true"}

    @staticmethod
    def _catalog_layout(conn, key: tuple[str, str]) -> tuple:
        """The table's layout as a relation message states it (columns, type OIDs, modifiers), read
        at start next to the reflection: a relation message that differs is a schema change."""
        rows = conn.execute(
            "SELECT attname, atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (f'"{key[0]}"."{key[1]}"',),
        ).fetchall()
        return (tuple((name, oid) for name, oid, _ in rows), tuple(mod for _, _, mod in rows))

    def _changed_relations(self, txn) -> dict:
        """The captured tables whose relation layout differs from the one seen before (at start:
        the catalogue's, read next to the reflection). Hot path: a relation object already checked
        is skipped by identity (the decoder makes a new one for every relation message)."""
        out = {}
        for rel, _ in txn.runs:
            if self._checked.get(rel.oid) is rel:
                continue
            key = (rel.namespace, rel.name)
            if key not in self.tables:
                self._checked[rel.oid] = rel
                continue
            if self._layouts[key] != (tuple(rel.columns), rel.typmods):
                out[key] = rel
            else:
                self._checked[rel.oid] = rel
        return out

    def _evolve(self, key: tuple[str, str], rel) -> None:
        engine = create_engine(self.config.url, future=True)
        try:
            _, columns = reflect_table(engine, key[1], key[0])
        finally:
            engine.dispose()
        by_name = {c.name: c for c in columns}
        # the relation message says which columns this transaction's rows have
        columns = tuple(by_name[name] for name, _ in rel.columns if name in by_name)
        old = self.tables[key]
        new = CapturedTable(old.system, old.table, columns, old.database, old.schema, old.unknown_types)
        table = self.evolution.apply(old, new)
        self.tables[key] = table  # the EventBuilder shares this dict
        self.convert[key] = row_converter(table.columns, table.table, table.unknown_types)
        self._layouts[key] = (tuple(rel.columns), rel.typmods)
        self._checked[rel.oid] = rel

    def _advance(self, lsn: int) -> None:
        """Confirm `lsn` to the server on the open stream (the slot may then move past it)."""
        if lsn > self.confirmed:
            self.stream.confirm(lsn)
            self.confirmed = lsn

    def _lost(self, exc: Exception, what: str) -> None:
        self.backoff.failed(exc, f"{self.name}: {what}")
        self._close_stream()
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        """Called on the runtime's acks thread (the task is `pipelined`): the connections belong to
        the polling thread, which confirms the stored offset to the server at its next poll."""
        offset = offsets.get(self.partition)
        if not offset or not offset.get("snapshot_done"):
            return
        self.offset = dict(offset)  # what a reconnection resumes from
        self._stored = lsn_to_int(offset["lsn"])

    def _close_stream(self) -> None:
        if self.stream is not None:
            try:
                self._advance(self._confirmable())
            except psycopg.OperationalError:
                pass  # the connection is gone anyway: the next stream starts at the stored offset
            self.stream.close()
            self.stream = None

    def drop_slot(self) -> None:
        """Decommission: drop the slot (the server then frees its WAL) and the publication."""
        self._close_stream()  # the slot is in use while its stream is open
        conn = self.conn or psycopg.connect(self.conninfo, autocommit=True)
        drop_slot(conn, self.slot, timeout=10)
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(self.publication)))
        if conn is not self.conn:
            conn.close()

    def close(self) -> None:
        self._close_stream()
        if self._snap is not None:
            self._snap.close()
            self._snap = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
