"""HBase table scan as a source (happybase over the Thrift gateway): typed columns, resumable.

Rows are scanned in row-key order; the offset is the last durable row key, so a restart
continues after it. Cells are bytes: each declared column (`source: "cf:qualifier"`) is decoded
as UTF-8 text and typed like a file column; a row that does not type goes to quarantine. The
scan is a snapshot (op `r`); once finished it is not repeated (clear the offsets to rescan).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from connectors.base import CapturedTable, ChangeEvent, RejectedEvent, SourceBatch, SourceSettings, SourceTask
from connectors.files.coerce import ColumnDef, RowError, RowTyper
from schemas.optional import optional_import


class HBaseScanConfig(SourceSettings):
    system: str = "hbase"
    table: str = Field(description="HBase table name")
    topic_table: str | None = Field(None, description="table part of the topic name; default `table`")
    host: str = "127.0.0.1"
    port: int = 9090
    row_key: ColumnDef = Field(default_factory=lambda: ColumnDef(name="row_key", key=True))
    columns: list[ColumnDef] = Field(min_length=1, description="each with source: 'family:qualifier'")
    row_prefix: str | None = None
    batch_size: int = Field(1000, gt=0)


class HBaseScanTask(SourceTask):
    def __init__(self, config: HBaseScanConfig):
        if any(not (c.source and ":" in c.source) for c in config.columns):
            raise ValueError("every HBase column needs source: 'family:qualifier'")
        self.config = config
        self.name = config.name
        key = config.row_key.model_copy(update={"key": True})
        defs = [key] + list(config.columns)
        self.captured = CapturedTable(
            config.system, config.topic_table or config.table, tuple(d.spec() for d in defs), None, None
        )
        self.typer = RowTyper(
            self.captured.columns, {d.name: d.source or d.name for d in defs}, {d.name: d.format for d in defs}
        )
        self.cells = [c.source.encode() for c in config.columns]
        self.offset: dict[str, Any] = {}
        self.conn = None

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        happybase = optional_import("happybase", extra="hbase")

        self.offset = dict(offsets.get(self.captured.partition) or {})
        self.conn = happybase.Connection(self.config.host, self.config.port)

    def poll(self) -> SourceBatch:
        if self.offset.get("done"):
            return SourceBatch()
        table = self.conn.table(self.config.table)
        last = bytes.fromhex(self.offset["last_row"]) if self.offset.get("last_row") else None
        prefix = self.config.row_prefix.encode() if self.config.row_prefix else None
        start = last + b"\x00" if last is not None else prefix  # the smallest key after the last one
        stop = _prefix_end(prefix) if prefix else None
        rows = list(
            table.scan(
                row_start=start,
                row_stop=stop,
                columns=self.cells,
                batch_size=self.config.batch_size,
                limit=self.config.batch_size,
            )
        )
        n, events, now_ms = self.offset.get("n", 0), [], int(time.time() * 1000)
        for key, cells in rows:
            n += 1
            raw = {self.config.row_key.source or self.config.row_key.name: key.decode("utf-8", "replace")}
            raw.update({c.decode(): v.decode("utf-8", "replace") for c, v in cells.items()})
            position = {"row": key.hex()}
            try:
                events.append(ChangeEvent(self.captured, "r", None, self.typer(raw), now_ms, position, n, True))
            except RowError as exc:
                events.append(
                    RejectedEvent(
                        self.captured,
                        "r",
                        None,
                        raw,
                        now_ms,
                        position,
                        n,
                        True,
                        reason=f"HBase {self.config.table} row {key!r}: {exc}",
                    )
                )
        self.offset = {
            "last_row": rows[-1][0].hex() if rows else self.offset.get("last_row"),
            "n": n,
            "done": len(rows) < self.config.batch_size,
        }
        return SourceBatch(events, {self.captured.partition: dict(self.offset)})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key starting with `prefix` (HBase's own stop-row trick)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)
