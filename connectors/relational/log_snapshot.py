"""The initial load of log-based CDC: every captured table read inside one consistent
transaction, a batch at a time, as op `r` events stamped with the log position the stream
resumes from once the snapshot is done (PostgreSQL slot LSN, MySQL binlog file:pos).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.base import CapturedTable, ChangeEvent, RowFrame
from connectors.columns import frame_of
from connectors.relational.cdc_common import ts_now_ms


class ConsistentSnapshot:
    def __init__(
        self,
        conn,
        tables: dict[Any, CapturedTable],
        convert: dict[Any, Callable[[dict], dict]],
        select: Callable[[Any, CapturedTable], Any],
        position: dict[str, Any],
        sequence: int,
        done_offset: dict[str, Any],
    ):
        """`conn` holds the snapshot transaction; `select(key, table)` opens a cursor over one
        table's columns in it; `done_offset` is the source offset once every table is read."""
        self.conn = conn
        self.tables, self.convert, self.select = tables, convert, select
        self.position, self.sequence, self.done_offset = position, sequence, done_offset
        self.todo = list(tables)
        self.cursor = None
        self._position_text = json.dumps(position)  # as the runtime writes a dict position

    @property
    def finished(self) -> bool:
        return not self.todo

    def read(self, size: int) -> tuple[list[ChangeEvent], list[RowFrame]]:
        """Up to `size` rows of the tables still to read, in table order: each table's rows as one
        frame (connectors.columns), or as events when their values do not convert exactly."""
        events: list[ChangeEvent] = []
        frames: list[RowFrame] = []
        count, now = 0, ts_now_ms()
        while self.todo and count < size:
            key = self.todo[0]
            table, convert = self.tables[key], self.convert[key]
            if self.cursor is None:
                self.cursor = self.select(key, table)
            names = [c.name for c in table.columns]
            rows = self.cursor.fetchmany(size - count)
            frame = (
                frame_of(table, names, rows, [self._position_text] * len(rows), self.sequence, now, snapshot=True)
                if rows
                else None
            )
            if frame is not None:
                frames.append(frame)
            else:
                events += [
                    ChangeEvent(
                        table, "r", None, convert(dict(zip(names, row))), now, self.position, self.sequence, True
                    )
                    for row in rows
                ]
            count += len(rows)
            if count < size:  # this table is exhausted
                self.cursor.close()
                self.cursor = None
                self.todo.pop(0)
        return events, frames

    def finish(self) -> dict[str, Any]:
        """End the snapshot transaction; the offset the stream starts from."""
        self.conn.commit()
        self.conn.close()
        return dict(self.done_offset)

    def close(self) -> None:
        self.conn.close()
