"""TEST DOUBLE of an HBase Thrift (v1) server -- for tests only, never shipped as a product feature.

It exists because no HBase server can be installed in the test environment. It speaks the
real Thrift wire protocol, built from the `Hbase.thrift` IDL that ships inside the happybase
package, so the sink under test goes through happybase, thriftpy2 and a TCP socket exactly as
it would against `hbase thrift start`. Defaults match happybase's: buffered transport + binary
protocol (happybase.connection.DEFAULT_TRANSPORT / DEFAULT_PROTOCOL).

What it models, in memory: tables with column families, one (latest) version per cell, puts,
column / family / row deletes, point reads and ordered scans. What it does NOT model: cell
versions, timestamps as visibility (delete markers masking later puts), filters, regions,
namespaces, durability. Calls happybase uses that are not implemented answer with a Thrift
UNKNOWN_METHOD error instead of dropping the connection.

Run standalone:  python tests/doubles/hbase_thrift_double.py --port 29090
"""

from __future__ import annotations

import argparse
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from importlib import resources

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TApplicationException, TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory, TServerSocket

# Own module name so the double never shares generated classes with the client under test.
hbase = thriftpy2.load(str(resources.files("happybase") / "Hbase.thrift"), module_name="hbase_double_thrift")

_TRANSPORTS = {"buffered": TBufferedTransportFactory, "framed": TFramedTransportFactory}
_PROTOCOLS = {"binary": TBinaryProtocolFactory, "compact": TCompactProtocolFactory}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _split_column(column: bytes) -> tuple[bytes, bytes | None]:
    """`fam:qual` -> (fam, qual); `fam` -> (fam, None) meaning the whole family (as HBase's parseColumn)."""
    fam, sep, qual = column.partition(b":")
    return fam, (qual if sep else None)


@dataclass
class _Table:
    families: dict[bytes, object]  # family name without ':' -> ColumnDescriptor
    rows: dict[bytes, dict[bytes, tuple[bytes, int]]] = field(default_factory=dict)
    enabled: bool = True


@dataclass
class _Scanner:
    table: bytes
    keys: list[bytes]
    columns: list[bytes] | None
    pos: int = 0


class HBaseDoubleHandler:
    """Implements the subset of the `Hbase` service that happybase calls."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # TThreadedServer runs one thread per connection
        self._tables: dict[bytes, _Table] = {}
        self._scanners: dict[int, _Scanner] = {}
        self._scanner_ids = itertools.count(1)

    # -- unknown calls: answer with a Thrift error rather than killing the connection

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def not_implemented(*_args):
            raise TApplicationException(
                TApplicationException.UNKNOWN_METHOD, f"{name} is not implemented by the HBase test double"
            )

        return not_implemented

    # -- helpers

    def _table(self, name: bytes) -> _Table:
        try:
            return self._tables[name]
        except KeyError:
            raise hbase.IOError(message=f"TableNotFoundException: {name.decode(errors='replace')}") from None

    def _check_family(self, table: _Table, fam: bytes) -> None:
        if fam not in table.families:
            raise hbase.IOError(message=f"NoSuchColumnFamilyException: {fam.decode(errors='replace')}")

    @staticmethod
    def _select(cells: dict[bytes, tuple[bytes, int]], columns: list[bytes] | None) -> dict[bytes, tuple[bytes, int]]:
        if not columns:
            return dict(cells)
        out = {}
        for col in columns:
            fam, qual = _split_column(col)
            for name, cell in cells.items():
                cfam, cqual = _split_column(name)
                if cfam == fam and (qual is None or qual == cqual):
                    out[name] = cell
        return out

    @staticmethod
    def _result(row: bytes, cells: dict[bytes, tuple[bytes, int]]):
        ordered = sorted(cells.items())
        return hbase.TRowResult(
            row=row,
            columns={k: hbase.TCell(value=v, timestamp=ts) for k, (v, ts) in ordered},
            sortedColumns=[
                hbase.TColumn(columnName=k, cell=hbase.TCell(value=v, timestamp=ts)) for k, (v, ts) in ordered
            ],
        )

    def _get_rows(self, table_name: bytes, rows: list[bytes], columns: list[bytes] | None):
        with self._lock:
            table = self._table(table_name)
            out = []
            for row in rows:
                cells = self._select(table.rows.get(row, {}), columns)
                if cells:
                    out.append(self._result(row, cells))
            return out

    def _delete_family(self, table: _Table, row: bytes, fam: bytes | None, qual: bytes | None = None) -> None:
        cells = table.rows.get(row)
        if cells is None:
            return
        for name in list(cells):
            cfam, cqual = _split_column(name)
            if fam is None or (cfam == fam and (qual is None or qual == cqual)):
                del cells[name]
        if not cells:
            del table.rows[row]

    def _apply(self, table: _Table, row: bytes, mutations, ts: int) -> None:
        # Validate everything first so one bad mutation leaves the row untouched, like a failed RPC.
        for m in mutations:
            self._check_family(table, _split_column(m.column)[0])
        for m in mutations:
            fam, qual = _split_column(m.column)
            if m.isDelete:
                self._delete_family(table, row, fam, qual)
            else:
                # `fam` without ':' is stored with an empty qualifier, as HBase does.
                table.rows.setdefault(row, {})[fam + b":" + (qual or b"")] = (m.value or b"", ts)

    # -- admin

    def getTableNames(self):
        with self._lock:
            return sorted(self._tables)

    def createTable(self, tableName, columnFamilies):
        with self._lock:
            if tableName in self._tables:
                raise hbase.AlreadyExists(message=f"table {tableName.decode(errors='replace')} exists")
            if not columnFamilies:
                raise hbase.IllegalArgument(message="a table needs at least one column family")
            families = {}
            for cd in columnFamilies:
                fam = cd.name.rstrip(b":")
                if not fam:
                    raise hbase.IllegalArgument(message="empty column family name")
                cd.name = fam + b":"
                families[fam] = cd
            self._tables[tableName] = _Table(families=families)

    def deleteTable(self, tableName):
        with self._lock:
            self._table(tableName)
            del self._tables[tableName]

    def enableTable(self, tableName):
        with self._lock:
            self._table(tableName).enabled = True

    def disableTable(self, tableName):
        with self._lock:
            self._table(tableName).enabled = False

    def isTableEnabled(self, tableName):
        with self._lock:
            return self._table(tableName).enabled

    def getColumnDescriptors(self, tableName):
        with self._lock:
            return {cd.name: cd for cd in self._table(tableName).families.values()}

    def getTableRegions(self, tableName):
        with self._lock:
            self._table(tableName)
            return [
                hbase.TRegionInfo(
                    startKey=b"", endKey=b"", id=1, name=tableName + b",,1", version=1, serverName=b"double", port=0
                )
            ]

    # -- writes

    def mutateRow(self, tableName, row, mutations, attributes):
        self.mutateRowTs(tableName, row, mutations, _now_ms(), attributes)

    def mutateRowTs(self, tableName, row, mutations, timestamp, attributes):
        with self._lock:
            self._apply(self._table(tableName), row, mutations or [], timestamp)

    def mutateRows(self, tableName, rowBatches, attributes):
        self.mutateRowsTs(tableName, rowBatches, _now_ms(), attributes)

    def mutateRowsTs(self, tableName, rowBatches, timestamp, attributes):
        with self._lock:
            table = self._table(tableName)
            for batch in rowBatches or []:
                for m in batch.mutations or []:
                    self._check_family(table, _split_column(m.column)[0])
            for batch in rowBatches or []:
                self._apply(table, batch.row, batch.mutations or [], timestamp)

    def deleteAll(self, tableName, row, column, attributes):
        with self._lock:
            table = self._table(tableName)
            fam, qual = _split_column(column)
            self._check_family(table, fam)
            self._delete_family(table, row, fam, qual)

    def deleteAllRow(self, tableName, row, attributes):
        with self._lock:
            self._delete_family(self._table(tableName), row, None)

    # -- reads

    def getRow(self, tableName, row, attributes):
        return self._get_rows(tableName, [row], None)

    def getRowWithColumns(self, tableName, row, columns, attributes):
        return self._get_rows(tableName, [row], columns)

    def getRows(self, tableName, rows, attributes):
        return self._get_rows(tableName, rows or [], None)

    def getRowsWithColumns(self, tableName, rows, columns, attributes):
        return self._get_rows(tableName, rows or [], columns)

    # -- scanners: a snapshot of the matching row keys, rows read at fetch time

    def _open(self, tableName, start: bytes | None, stop: bytes | None, columns, reverse: bool = False) -> int:
        with self._lock:
            table = self._table(tableName)
            keys = sorted(table.rows, reverse=reverse)
            if reverse:  # reversed scans run from startRow (inclusive) down to stopRow (exclusive)
                keys = [k for k in keys if (not start or k <= start) and (not stop or k > stop)]
            else:
                keys = [k for k in keys if (not start or k >= start) and (not stop or k < stop)]
            sid = next(self._scanner_ids)
            self._scanners[sid] = _Scanner(table=tableName, keys=keys, columns=columns)
            return sid

    def scannerOpenWithScan(self, tableName, scan, attributes):
        if scan.filterString:
            raise hbase.IOError(message="filters are not supported by the HBase test double")
        return self._open(tableName, scan.startRow, scan.stopRow, scan.columns, bool(scan.reversed))

    def scannerOpen(self, tableName, startRow, columns, attributes):
        return self._open(tableName, startRow, None, columns)

    def scannerOpenWithStop(self, tableName, startRow, stopRow, columns, attributes):
        return self._open(tableName, startRow, stopRow, columns)

    def scannerOpenWithPrefix(self, tableName, startAndPrefix, columns, attributes):
        sid = self._open(tableName, startAndPrefix, None, columns)
        with self._lock:
            sc = self._scanners[sid]
            sc.keys = [k for k in sc.keys if k.startswith(startAndPrefix)]
        return sid

    def scannerGetList(self, id, nbRows):
        with self._lock:
            sc = self._scanners.get(id)
            if sc is None:
                raise hbase.IllegalArgument(message=f"unknown scanner id {id}")
            table = self._table(sc.table)
            out = []
            while sc.pos < len(sc.keys) and len(out) < max(nbRows, 1):
                key = sc.keys[sc.pos]
                sc.pos += 1
                cells = self._select(table.rows.get(key, {}), sc.columns)
                if cells:  # rows deleted since the scan opened are skipped
                    out.append(self._result(key, cells))
            return out

    def scannerGet(self, id):
        return self.scannerGetList(id, 1)

    def scannerClose(self, id):
        with self._lock:
            if self._scanners.pop(id, None) is None:
                raise hbase.IllegalArgument(message=f"unknown scanner id {id}")


class _ExclusiveServerSocket(TServerSocket):
    """thriftpy2 sets SO_REUSEPORT, which would let two doubles share a port (and split the
    clients between two unrelated in-memory stores); a busy port must fail to bind instead."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ready = threading.Event()

    def _init_sock(self):
        sock = socket.socket(self.socket_family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # quick restart on the same port
        self.sock = sock

    def listen(self):
        super().listen()
        self.ready.set()  # bound and listening: clients may connect now


def build_server(
    host: str = "127.0.0.1", port: int = 9090, transport: str = "buffered", protocol: str = "binary"
) -> TThreadedServer:
    """A thriftpy2 TThreadedServer serving a fresh in-memory double; call `.serve()` to run it.

    `server.trans.ready` is set once the port is bound, e.g. when serving from a thread.
    """
    return TThreadedServer(
        TProcessor(hbase.Hbase, HBaseDoubleHandler()),
        _ExclusiveServerSocket(host=host, port=port, client_timeout=None),
        iprot_factory=_PROTOCOLS[protocol](),
        itrans_factory=_TRANSPORTS[transport](),
        daemon=True,  # connection threads must not keep the process alive
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HBase Thrift v1 TEST DOUBLE (in memory, tests only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--transport", choices=sorted(_TRANSPORTS), default="buffered")
    parser.add_argument("--protocol", choices=sorted(_PROTOCOLS), default="binary")
    args = parser.parse_args(argv)
    server = build_server(args.host, args.port, args.transport, args.protocol)
    # Serve from a thread so the "listening" line is printed only once the port is bound:
    # tests wait for it. A bind error ends the thread and the process with status 1.
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    while thread.is_alive() and not server.trans.ready.wait(0.05):
        pass
    if not server.trans.ready.is_set():
        raise SystemExit(f"hbase thrift test double could not listen on {args.host}:{args.port}")
    print(f"hbase thrift test double listening on {args.host}:{args.port}", flush=True)
    thread.join()


if __name__ == "__main__":
    main()
