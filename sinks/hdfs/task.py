"""HdfsSinkTask: change events -> Avro/Parquet files under <root>/<table>/dt=YYYY-MM-DD/.

HDFS files are an append-only change log: every event is one row (deletes too, with op 'd'
and the before image), plus `_op`, `_ts_ms`, `_position` (source position as JSON), `_sequence`
(the source's row version), `_partition` and `_offset`. Readers take the row with the highest
`_sequence` per key.

Batches arrive as frames (columnar, from SinkRunner: the row image, op, ts_ms, source,
`_partition`, `_offset`) or as records (`put`, schema inferred per batch); either way each
batch becomes one Arrow chunk per file, and a file is the concatenation of its chunks.

Exactly-once files: rows are grouped per (topic, partition, table, day); a file's name is
`<topic>+<partition>+<first offset>+<last offset>.<ext>`, written under <root>/_tmp/ and
renamed into place. After a crash the task skips offsets already covered by committed files
of the same directory, and a rename onto an existing name is dropped, so a replay never
commits the same rows twice. An event the topic carries twice (a runner or source replaying
what it had produced: same key and `source.sequence`, later offset) is written once:
`sinks.hdfs.recent` keeps the pairs written at the last `dedupe_offsets` offsets of each partition.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import posixpath
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sinks.base import FatalSinkError, SinkFrame, SinkRecord, SinkTask
from sinks.hdfs.committer import ClosedFile, Committer
from sinks.hdfs.encode import EXTENSIONS, encode
from sinks.hdfs.recent import OFFSET, SEQUENCE, RecentWrites
from sinks.hdfs.schema import avro_name, to_arrow
from sinks.hdfs.settings import HdfsSinkSettings
from sinks.hdfs.store import INPROGRESS, HdfsStore, file_name, parse_name

log = logging.getLogger(__name__)

DirKey = tuple[str, int, str, str]  # topic, partition, table, day
_DAY_MS = 86_400_000
_WINDOW_READERS = 8  # WebHDFS reads in flight while a directory's dedupe window is seeded
_to_json = json.JSONEncoder(separators=(",", ":"), default=str).encode  # same text as polars' json_encode
_META = ("_op", "_ts_ms", "_position", SEQUENCE, "_partition", OFFSET)


@dataclass
class _OpenFile:
    """Rows of one future file, as Arrow chunks (one per batch that reached it)."""

    first: int
    opened: float = field(default_factory=time.monotonic)
    chunks: list[pa.Table] = field(default_factory=list)
    last: int = -1
    nbytes: int = 0  # Arrow bytes buffered: the size estimate, scaled by the learnt encoded ratio


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
        # highest offset buffered per directory (a partition's offsets interleave across directories)
        self._accepted: dict[DirKey, int] = {}
        self._recent: dict[tuple[str, int, str], RecentWrites] = {}  # per (topic, partition, table)
        self.duplicates_skipped = 0
        self._days: dict[int, str] = {}
        self._bytes_ratio = 1.0  # encoded bytes / buffered Arrow bytes, learnt from closed files
        self.files_committed = 0
        self.bytes_committed = 0

    # -- SinkTask ------------------------------------------------------------------------
    columnar = True  # SinkRunner hands frames (put_frames); put(records) stays for direct callers
    # What _frame_rows reads: the source's other strings and the transaction are parsed, not built.
    frame_columns = ["before", "after", "op", "ts_ms", "source.table", "source.position", "source.sequence"]

    def put_frames(self, frames: list[SinkFrame]) -> None:
        self._roll_aged()  # before: new rows must not extend a file that is already too old
        accepted = dict(self._accepted)  # a retried put skips what the first attempt buffered
        for sf in frames:
            rows = self._frame_rows(sf)
            for (partition, table, day), group in rows.group_by("_partition", "_table", "_day", maintain_order=True):
                key = (sf.topic, int(partition), str(table).replace("/", "_"), str(day))
                chunk = group.drop("_table", "_day").to_arrow()
                self._add(key, chunk, group.get_column("_offset"), accepted, list(sf.key or ()))
        self._roll_aged()

    def put(self, records: list[SinkRecord]) -> None:
        self._roll_aged()
        accepted = dict(self._accepted)
        groups: dict[DirKey, list[SinkRecord]] = {}
        key_fields = list(next((r.key for r in records if r.key), None) or ())
        for rec in records:
            v = rec.value
            src = v.get("source") or {}
            row = (v.get("before") if rec.op == "d" else v.get("after")) or rec.key or {}
            table = (src.get("table") or rec.topic.rsplit(".", 1)[-1]).replace("/", "_")
            groups.setdefault((rec.topic, rec.partition, table, self._day(row, v)), []).append(rec)
        for key, recs in groups.items():
            offsets = pl.Series([r.offset for r in recs], dtype=pl.Int64)
            rows = [(r.value.get("before") if r.op == "d" else r.value.get("after")) or r.key or {} for r in recs]
            meta = {
                "_op": pa.array([r.op for r in recs], pa.string()),
                "_ts_ms": pa.array([r.value.get("ts_ms") for r in recs], pa.int64()),
                "_position": _positions_json([(r.value.get("source") or {}).get("position") for r in recs]),
                SEQUENCE: pa.array([(r.value.get("source") or {}).get("sequence") for r in recs], pa.int64()),
                "_partition": pa.array([key[1]] * len(recs), pa.int32()),
                "_offset": offsets.to_arrow(),
            }
            try:
                chunk = to_arrow(rows, meta)
            except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
                raise self._unencodable(key, int(offsets.min()), int(offsets.max()), exc) from exc
            self._add(key, chunk, offsets, accepted, key_fields)
        self._roll_aged()

    def flush(self) -> None:
        self.flush_started()(None)

    def flush_started(self) -> Callable[[float | None], bool]:
        """Closes every open file and queues it for upload; the wait returned blocks until they
        are committed (the runtime puts the next batch meanwhile: upload and encoding overlap)."""
        for key in list(self._open):
            self._close(key)
        return functools.partial(self._committer.drain, self._committer.submitted)

    def close(self) -> None:
        # Uncommitted rows are dropped on purpose: their offsets were not committed either.
        self._open.clear()
        self._committer.discard()
        self.store.close()

    # -- frames ----------------------------------------------------------------------------
    def _frame_rows(self, sf: SinkFrame) -> pl.DataFrame:
        """The file rows of a frame: the row image's columns, the metadata columns, and the
        helper columns _table and _day that place each row."""
        f = sf.frame
        image = pl.when(pl.col("op") == "d").then(pl.col("before")).otherwise(pl.col("after"))
        fields = [fl.name for fl in f.schema["after"].fields if fl.name not in _META]  # metadata wins on a clash
        out = f.select(
            *(image.struct.field(n).alias(n) for n in fields),
            pl.col("op").cast(pl.Utf8).alias("_op"),
            pl.col("ts_ms").alias("_ts_ms"),
            pl.col("source").struct.field("position").alias("_position"),
            pl.col("source").struct.field("sequence").cast(pl.Int64).alias(SEQUENCE),
            pl.col("_partition").cast(pl.Int32),
            pl.col("_offset").cast(pl.Int64),
            pl.col("source").struct.field("table").fill_null(sf.topic.rsplit(".", 1)[-1]).alias("_table"),
        )
        out = out.with_columns(self._day_expr(out)).with_columns(
            # Types a file keeps as text, as the record path does: decimals exactly, times, enums.
            pl.col(pl.Decimal, pl.Time, pl.Categorical, pl.Enum).cast(pl.Utf8)
        )
        return out

    def _day_expr(self, rows: pl.DataFrame) -> pl.Expr:
        from_ts = pl.from_epoch(pl.col("_ts_ms"), time_unit="ms").dt.strftime("%Y-%m-%d")
        name = self.settings.date_field
        if name is None or name not in rows.columns:
            return from_ts.alias("_day")
        dtype = rows.schema[name]
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            day = (col.dt.convert_time_zone("UTC") if dtype.time_zone else col).dt.strftime("%Y-%m-%d")
        elif dtype == pl.Date:
            day = col.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Utf8:
            day = pl.when(col.str.contains(r"^\d{4}-\d{2}-\d{2}")).then(col.str.slice(0, 10))
        elif dtype.is_integer() or dtype.is_float():
            day = pl.from_epoch(col.cast(pl.Int64), time_unit="ms").dt.strftime("%Y-%m-%d")
        else:
            return from_ts.alias("_day")
        return pl.coalesce(day, from_ts).alias("_day")

    # -- buffering -----------------------------------------------------------------------
    def _add(self, key: DirKey, chunk: pa.Table, offsets: pl.Series, accepted: dict, key_fields: list[str]) -> None:
        """Buffer a chunk of one directory's rows (offsets ascending), skipping rows already in
        committed files (a replay) or buffered before this put (`accepted`: a retried put), and
        events whose (key, sequence) was written lately (a topic's duplicate); roll files at roll_bytes."""
        recent = self._recent_of(key, key_fields)
        if recent is not None and not set(key_fields) <= set(chunk.column_names):
            recent = None  # a key field the row image lacks: nothing to compare by
        if key not in self._committed_upto:
            self._load_dir(key, recent)
        floor = max(self._committed_upto[key], accepted.get(key, -1))
        first, last = int(offsets[0]), int(offsets[-1])
        if first <= floor < last:
            keep = (offsets > floor).arg_true()
            chunk, first = chunk.take(keep.to_arrow()), int(offsets[int(keep[0])])
        if last > floor and recent is not None:
            chunk = self._unseen(chunk, recent)
            first = int(chunk.column(OFFSET)[0].as_py()) if chunk.num_rows else first
        if last <= floor or not chunk.num_rows:
            self._accepted[key] = max(self._accepted.get(key, -1), last)  # nothing of it to write
            return
        # `_accepted` (what a retried put skips) and the window grow with each part buffered: a
        # roll below may raise (an earlier upload failed) and leave the rest for the retry.
        while chunk.num_rows:
            f = self._open.get(key)
            if f is None:
                f = self._open[key] = _OpenFile(first=first)
            room = self.settings.roll_bytes / self._bytes_ratio - f.nbytes
            per_row = chunk.nbytes / chunk.num_rows
            take = chunk.num_rows if per_row * chunk.num_rows <= room else max(1, int(room / per_row))
            part = chunk.slice(0, take)
            f.chunks.append(part)
            f.nbytes += part.nbytes
            f.last = int(part.column("_offset")[take - 1].as_py())
            self._accepted[key] = max(self._accepted.get(key, -1), f.last if chunk.num_rows > take else last)
            if recent is not None:
                recent.remember(self._ids(part, recent))
            chunk = chunk.slice(take)
            if chunk.num_rows:
                first = int(chunk.column("_offset")[0].as_py())
            if f.nbytes >= self.settings.roll_bytes / self._bytes_ratio:
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
        try:
            rows = f.chunks[0] if len(f.chunks) == 1 else pa.concat_tables(f.chunks, promote_options="permissive")
            data = encode(s.format, rows, table, avro_codec=s.avro_codec, parquet_compression=s.parquet_compression)
        except (pa.ArrowException, pl.exceptions.PolarsError, OverflowError, ValueError, TypeError) as exc:
            # The same rows would fail again on every retry (e.g. an integer beyond 64 bits).
            raise self._unencodable(key, f.first, f.last, exc) from exc
        if f.nbytes:
            self._bytes_ratio = max(len(data) / f.nbytes, 0.05)
        name = file_name(topic, partition, f.first, f.last, self._ext)
        self._committer.submit(ClosedFile(key, name, f.last, data, len(data)))

    def _unencodable(self, key: DirKey, first: int, last: int, exc: Exception) -> FatalSinkError:
        topic, partition, table, _ = key
        return FatalSinkError(
            f"cannot encode {table} rows at offsets {first}-{last} "
            f"of {topic}[{partition}] as {self.settings.format}: {exc}"
        )

    def _committed(self, f: ClosedFile, renamed: bool) -> None:
        """Runs on the committer thread; plain int/dict updates are safe under the GIL."""
        if renamed:
            self.files_committed += 1
            self.bytes_committed += f.size
        self._committed_upto[f.key] = max(self._committed_upto.get(f.key, -1), f.last_offset)

    def _load_dir(self, key: DirKey, recent: RecentWrites | None) -> None:
        """First touch of a directory: learn which offsets it already holds, seed the window of
        recent writes from its files' tail (a copy arriving after a restart is still caught);
        drop stale temps."""
        topic, partition, table, day = key
        final_dir, ours = self.store.final_dir(table, day), []
        for name in self.store.list_names(final_dir):
            p = parse_name(name)
            if p and p[0] == topic and p[1] == partition:
                ours.append((p[3], name))
        upto = max((last for last, _ in ours), default=-1)
        if recent is not None:
            above = upto - recent.span
            for rows in self._window_rows(
                [posixpath.join(final_dir, n) for last, n in ours if last > above], recent, above
            ):
                recent.seed(rows)
        temp_dir = self.store.temp_dir(table, day)
        for name in self.store.list_names(temp_dir):
            p = parse_name(name)
            # One task owns a partition, so its leftovers are from a crashed attempt.
            if p and p[0] == topic and p[1] == partition and name.endswith(INPROGRESS):
                self.store.delete(posixpath.join(temp_dir, name))
        self._committed_upto[key] = upto

    # -- duplicates ----------------------------------------------------------------------
    def _recent_of(self, key: DirKey, key_fields: list[str]) -> RecentWrites | None:
        """The window of the directory's table in its partition; None when there is nothing to
        compare (dedupe off, or a table without a key: equal rows there are different events)."""
        if not key_fields or not self.settings.dedupe_offsets:
            return None
        topic, partition, table, _ = key
        recent = self._recent.get((topic, partition, table))
        if recent is None or recent.key_fields != key_fields:
            recent = self._recent[(topic, partition, table)] = RecentWrites(key_fields, self.settings.dedupe_offsets)
        return recent

    @staticmethod
    def _ids(chunk: pa.Table, recent: RecentWrites) -> pl.DataFrame:
        ids = pl.from_arrow(chunk.select([*recent.key_fields, SEQUENCE, OFFSET]))
        assert isinstance(ids, pl.DataFrame)
        return ids

    def _unseen(self, chunk: pa.Table, recent: RecentWrites) -> pa.Table:
        """The chunk without the events whose (key, sequence) was written lately or comes earlier in it."""
        fresh = recent.unseen(self._ids(chunk, recent))
        kept = int(fresh.sum())
        if kept == chunk.num_rows:
            return chunk
        self.duplicates_skipped += chunk.num_rows - kept
        return chunk.filter(fresh.to_arrow())

    def _window_rows(self, paths: list[str], recent: RecentWrites, above: int) -> Iterator[pl.DataFrame]:
        """The (key, sequence) pairs past offset `above` of committed files, read side by side: a
        window of many small files read one after the other held a restarted sink's first put (and
        so the release of its partitions) for tens of seconds on a loaded machine."""
        if not paths:
            return
        with ThreadPoolExecutor(max_workers=min(_WINDOW_READERS, len(paths)), thread_name_prefix="hdfs-seed") as pool:
            for rows in pool.map(functools.partial(self._window_of, recent=recent, above=above), paths):
                if rows is not None:
                    yield rows

    def _window_of(self, path: str, recent: RecentWrites, above: int) -> pl.DataFrame | None:
        """The (key, sequence) pairs of a committed file's rows past offset `above`."""
        names = {n: avro_name(n) if self.settings.format == "avro" else n for n in recent.key_fields}
        wanted = [*names.values(), SEQUENCE, OFFSET]
        data = self.store.read(path)
        try:
            if self.settings.format == "avro":
                rows = pl.read_avro(io.BytesIO(data), columns=wanted)
            else:
                found = pl.from_arrow(pq.read_table(io.BytesIO(data), columns=wanted))
                assert isinstance(found, pl.DataFrame)
                rows = found
        except (pl.exceptions.PolarsError, pa.ArrowException, KeyError, ValueError) as exc:
            # e.g. a file written before files carried _sequence: nothing to seed from it
            log.info("%s: no (key, sequence) to remember (%s)", path, exc)
            return None
        rows = rows.rename({v: k for k, v in names.items() if v != k})
        return rows.filter(pl.col(OFFSET) > above)

    # -- partitioning --------------------------------------------------------------------
    def _day(self, row: dict[str, Any], value: dict[str, Any]) -> str:
        field_name = self.settings.date_field
        if field_name is not None:
            d = row.get(field_name)
            if isinstance(d, datetime):
                return (d.astimezone(UTC) if d.tzinfo else d).date().isoformat()
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
            day = self._days[n] = datetime.fromtimestamp(n * 86_400, tz=UTC).date().isoformat()
        return day
