"""Log-file tail (AGG-04): follows files through rotation, resumes from stored offsets, joins
multi-line records (stack traces) by a start pattern.

Offsets, one partition per followed path (`tail:<path>`): inode, byte offset and line number of
the first byte not yet durable in Kafka (the start of a pending multi-line record, if any).
Rotation: *rename* -- the path gets a new inode; the old file (still open, or found again by its
inode among `<path>*` siblings after a restart) is read to its end before the new file is
read from 0. *copytruncate* -- same inode, but the file is now shorter than our position: read
again from 0 (lines written between the copy and the truncation are lost to every tailer; that
is the nature of copytruncate; a file that regrows past our position between two polls is not
seen as truncated -- poll often or prefer rename rotation). Records are op `c` events; sequence
is time based and monotonic.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import sqlalchemy.types as sa
from pydantic import Field

from connectors.base import CapturedTable, ChangeEvent, SourceBatch, SourceSettings, SourceTask
from schemas.sqltypes import ColumnSpec

log = logging.getLogger(__name__)
COLUMNS = (
    ColumnSpec("file", sa.String()),
    ColumnSpec("line", sa.BigInteger()),
    ColumnSpec("offset", sa.BigInteger()),
    ColumnSpec("message", sa.String()),
)


class TailSourceConfig(SourceSettings):
    system: str
    table: str = "log"
    db_schema: str | None = None
    paths: list[str] = Field(min_length=1, description="files to follow (the live names, not the rotated ones)")
    start_at: str = Field("beginning", pattern="^(beginning|end)$", description="for a file with no stored offset")
    multiline_start: str | None = Field(
        None, description="regex: a line matching it starts a new record; other lines are appended to the current one"
    )
    multiline_max_lines: int = Field(1000, gt=0)
    multiline_flush_seconds: float = Field(2.0, ge=0, description="emit a pending record after this quiet time")
    encoding: str = "utf-8"
    chunk_bytes: int = Field(1 << 20, gt=0)
    batch_size: int = Field(5000, gt=0)


@dataclass
class _Follow:
    path: str
    fh: BinaryIO | None = None
    ino: int | None = None
    pos: int = 0  # file offset after the last complete line read
    line: int = 0  # lines read so far
    partial: bytes = b""
    pending: list[str] = field(default_factory=list)  # the multi-line record being built
    pending_at: tuple[int, int] = (0, 0)  # (offset, line) where the pending record starts
    last_read: float = 0.0
    draining: bool = False  # fh is a rotated file read to its end before the live path


class TailSourceTask(SourceTask):
    def __init__(self, config: TailSourceConfig):
        self.config = config
        self.name = config.name
        self.table = CapturedTable(config.system, config.table, COLUMNS, None, config.db_schema)
        self.start_re = re.compile(config.multiline_start) if config.multiline_start else None
        self.files = [_Follow(p) for p in config.paths]
        self.stored: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.stored = {p[5:]: o for p, o in offsets.items() if p.startswith("tail:")}

    # -- opening and rotation ------------------------------------------------------------------
    def _open(self, f: _Follow) -> None:
        try:
            st = os.stat(f.path)
        except FileNotFoundError:
            return
        saved = self.stored.pop(f.path, None)
        if saved and saved["ino"] != st.st_ino and (old := self._find_rotated(f.path, saved["ino"])):
            f.fh, f.ino, f.draining = open(old, "rb"), saved["ino"], True  # finish the rotated file first
            self._seek(f, saved["pos"], saved["line"])
            log.info("%s: resuming rotated %s at byte %d", self.name, old, saved["pos"])
            return
        f.fh, f.ino, f.draining = open(f.path, "rb"), st.st_ino, False
        if saved and saved["ino"] == st.st_ino and saved["pos"] <= st.st_size:
            self._seek(f, saved["pos"], saved["line"])
        elif not saved and self.config.start_at == "end":
            self._seek(f, st.st_size, 0)
        else:  # new file, or the stored one is gone / was truncated meanwhile
            self._seek(f, 0, 0)

    @staticmethod
    def _find_rotated(path: str, ino: int) -> str | None:
        for cand in sorted(glob.glob(glob.escape(path) + "*")):
            try:
                if os.stat(cand).st_ino == ino:
                    return cand
            except FileNotFoundError:
                continue
        return None

    @staticmethod
    def _seek(f: _Follow, pos: int, line: int) -> None:
        f.fh.seek(pos)
        f.pos, f.line, f.partial, f.pending = pos, line, b"", []

    def _check_rotation(self, f: _Follow, events: list) -> None:
        """At the end of the open file: did the path move to a new file, or was it truncated?"""
        try:
            st = os.stat(f.path)
        except FileNotFoundError:
            return  # renamed and not yet re-created: keep reading the old file
        if st.st_ino != f.ino:
            self._flush(f, events, force=True)
            log.info("%s: %s rotated (new inode), following the new file", self.name, f.path)
            f.fh.close()
            f.fh, f.ino, f.draining = open(f.path, "rb"), st.st_ino, False
            self._seek(f, 0, 0)
        elif st.st_size < f.pos + len(f.partial):
            self._flush(f, events, force=True)
            log.info("%s: %s truncated (copytruncate), reading from the start", self.name, f.path)
            self._seek(f, 0, 0)

    # -- reading -------------------------------------------------------------------------------
    def poll(self) -> SourceBatch:
        events: list[ChangeEvent] = []
        offsets = {}
        for f in self.files:
            if f.fh is None:
                self._open(f)
                if f.fh is None:
                    continue
            while len(events) < self.config.batch_size:
                data = f.fh.read(self.config.chunk_bytes)
                if not data:
                    self._check_rotation(f, events)
                    if f.fh.tell() == f.pos + len(f.partial) and not self._more(f):
                        break
                    continue
                f.last_read = time.monotonic()
                self._lines(f, data, events)
            if f.pending and time.monotonic() - f.last_read >= self.config.multiline_flush_seconds:
                self._flush(f, events)  # quiet for long enough: the record is complete
            start, line = f.pending_at if f.pending else (f.pos, f.line)
            offsets[f"tail:{f.path}"] = {"ino": f.ino, "pos": start, "line": line}
        return SourceBatch(events, offsets if events else {})

    @staticmethod
    def _more(f: _Follow) -> bool:
        try:
            return os.fstat(f.fh.fileno()).st_size > f.fh.tell()
        except OSError:
            return False

    def _lines(self, f: _Follow, data: bytes, events: list) -> None:
        data = f.partial + data
        *lines, f.partial = data.split(b"\n")
        enc, start_re, pos = self.config.encoding, self.start_re, f.pos
        for raw in lines:
            f.line += 1
            text = raw.rstrip(b"\r").decode(enc, "replace")
            if start_re is None:
                self._emit(f, [text], pos, f.line, events)
            elif start_re.match(text) or not f.pending or len(f.pending) >= self.config.multiline_max_lines:
                self._flush(f, events)
                f.pending, f.pending_at = [text], (pos, f.line)
            else:
                f.pending.append(text)  # a continuation line (stack trace, wrapped message)
            pos += len(raw) + 1
        f.pos = pos

    def _flush(self, f: _Follow, events: list, force: bool = False) -> None:
        if force and f.partial:  # the file is left for good: its unterminated last line is a line too
            self._lines(f, b"\n", events)
        if f.pending:
            self._emit(f, f.pending, f.pending_at[0], f.pending_at[1], events)
            f.pending = []

    def _emit(self, f: _Follow, lines: list[str], offset: int, line: int, events: list) -> None:
        now = time.time()
        self._seq = max(self._seq + 1, int(now * 1_000_000))
        row = {"file": f.path, "line": line, "offset": offset, "message": "\n".join(lines)}
        events.append(
            ChangeEvent(
                self.table,
                "c",
                None,
                row,
                int(now * 1000),
                {"file": f.path, "ino": f.ino, "offset": offset, "line": line},
                self._seq,
            )
        )

    def close(self) -> None:
        for f in self.files:
            if f.fh is not None:
                f.fh.close()
                f.fh = None
