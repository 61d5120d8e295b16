"""PostgreSQL's streaming replication protocol for one logical slot (what Debezium and pg_recvlogical use).

The server's walsender decodes the WAL and streams pgoutput messages continuously while the
capture encodes and publishes the previous batch, instead of decoding a batch per SQL call
(`pg_logical_slot_peek_binary_changes` decodes from the slot's confirmed point again each time and
waits on the round trip). psycopg 3 has no replication API, so this speaks the few messages of the
protocol over libpq's COPY BOTH through `psycopg.pq` (the same libpq the rest uses):
https://www.postgresql.org/docs/current/protocol-replication.html

- XLogData `w`: start LSN, end of WAL, send time, then one pgoutput message.
- Primary keepalive `k`: end of WAL, send time, reply requested.
- Standby status update `r` (ours): written, flushed, applied LSN, clock, reply requested. For a
  logical slot the flushed LSN is what the server stores as `confirmed_flush_lsn`: we confirm only
  offsets the capture has stored, so a restart streams again from there.
"""

from __future__ import annotations

import select
import struct
import time

import psycopg
from psycopg import pq
from psycopg.conninfo import make_conninfo

_LSN = struct.Struct(">Q")  # XLogData: 'w', start LSN, end of WAL, send time; keepalive: 'k', end of WAL, ...
XLOGDATA_HEADER = 25  # the pgoutput message starts here
_STATUS = struct.Struct(">cQQQqB")
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
STATUS_INTERVAL_S = 10.0  # well inside the server's wal_sender_timeout (60 s by default)


class ReplicationStream:
    """One START_REPLICATION of a logical slot; `read()` returns the messages received."""

    def __init__(self, conninfo: str, slot: str, start_lsn: str, options: dict[str, str], connect_timeout: int = 10):
        self.pgconn = pq.PGconn.connect(
            make_conninfo(conninfo, replication="database", connect_timeout=connect_timeout).encode()
        )
        if self.pgconn.status != pq.ConnStatus.OK:
            self._fail("connecting for replication")
        opts = ", ".join(f"{_ident(k)} '{_literal(v)}'" for k, v in options.items())
        command = f"START_REPLICATION SLOT {_ident(slot)} LOGICAL {start_lsn} ({opts})"
        result = self.pgconn.exec_(command.encode())
        if result.status != pq.ExecStatus.COPY_BOTH:
            self._fail(f"starting replication of slot {slot}")
        self.received = self.flushed = 0  # LSNs: the last message read, the last confirmed
        self._status_at = time.monotonic()

    def read(self, max_messages: int, wait_s: float, linger_s: float = 0.0) -> list[memoryview]:
        """Messages received, up to `max_messages` XLogData: waits up to `wait_s` for the first,
        then up to `linger_s` after it for more (fewer, larger batches: the capture's cost per
        batch is a few ms). Returns them as received, the header included: XLogData `w` (its
        pgoutput message from XLOGDATA_HEADER on; `xlogdata_lsn`) and keepalives `k`
        (`keepalive_end`: every transaction committed before that LSN came earlier in the stream).
        Keepalives asking for a reply are answered here; a status is sent every STATUS_INTERVAL_S.
        Hot path (one pass per change): no per-message parsing beyond the kind byte."""
        deadline = time.monotonic() + wait_s
        out: list[memoryview] = []
        got = 0
        get = self.pgconn.get_copy_data
        while got < max_messages:
            size, data = get(1)
            if size > 0:
                if data[0] == 0x77:  # 'w'
                    if not got:
                        deadline = time.monotonic() + linger_s
                    got += 1
                elif data[0] == 0x6B and data[17]:  # 'k' asking for a reply
                    self.send_status()
                out.append(data)
                continue
            if size == 0:  # nothing complete in libpq's buffer
                if select.select([self.pgconn.socket], [], [], 0)[0]:
                    self.pgconn.consume_input()  # more has arrived on the socket
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                select.select([self.pgconn.socket], [], [], remaining)
                self.pgconn.consume_input()
                continue
            self._fail("reading the replication stream")  # -1: the server ended the stream; -2: an error
        for data in reversed(out):
            if data[0] == 0x77:
                self.received = max(self.received, xlogdata_lsn(data))
                break
        if time.monotonic() - self._status_at > STATUS_INTERVAL_S:
            self.send_status()
        return out

    def confirm(self, lsn: int) -> None:
        """Tell the server everything up to `lsn` is stored: the slot may move past it."""
        if lsn > self.flushed:
            self.flushed = lsn
            self.send_status()

    def send_status(self) -> None:
        clock = int(time.time() * 1_000_000) - _PG_EPOCH_US
        written = max(self.received, self.flushed)
        message = _STATUS.pack(b"r", written, self.flushed, self.flushed, clock, 0)
        if self.pgconn.put_copy_data(message) != 1 or self.pgconn.flush() != 0:
            self._fail("sending the standby status")
        self._status_at = time.monotonic()

    def close(self) -> None:
        self.pgconn.finish()

    def _fail(self, what: str):
        message = self.pgconn.error_message.decode(errors="replace").strip()
        self.pgconn.finish()
        raise psycopg.OperationalError(f"{what}: {message or 'connection closed'}")


def xlogdata_lsn(message) -> int:
    """The WAL position of an XLogData message's change."""
    return _LSN.unpack_from(message, 1)[0]


def keepalive_end(message) -> int:
    """A keepalive's end of WAL sent."""
    return _LSN.unpack_from(message, 1)[0]


def drop_slot(conn: psycopg.Connection, slot: str, timeout: float) -> bool:
    """Drop the replication slot if it exists; True if it did. A walsender still holding it (a
    stream that just stopped lets go a moment later) is waited for up to `timeout` seconds, then
    psycopg.errors.ObjectInUse is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bool(
                conn.execute(
                    "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = %s",
                    (slot,),
                ).fetchone()[0]
            )
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return value.replace("'", "''")
