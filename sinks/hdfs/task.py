"""HdfsSinkTask: change events -> Avro/Parquet files under <root>/<table>/dt=YYYY-MM-DD/.

HDFS files are an append-only change log: every event is one row (deletes too, with op 'd'
and the before image), plus `_op`, `_ts_ms`, `_position` (source position as JSON),
`_partition` and `_offset`. Readers take the latest row per key.

Exactly-once files: rows are grouped per (topic, partition, table, day); a file's name is
`<topic>+<partition>+<first offset>+<last offset>.<ext>`, written under <root>/_tmp/ and
renamed into place. After a crash the task skips offsets already covered by committed files
of the same directory, and a rename onto an existing name is dropped, so a replay never
commits the same rows twice.
"""
from __future__ import annotations

import json
import logging
import posixpath
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import polars as pl
import pyarrow as pa

from sinks.base import FatalSinkError, SinkRecord, SinkTask
from sinks.hdfs.committer import ClosedFile, Committer
from sinks.hdfs.encode import EXTENSIONS, encode
from sinks.hdfs.schema import to_arrow
from sinks.hdfs.settings import HdfsSinkSettings
from sinks.hdfs.store import INPROGRESS, HdfsStore, file_name, parse_name

log = logging.getLogger(__name__)

DirKey = tuple[str, int, str, str]  # topic, partition, table, day
_DAY_MS = 86_400_000
_to_json = json.JSONEncoder(separators=(",", ":"), default=str).encode  # same text as polars' json_encode
_SIZE_CHECK_EVERY = 256  # rows between size estimates (a repr per row would cost too much)


@dataclass
class _OpenFile:
    """Rows of one future file, kept as columns of metadata plus the untouched row dicts."""
    first: int
    opened: float = field(default_factory=time.monotonic)
    rows: list[dict[str, Any]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    ts: list[int | None] = field(default_factory=list)
    positions: list[Any] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    sample_bytes: float = 0.0  # mean repr length of sampled rows


def _positions_json(positions: list[Any]) -> pa.Array:
    """Source positions as compact JSON text (one connector per file, so one shape: polars is quick)."""
    first = next((p for p in positions if p is not None), None)
    if isinstance(first, dict) and first:
        keys = first.keys()
        if all(p is None or (isinstance(p, dict) and p.keys() == keys) for p in positions):
            try:
                return pl.Series(positions).struct.json_encode().to_arrow()
            except Exception:  # noqa: BLE001 - mixed value types: the slow path below handles them
                pass
    return pa.array([None if p is None else _to_json(p) for p in positions], pa.string())


class HdfsSinkTask(SinkTask):
    def __init__(self, settings: HdfsSinkSettings | dict[str, Any]) -> None:
        self.settings = settings if isinstance(settings, HdfsSinkSettings) else HdfsSinkSettings(**settings)
        s = self.settings
        self.batch_bounds = (s.commit_rows, s.commit_seconds)
        self.store = HdfsStore(s.url, s.user, s.root, s.timeout_s)
        self._ext = EXTENSIONS[s.format]
        self._open: dict[DirKey, _OpenFile] = {}
        # Encoded files wait for upload up to about two rolls' worth (bounded memory).
        self._committer = Committer(self.store, self._committed, max_buffered_bytes=2 * s.roll_bytes)
        self._committed_upto: dict[DirKey, int] = {}  # highest offset already in committed files
        self._accepted: dict[tuple[str, int], int] = {}  # highest offset buffered, per partition
        self._days: dict[int, str] = {}
        self._bytes_ratio = 1.0  # encoded bytes / repr bytes, learnt from closed files
        self.files_committed = 0
        self.bytes_committed = 0

    # -- SinkTask ------------------------------------------------------------------------
    def put(self, records: list[SinkRecord]) -> None:
        self._roll_aged()  # before: new rows must not extend a file that is already too old
        for rec in records:
            tp = (rec.topic, rec.partition)
            if rec.offset <= self._accepted.get(tp, -1):
                continue  # a retried put: already buffered
            v = rec.value
            op = v["op"]
            src = v.get("source") or {}
            row = (v.get("before") if op == "d" else v.get("after")) or rec.key or {}
            table = (src.get("table") or rec.topic.rsplit(".", 1)[-1]).replace("/", "_")
            key = (rec.topic, rec.partition, table, self._day(row, v))
            if key not in self._committed_upto:
                self._load_dir(key)
            self._accepted[tp] = rec.offset  # before the roll below: it may raise
            if rec.offset > self._committed_upto[key]:
                f = self._open.get(key)
                if f is None:
                    f = self._open[key] = _OpenFile(first=rec.offset)
                f.rows.append(row)
                f.ops.append(op)
                f.ts.append(v.get("ts_ms"))
                f.positions.append(src.get("position"))
                f.offsets.append(rec.offset)
                n = len(f.rows)
                if n == 1 or n % _SIZE_CHECK_EVERY == 0:
                    self._maybe_roll(key, f, row, n)
        self._roll_aged()

    def flush(self) -> None:
        for key in list(self._open):
            self._close(key)
        self._committer.drain()

    def close(self) -> None:
        # Uncommitted rows are dropped on purpose: their offsets were not committed either.
        self._open.clear()
        self._committer.discard()
        self.store.close()

    # -- buffering -----------------------------------------------------------------------
    def _maybe_roll(self, key: DirKey, f: _OpenFile, row: dict[str, Any], n: int) -> None:
        f.sample_bytes += (len(repr(row)) - f.sample_bytes) / (1 + n // _SIZE_CHECK_EVERY)
        if n * f.sample_bytes * self._bytes_ratio >= self.settings.roll_bytes:
            self._close(key)

    def _roll_aged(self) -> None:
        now = time.monotonic()
        for key, f in list(self._open.items()):
            if now - f.opened >= self.settings.roll_seconds:
                self._close(key)

    def _close(self, key: DirKey) -> None:
        f = self._open.pop(key)
        topic, partition, table, day = key
        s = self.settings
        n = len(f.rows)
        meta = {"_op": pa.array(f.ops, pa.string()), "_ts_ms": pa.array(f.ts, pa.int64()),
                "_position": _positions_json(f.positions), "_partition": pa.array([partition] * n, pa.int32()),
                "_offset": pa.array(f.offsets, pa.int64())}
        try:
            data = encode(s.format, to_arrow(f.rows, meta), table, avro_codec=s.avro_codec,
                          parquet_compression=s.parquet_compression)
        except (pa.ArrowException, pl.exceptions.PolarsError, OverflowError, ValueError, TypeError) as exc:
            # The same rows would fail again on every retry (e.g. an integer beyond 64 bits).
            raise FatalSinkError(f"cannot encode {table} rows at offsets {f.first}-{f.offsets[-1]} "
                                 f"of {topic}[{partition}] as {s.format}: {exc}") from exc
        if f.sample_bytes > 0:
            self._bytes_ratio = len(data) / (n * f.sample_bytes)
        name = file_name(topic, partition, f.first, f.offsets[-1], self._ext)
        self._committer.submit(ClosedFile(key, name, f.offsets[-1], data, len(data)))

    def _committed(self, f: ClosedFile, renamed: bool) -> None:
        """Runs on the committer thread; plain int/dict updates are safe under the GIL."""
        if renamed:
            self.files_committed += 1
            self.bytes_committed += f.size
        self._committed_upto[f.key] = max(self._committed_upto.get(f.key, -1), f.last_offset)

    def _load_dir(self, key: DirKey) -> None:
        """First touch of a directory: learn which offsets it already holds; drop stale temps."""
        topic, partition, table, day = key
        upto = -1
        for name in self.store.list_names(self.store.final_dir(table, day)):
            p = parse_name(name)
            if p and p[0] == topic and p[1] == partition:
                upto = max(upto, p[3])
        temp_dir = self.store.temp_dir(table, day)
        for name in self.store.list_names(temp_dir):
            p = parse_name(name)
            # One task owns a partition, so its leftovers are from a crashed attempt.
            if p and p[0] == topic and p[1] == partition and name.endswith(INPROGRESS):
                self.store.delete(posixpath.join(temp_dir, name))
        self._committed_upto[key] = upto

    # -- partitioning --------------------------------------------------------------------
    def _day(self, row: dict[str, Any], value: dict[str, Any]) -> str:
        field_name = self.settings.date_field
        if field_name is not None:
            d = row.get(field_name)
            if isinstance(d, datetime):
                return (d.astimezone(timezone.utc) if d.tzinfo else d).date().isoformat()
            if isinstance(d, date):
                return d.isoformat()
            if isinstance(d, str) and len(d) >= 10 and d[4] == "-" and d[7] == "-":
                return d[:10]
            if isinstance(d, (int, float)) and not isinstance(d, bool):
                return self._day_of_ms(int(d))
        ts = value.get("ts_ms")
        if ts is None:
            ts = (value.get("source") or {}).get("ts_ms")
        return self._day_of_ms(int(ts) if ts is not None else int(time.time() * 1000))

    def _day_of_ms(self, ts_ms: int) -> str:
        n = ts_ms // _DAY_MS
        day = self._days.get(n)
        if day is None:
            day = self._days[n] = datetime.fromtimestamp(n * 86_400, tz=timezone.utc).date().isoformat()
        return day
