"""Hive table read through PyHive (HiveServer2), typed like the other sources.

UNTESTED AGAINST HIVE: no HiveServer2 can run in this environment, so the tests drive this code
through a fake DB-API connection (`connect=` argument); with a real cluster `pip install
'pyhive[hive]'` (thrift, thrift-sasl, pure-sasl) provides `pyhive.hive.connect`. The read is one
`SELECT <columns> FROM <table> [WHERE ...]` streamed with `fetchmany`: a snapshot (op `r`) with
no mid-table resume -- after a crash it is read again from the start, and sinks collapse the
repeats by key and sequence. Incremental reads: give `where` a partition predicate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import Field

from connectors.base import CapturedTable, ChangeEvent, RejectedEvent, SourceBatch, SourceSettings, SourceTask
from connectors.files.coerce import ColumnDef, RowError, RowTyper
from schemas.optional import optional_import

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HiveSourceConfig(SourceSettings):
    system: str = "hive"
    host: str = "127.0.0.1"
    port: int = 10000
    username: str | None = None
    database: str = "default"
    table: str
    columns: list[ColumnDef] = Field(min_length=1)
    where: str | None = Field(None, description="HiveQL predicate, e.g. a partition: dt = '2024-01-01'")
    batch_size: int = Field(5000, gt=0)


class HiveSourceTask(SourceTask):
    def __init__(self, config: HiveSourceConfig, connect: Callable[..., Any] | None = None):
        for ident in [config.database, config.table] + [c.source or c.name for c in config.columns]:
            if not _IDENT.match(ident):
                raise ValueError(f"not a plain Hive identifier: {ident!r}")
        self.config = config
        self.name = config.name
        self.captured = CapturedTable(
            config.system, config.table, tuple(c.spec() for c in config.columns), config.database, config.database
        )
        self.typer = RowTyper(
            self.captured.columns,
            {c.name: c.source or c.name for c in config.columns},
            {c.name: c.format for c in config.columns},
        )
        self.fields = [c.source or c.name for c in config.columns]
        self._connect = connect
        self.cursor = self.conn = None
        self.done, self.n = False, 0

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.done = bool((offsets.get(self.captured.partition) or {}).get("done"))
        if self.done:
            return
        connect = self._connect
        if connect is None:
            hive = optional_import("pyhive.hive", extra="hive")

            connect = hive.connect
        self.conn = connect(
            host=self.config.host, port=self.config.port, username=self.config.username, database=self.config.database
        )
        self.cursor = self.conn.cursor()
        sql = f"SELECT {', '.join(f'`{f}`' for f in self.fields)} FROM `{self.config.database}`.`{self.config.table}`"
        self.cursor.execute(sql + (f" WHERE {self.config.where}" if self.config.where else ""))

    def poll(self) -> SourceBatch:
        if self.done:
            return SourceBatch()
        rows = self.cursor.fetchmany(self.config.batch_size)
        events, now_ms = [], int(time.time() * 1000)
        for values in rows:
            self.n += 1
            raw = dict(zip(self.fields, values))
            position = {"row": self.n}
            try:
                events.append(ChangeEvent(self.captured, "r", None, self.typer(raw), now_ms, position, self.n, True))
            except RowError as exc:
                events.append(
                    RejectedEvent(
                        self.captured,
                        "r",
                        None,
                        raw,
                        now_ms,
                        position,
                        self.n,
                        True,
                        reason=f"Hive {self.config.table} row {self.n}: {exc}",
                    )
                )
        if len(rows) < self.config.batch_size:
            self.done = True
            return SourceBatch(events, {self.captured.partition: {"done": True, "rows": self.n}})
        return SourceBatch(events, {})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
