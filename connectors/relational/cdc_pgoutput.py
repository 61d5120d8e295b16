"""Parser of PostgreSQL's built-in `pgoutput` logical decoding messages (protocol version 1).

The replication stream (connectors.relational.pg_replication) hands us these bytes, one message
per XLogData; decoding them here avoids any server-side plugin install (wal2json) and the
quoting ambiguities of `test_decoding`'s text output. Column values arrive in each type's text
output form and are turned into Python values by psycopg's own loaders for the type's OID, so
streamed rows have exactly the types a SELECT (the snapshot) returns.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.relational.pg_replication import XLOGDATA_HEADER, xlogdata_lsn

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNCHANGED_TOAST = object()  # 'u': an unchanged TOASTed value the server did not resend


def lsn_to_int(lsn: str) -> int:
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def pg_ts_to_ms(micros: int) -> int:
    return int((PG_EPOCH + timedelta(microseconds=micros)).timestamp() * 1000)


@dataclass
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: list[tuple[str, int]]  # (name, type oid)
    typmods: tuple[int, ...] = ()  # per column (varchar length, numeric precision): a change is a schema change


@dataclass
class Begin:
    final_lsn: int
    commit_ts_ms: int
    xid: int


@dataclass
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_ts_ms: int


@dataclass
class RowChange:
    op: str  # c, u, d
    relation: Relation
    old: list[Any] | None  # raw column values (bytes | None | UNCHANGED_TOAST) in relation order
    new: list[Any] | None
    lsn: int = 0


@dataclass
class Transaction:
    """A committed transaction. Its Insert/Update/Delete messages are kept undecoded: a table's
    changes are decoded in bulk into columns (connectors.relational.cdc_pg_columns), and one by
    one (`decode_change`) only where that path does not apply."""

    xid: int
    commit_lsn: int
    end_lsn: int
    commit_ts_ms: int
    messages: list = field(default_factory=list)  # the XLogData messages of 'I', 'U', 'D' (header included)
    runs: list[tuple[Relation, int]] = field(default_factory=list)  # (relation, first message) of each run

    def run_bounds(self) -> list[tuple[Relation, int, int]]:
        """(relation, first, end) of each run of consecutive messages of one relation."""
        starts = [start for _, start in self.runs] + [len(self.messages)]
        return [(rel, start, starts[i + 1]) for i, (rel, start) in enumerate(self.runs)]


_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">bQQq")
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I16 = struct.Struct(">h").unpack_from


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode(), end + 1


def read_tuple(buf: bytes, pos: int) -> tuple[list[Any], int]:
    """TupleData: per column 'n' null, 'u' unchanged TOAST, 't' int32 length + text. Hot path: no calls."""
    (n,) = _I16(buf, pos)
    pos += 2
    values: list[Any] = []
    append = values.append
    for _ in range(n):
        kind = buf[pos]
        pos += 1
        if kind == 110:  # 'n'
            append(None)
        elif kind == 117:  # 'u'
            append(UNCHANGED_TOAST)
        else:  # 't' (or 'b', which we never ask for)
            (length,) = _I32(buf, pos)
            pos += 4
            append(buf[pos : pos + length])
            pos += length
    return values, pos


class PgOutputDecoder:
    """Turns (lsn, data) rows into complete transactions; keeps the relation cache between calls."""

    def __init__(self):
        self.relations: dict[int, Relation] = {}
        self._open: Transaction | None = None

    @property
    def between_transactions(self) -> bool:
        return self._open is None

    def feed(self, message: bytes | memoryview) -> Transaction | None:
        """Consume one XLogData message (the replication protocol's header, then the pgoutput
        message); returns a transaction when its commit arrives."""
        kind = message[XLOGDATA_HEADER]
        if kind in (73, 85, 68):  # 'I', 'U', 'D': the hot path, kept undecoded
            txn = self._open
            rel = self.relations[_U32(message, XLOGDATA_HEADER + 1)[0]]
            if txn is not None:
                if not txn.runs or txn.runs[-1][0] is not rel:
                    txn.runs.append((rel, len(txn.messages)))
                txn.messages.append(message)
            return None
        buf = bytes(message[XLOGDATA_HEADER:])
        if kind == 66:  # 'B'
            final_lsn, ts, xid = _BEGIN.unpack_from(buf, 1)
            self._open = Transaction(xid, final_lsn, 0, pg_ts_to_ms(ts))
        elif kind == 67:  # 'C'
            _flags, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(buf, 1)
            txn, self._open = self._open, None
            if txn is not None:
                txn.commit_lsn, txn.end_lsn, txn.commit_ts_ms = commit_lsn, end_lsn, pg_ts_to_ms(ts)
            return txn
        elif kind == 82:  # 'R'
            (oid,) = _U32(buf, 1)
            namespace, pos = _cstring(buf, 5)
            name, pos = _cstring(buf, pos)
            ident = chr(buf[pos])
            (natts,) = _I16(buf, pos + 1)
            pos += 3
            cols, typmods = [], []
            for _ in range(natts):
                col, pos = _cstring(buf, pos + 1)  # skip the flags byte
                (type_oid,) = _U32(buf, pos)
                cols.append((col, type_oid))
                typmods.append(_I32(buf, pos + 4)[0])
                pos += 8  # type oid + typmod
            self.relations[oid] = Relation(oid, namespace, name, ident, cols, tuple(typmods))
        # 'Y' (type), 'O' (origin), 'T' (truncate), 'M' (message) carry no row images: ignored
        return None


def decode_change(rel: Relation, message: bytes | memoryview) -> RowChange:
    """One Insert/Update/Delete XLogData message with its row images decoded value by value."""
    lsn = xlogdata_lsn(message)
    buf = bytes(message[XLOGDATA_HEADER:])
    kind = buf[0]
    old = new = None
    if kind == 73:
        new, _ = read_tuple(buf, 6)
    elif kind == 85:
        pos = 6
        if buf[5] in (75, 79):  # old image: 'O' with REPLICA IDENTITY FULL, 'K' key only
            old, pos = read_tuple(buf, 6)
            pos += 1  # the 'N' marker
        new, _ = read_tuple(buf, pos)
    else:
        old, _ = read_tuple(buf, 6)
    return RowChange(_OPS[kind], rel, old, new, lsn)


_OPS = {73: "c", 85: "u", 68: "d"}
