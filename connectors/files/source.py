"""File source (AGG-05): every matching file of a directory (local, FTP, SFTP, HDFS) read exactly once.

Tracking lives in the stored offsets, one partition per file (`file:<path>`): size, mtime,
sha256, the import id and the last row published. Offsets are stored only after the broker
acknowledged the rows, so a restart resumes a half-read file after its last durable row, and a
finished file (`done`) is never read again. A file whose size or mtime changed after it was
read is handled by `on_change`: `reread` imports it again as a new import (its sha256 is checked
first: identical content is only re-stamped), `ignore` records a `changed_ignored` import report
and leaves it. Each row is an op `r` event; position = file, row, line; sequence =
import_id * 1e9 + row (monotonic per source). A batch's good rows are typed in columns and
handed over as one RowFrame (connectors.files.columnar); rows that fail parsing or typing become
RejectedEvents (quarantine topic, with file, line and reason) -- run this task with
`connectors.runtime.SourceRuntime`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from connectors.base import CapturedTable, ChangeEvent, RejectedEvent, RowFrame, SourceBatch, SourceSettings, SourceTask
from connectors.files.children import ChildRows, ChildTable, child_problems
from connectors.files.coerce import ColumnDef, RowError, RowTyper, string_columns
from connectors.files.columnar import type_batch
from connectors.files.formats import FileFormatError, FormatConfig, Record, read_records
from connectors.files.reports import ImportReports
from connectors.files.stores import FileInfo, StoreConfig, make_store

log = logging.getLogger(__name__)
ROWS_PER_IMPORT = 1_000_000_000
# Names writers give files while they write or copy them (uploads, office lock files, rsync, browsers).
TEMPORARY_NAMES = ("*.tmp", "*.temp", "*.part", "*.partial", "*.filepart", "*.crdownload", "*.swp", "~$*", ".*")
RAW_LIMIT = 64 * 1024  # bytes of a refused row kept in its quarantine record and report


@dataclass
class FileRejectedEvent(RejectedEvent):
    """A refused file row with the record as it stood in the file (bounded): `raw` its original
    bytes, `raw_text` decoded, `code`/`params` the reason's catalogue entry."""

    raw: bytes | None = None
    raw_text: str | None = None
    encoding: str | None = None
    truncated: bool = False
    code: str = "other"
    params: dict | None = None


def raw_of(raw: bytes | str | None, encoding: str | None) -> tuple[bytes | None, str | None, bool]:
    """(original bytes, decoded text, truncated) of a record's raw content, bounded by RAW_LIMIT."""
    if raw is None:
        return None, None, False
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
        text = raw
    else:
        data = raw
        text = raw.decode(encoding or "utf-8", "replace") if encoding else raw.decode("utf-8", "replace")
    truncated = len(data) > RAW_LIMIT
    if truncated:
        data = data[:RAW_LIMIT]
        text = text[:RAW_LIMIT]
    return data, text.rstrip("\r\n"), truncated


class FileSourceConfig(SourceSettings):
    name: str = Field(description="connector name; offsets and import reports are stored under it")
    system: str
    table: str
    db_schema: str | None = None
    store: StoreConfig
    format: FormatConfig = Field(default_factory=FormatConfig)
    columns: list[ColumnDef] = Field(
        default_factory=list,
        description="typed columns; empty = all strings, named by the file's header / first record",
    )
    mode: str = Field("poll", pattern="^(poll|once)$", description="once = list the directory one time only")
    on_change: str = Field(
        "reread",
        pattern="^(reread|ignore|append)$",
        description="a read file changed: reread it whole as a new import, ignore it, or (csv, tsv, jsonl, "
        "fixed) append: when its old bytes are unchanged, read only what was added (a new import; appends "
        "must end at a line end), else read it whole",
    )
    bad_row_ratio: float = Field(
        0.01,
        ge=0,
        le=1,
        description="an import whose bad rows exceed this share of its rows ends `on_bad_ratio` and "
        "a message goes to the connector's tenant",
    )
    on_bad_ratio: str = Field("done_with_errors", pattern="^(done_with_errors|failed)$")
    reread_on_format_change: bool = Field(
        False, description="import a finished file again when `format`/`columns` changed since it was read"
    )
    settle_seconds: float = Field(
        2.0, ge=0, description="skip files modified this recently (still being written); not with ready_marker"
    )
    ready_marker: str | None = Field(
        None,
        description="a file is complete (read) only once a marker file exists next to it: `<file><marker>` "
        "or `<file without its extension><marker>`, e.g. '.ok' (a.csv.ok or a.ok) or '.done'; markers "
        "are never read as data",
    )
    ignore_patterns: list[str] = Field(
        default_factory=lambda: list(TEMPORARY_NAMES),
        description="file names never read: temporary names of files still being written or copied",
    )
    children: list[ChildTable] = Field(
        default_factory=list,
        description="json/jsonl: arrays inside records as rows of child tables with the parent's key",
    )
    batch_size: int = Field(5000, gt=0)
    control_db_url: str = Field(description="control DB for import reports (the runtime's)")

    @model_validator(mode="after")
    def _children_can_work(self):
        problems = child_problems(self.children, self.columns, self.table, self.format.kind)
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass
class _Reading:
    info: FileInfo
    import_id: int
    checksum: str
    stream: BinaryIO
    records: Iterator[Record]
    skip: int = 0  # rows already durable (resume)
    ok: int = 0
    bad: int = 0
    row: int = 0
    errors: list[dict] = field(default_factory=list)  # bad rows since the last commit
    notes: dict = field(default_factory=dict)  # what the reader decided (header, skipped rows, encoding)
    append: dict | None = None  # on_change append: {from: byte, lines: lines before it, header: lines of header}
    position_head: str = field(init=False)  # '{"file": <path>, "row": ' of every position, encoded once

    def __post_init__(self) -> None:
        self.position_head = f'{{"file": {json.dumps(self.info.path)}, "row": '


def format_fingerprint(config: FileSourceConfig) -> str:
    """Identifies how files are read (format and columns): a finished file read under another one
    is imported again when `reread_on_format_change` says so."""
    layout = {
        "format": config.format.model_dump(mode="json"),
        "columns": [c.model_dump(mode="json") for c in config.columns],
        **({"children": [c.model_dump(mode="json") for c in config.children]} if config.children else {}),
    }
    return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:16]


def _bounded_notes(notes: dict) -> dict:
    """The reader's notes as kept in the offset and report (skipped rows: the first 100)."""
    return {k: v for k, v in notes.items() if v not in (None, [], {})}


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.file_digest(stream, "sha256").hexdigest()
    stream.seek(0)
    return digest


class FileSourceTask(SourceTask):
    def __init__(self, config: FileSourceConfig):
        self.config = config
        self.name = config.name
        self.store = make_store(config.store)
        self.reports = ImportReports(config.control_db_url)
        self.tracked: dict[str, dict[str, Any]] = {}
        self.current: _Reading | None = None
        self._listing: list[FileInfo] | None = None
        self._pending: dict[int, list[dict]] = {}  # import id -> bad rows to add to its report
        self._fixed = tuple(c.spec() for c in config.columns) if config.columns else None
        self._typer = (
            RowTyper(
                self._fixed,
                {c.name: c.source for c in config.columns if c.source},
                {c.name: c.format for c in config.columns},
                defs=config.columns,
            )
            if self._fixed
            else None
        )
        self._declared = {c.source or c.name for c in config.columns} or None
        self.layout_id = format_fingerprint(config)
        self.force: set[str] = set()  # paths to import again whatever their offset says (POST /imports force)
        self._table = self._captured(self._fixed or string_columns(["raw"]))
        keys = [c for c in self._fixed or () if c.primary_key]
        self._children = [ChildRows(c, keys, config.system, config.db_schema) for c in config.children]

    def _captured(self, columns) -> CapturedTable:
        return CapturedTable(self.config.system, self.config.table, tuple(columns), None, self.config.db_schema)

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.tracked = {p[5:]: dict(o) for p, o in offsets.items() if p.startswith("file:")}

    # -- choosing the next file ------------------------------------------------------------
    def _candidates(self) -> list[FileInfo]:
        if self.config.mode == "once":
            if self._listing is None:
                self._listing = self._listed()
            return self._listing
        return self._listed()

    def _listed(self) -> list[FileInfo]:
        """The store's files without temporary names and marker files."""
        marker, ignore = self.config.ready_marker, self.config.ignore_patterns
        out = []
        for info in self.store.list():
            base = info.path.rsplit("/", 1)[-1]
            if any(fnmatch.fnmatchcase(base, p) for p in ignore) or (marker and base.endswith(marker)):
                continue
            out.append(info)
        return out

    def _ready(self, info: FileInfo, now: float) -> bool:
        """Complete: its marker exists (ready_marker), else not modified for settle_seconds."""
        marker = self.config.ready_marker
        if marker:
            stem = info.path.rsplit(".", 1)[0] if "." in info.path.rsplit("/", 1)[-1] else info.path
            return self.store.exists(info.path + marker) or self.store.exists(stem + marker)
        return not (self.config.settle_seconds and now - info.mtime < self.config.settle_seconds)

    def _next(self) -> tuple[_Reading | None, SourceBatch | None]:
        """The next file to read, or an offsets-only batch recording a decision about a changed file."""
        now = time.time()
        for info in self._candidates():
            old = previous = self.tracked.get(info.path)
            if old is not None and old.get("done") and old["size"] == info.size and old["mtime"] == info.mtime:
                if info.path not in self.force and not (
                    self.config.reread_on_format_change and old.get("layout", self.layout_id) != self.layout_id
                ):
                    continue  # read already: no marker lookup
            if not self._ready(info, now):
                continue
            if info.path in self.force:
                self.force.discard(info.path)
                old = None  # a new import, whatever was read before
            elif (
                old is not None
                and old.get("done")
                and self.config.reread_on_format_change
                and old.get("layout", self.layout_id) != self.layout_id
            ):
                old = None  # read with another format or columns: read again under the current ones
            same = old is not None and old["size"] == info.size and old["mtime"] == info.mtime
            if same and old.get("done"):
                continue
            if old is not None and not same and old.get("ignored") == [info.size, info.mtime]:
                continue
            stream = self.store.open(info)
            checksum = _sha256(stream)
            if same:  # a half-read file: resume after the last durable row
                return self._open(info, stream, checksum, old["import_id"], old["row"], old, old.get("append")), None
            if old is not None and old.get("done") and old.get("checksum") == checksum:
                stream.close()  # touched or re-uploaded, same bytes: nothing new to read
                return None, self._offsets_only(info, {**old, "size": info.size, "mtime": info.mtime})
            if old is not None and old.get("done") and self.config.on_change == "append":
                grown = self._appended(info, stream, old)
                if grown is not None:
                    import_id = self.reports.begin(self.name, info.path, info.size, info.mtime, checksum)
                    return self._open(info, stream, checksum, import_id, 0, None, grown), None
            if old is not None and self.config.on_change == "ignore":
                stream.close()
                msg = f"changed after import {old['import_id']} (on_change: ignore)"
                log.warning("%s: %s", info.path, msg)
                self.reports.begin(self.name, info.path, info.size, info.mtime, checksum, "changed_ignored", msg)
                return None, self._offsets_only(info, {**old, "ignored": [info.size, info.mtime]})
            if old is not None and not old.get("done"):
                self.reports.update(
                    old["import_id"],
                    old.get("ok", 0),
                    old.get("bad", 0),
                    [],
                    "failed",
                    "the file changed while it was being read; read again as a new import",
                )
            import_id = self.reports.begin(self.name, info.path, info.size, info.mtime, checksum)
            reading = self._open(info, stream, checksum, import_id, 0, None)
            if previous is not None:  # the whole file again: what happens to the rows read before
                keyed = any(c.key for c in self.config.columns)
                reading.notes["reread_of"] = previous.get("import_id")
                reading.notes["duplicates"] = (
                    "keyed table: sinks keep one row per key (ClickHouse: the newest _version under FINAL)"
                    if keyed
                    else "no key columns: the rows read before are delivered again (duplicates downstream)"
                )
            return reading, None
        return None, None

    def _offsets_only(self, info: FileInfo, offset: dict) -> SourceBatch:
        self.tracked[info.path] = offset
        return SourceBatch([], {f"file:{info.path}": dict(offset)})

    def _appended(self, info: FileInfo, stream: BinaryIO, old: dict) -> dict | None:
        """For on_change append: where the added part begins, when the file only grew (its first
        `old size` bytes hash to the old checksum); None: read it whole."""
        if self.config.format.kind not in ("csv", "tsv", "jsonl", "fixed") or info.size <= old["size"]:
            return None
        digest, lines, left = hashlib.sha256(), 0, old["size"]
        while left > 0:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            lines += chunk.count(b"\n")
            left -= len(chunk)
        stream.seek(0)
        if digest.hexdigest() != old.get("checksum"):
            return None
        header = (old.get("notes") or {}).get("header_line", 0) if self.config.format.kind in ("csv", "tsv") else 0
        return {"from": old["size"], "lines": lines, "header": header, "after_import": old["import_id"]}

    def _open(self, info, stream, checksum, import_id, skip, old, append: dict | None = None) -> _Reading:
        log.info("reading %s (import %s, resuming after row %s)", info.path, import_id, skip)
        if self._fixed is None:
            self._typer = None  # columns are inferred again from this file's header / first record
        notes: dict = {}
        source = stream
        if append:  # the header lines, then only the added bytes
            source = tempfile.TemporaryFile(prefix="huiliu-append-")
            for _ in range(append["header"]):
                source.write(stream.readline())
            stream.seek(append["from"])
            shutil.copyfileobj(stream, source, 1 << 20)
            source.seek(0)
            stream.close()
            notes["appended_from_byte"] = append["from"]
        records = read_records(source, self.config.format, notes, self._declared)
        reading = _Reading(info, import_id, checksum, source, records, skip, notes=notes, append=append)
        if old:
            reading.ok, reading.bad = old.get("ok", 0), old.get("bad", 0)
        return reading

    # -- reading rows ------------------------------------------------------------------------
    def poll(self) -> SourceBatch:
        offsets: dict[str, dict[str, Any]] = {}
        while True:  # a finished file with nothing left to emit moves straight on to the next one
            if self.current is None:
                self.current, decided = self._next()
                if decided is not None:
                    offsets.update(decided.offsets)
                    continue
                if self.current is None:
                    return SourceBatch([], offsets)
            events, frames, partition, offset = self._read(self.current)
            offsets[partition] = offset
            if events or frames or not offset["done"]:
                return SourceBatch(events, offsets, frames)

    def _read(self, r: _Reading) -> tuple[list[ChangeEvent], list[RowFrame], str, dict[str, Any]]:
        rejected: list[ChangeEvent] = []
        rows: list[int] = []
        lines: list[int] = []
        records: list[dict[str, Any]] = []
        raws: list[bytes | str | None] = []
        done, status, message = False, "reading", None
        try:
            adjust = r.append["lines"] - r.append["header"] if r.append else 0
            for row, line, fields, error, raw in r.records:
                if row <= r.skip:
                    continue
                line += adjust  # appended part: lines of the whole file
                r.row = row
                if error is None:
                    rows.append(row)
                    lines.append(line)
                    records.append(fields)
                    raws.append(raw)
                else:
                    rejected.append(self._rejected(r, row, line, fields, error, raw))
                if len(records) + len(rejected) >= self.config.batch_size:
                    break
            else:
                done, status = True, "done"
        except FileFormatError as exc:  # rows before the damage are kept; the report says why it stopped
            done, status, message = True, "failed", str(exc)
            log.warning("%s: %s", r.info.path, exc)
        events, frames = self._typed(r, rows, lines, records, raws)
        if done and status == "done":
            status, message = self._verdict(r)
        offset = {
            "size": r.info.size,
            "mtime": r.info.mtime,
            "checksum": r.checksum,
            "import_id": r.import_id,
            "row": max(r.row, r.skip),
            "ok": r.ok,
            "bad": r.bad,
            "done": done,
            "layout": self.layout_id,
        }
        if r.append:
            offset["append"] = r.append
        if done:
            offset.update(status=status, message=message, notes=_bounded_notes(r.notes))
            r.stream.close()
            self.current = None
        self._pending.setdefault(r.import_id, []).extend(r.errors)
        r.errors = []
        self.tracked[r.info.path] = offset
        return rejected + events, frames, f"file:{r.info.path}", offset

    def _position(self, r: _Reading, row: int, line: int) -> str:
        """{"file": ..., "row": n, "line": n, "import": n} as JSON text (what _positions builds in columns)."""
        return f'{r.position_head}{row}, "line": {line}, "import": {r.import_id}}}'

    def _positions(self, r: _Reading, rows: np.ndarray, lines: np.ndarray) -> pa.Array:
        text = lambda a: pa.array(a).cast(pa.string())  # noqa: E731
        return pc.binary_join_element_wise(
            r.position_head, text(rows), ', "line": ', text(lines), f', "import": {r.import_id}}}', ""
        )

    def _verdict(self, r: _Reading) -> tuple[str, str | None]:
        """A finished file's status: `done`, or `on_bad_ratio` when its bad rows pass the ratio."""
        read = r.ok + r.bad
        if r.bad and read and r.bad / read > self.config.bad_row_ratio:
            share = 100 * r.bad / read
            return self.config.on_bad_ratio, (
                f"{r.bad} of {read} rows refused ({share:.1f}%, more than the "
                f"{100 * self.config.bad_row_ratio:g}% allowed by bad_row_ratio)"
            )
        return "done", None

    def _rejected(
        self, r: _Reading, row: int, line: int, fields: dict | None, error: str, raw: bytes | str | None = None
    ) -> RejectedEvent:
        r.bad += 1
        code = getattr(error, "code", "other")
        params = getattr(error, "params", None)
        if params is None:
            params = {"detail": str(error)}
        encoding = r.notes.get("encoding")
        data, text, truncated = raw_of(raw, encoding)
        r.errors.append(
            {
                "row": row,
                "line": line,
                "reason": str(error),
                "code": code,
                "params": params,
                "raw": text,
                "truncated": truncated,
                "fields": fields,
            }
        )
        return FileRejectedEvent(
            self._table,
            "r",
            None,
            fields,
            int(r.info.mtime * 1000),
            self._position(r, row, line),
            r.import_id * ROWS_PER_IMPORT + row,
            True,
            reason=f"{r.info.path} line {line}: {error}",
            raw=data,
            raw_text=text,
            encoding=encoding if isinstance(raw, bytes) else "utf-8",
            truncated=truncated,
            code=code,
            params=params,
        )

    def _typed(
        self, r: _Reading, rows: list[int], lines: list[int], records: list[dict[str, Any]], raws: list
    ) -> tuple[list[ChangeEvent], list[RowFrame]]:
        """The parsed records typed: good ones as a frame (in columns), bad ones rejected with the reason."""
        if not records:
            return [], []
        table, typer = self._layout(records[0])
        typed = None if self._children else type_batch(typer, records)  # children: record by record
        if typed is None:
            return self._typed_row_by_row(r, rows, lines, records, raws, table, typer), []
        events = [self._rejected(r, rows[i], lines[i], records[i], reason, raws[i]) for i, reason in typed.bad.items()]
        r.ok += len(typed.good)
        if not len(typed.good):
            return events, []
        good_rows, good_lines = np.asarray(rows)[typed.good], np.asarray(lines)[typed.good]
        frame = RowFrame(
            table,
            "r",
            typed.rows,
            self._positions(r, good_rows, good_lines),
            pa.array(good_rows + r.import_id * ROWS_PER_IMPORT, pa.int64()),
            int(r.info.mtime * 1000),
            snapshot=True,
        )
        return events, [frame]

    def _typed_row_by_row(self, r, rows, lines, records, raws, table, typer) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        ts_ms = int(r.info.mtime * 1000)
        for row, line, fields, raw in zip(rows, lines, records, raws):
            try:
                after = typer(fields)
                children = [(c.table, c.rows(fields, after)) for c in self._children]
            except RowError as exc:  # the record is one unit: its children go to quarantine with it
                events.append(self._rejected(r, row, line, fields, exc, raw))
                continue
            position, sequence = self._position(r, row, line), r.import_id * ROWS_PER_IMPORT + row
            events.append(ChangeEvent(table, "r", None, after, ts_ms, position, sequence, True))
            for child, rows in children:
                events += [ChangeEvent(child, "r", None, kid, ts_ms, position, sequence, True) for kid in rows]
                counted = r.notes.setdefault("child_rows", {})
                counted[child.table] = counted.get(child.table, 0) + len(rows)
            r.ok += 1
        return events

    def _layout(self, fields: dict[str, Any]) -> tuple[CapturedTable, RowTyper]:
        if self._typer is not None:
            return self._table, self._typer
        # No declared columns: the first record names them (all strings); later unknown fields are errors.
        self._typer = RowTyper(string_columns(list(fields)), strict_fields=True)
        self._table = self._captured(self._typer.columns)
        return self._table, self._typer

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        for partition, off in offsets.items():
            if "import_id" not in off or not partition.startswith("file:") or off.get("ignored"):
                continue
            status = off.get("status") or ("done" if off.get("done") else "reading")
            if off.get("done") and status in ("done_with_errors", "failed"):  # before the report says so
                self.reports.notify(self.name, off["import_id"], partition[5:], status, off.get("message"))
            self.reports.update(
                off["import_id"],
                off["ok"],
                off["bad"],
                self._pending.pop(off["import_id"], []),
                status,
                off.get("message"),
                details=off.get("notes"),
            )

    @property
    def finished(self) -> bool:
        """In `once` mode: every listed file has been read."""
        return (
            self.current is None
            and self._listing is not None
            and all(self.tracked.get(f.path, {}).get("done") for f in self._listing)
        )

    def close(self) -> None:
        if self.current is not None:
            self.current.stream.close()
            self.current = None
        self.store.close()
