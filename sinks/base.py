"""The sink contract shared by every store (ClickHouse, HDFS, HBase, chdb).

The runtime consumes a clean topic, hands batches to `SinkTask.put`, calls `flush` when the
batch bound (size or time) is reached, and commits Kafka offsets only after `flush` returned.
A sink that raises from `put`/`flush` is retried with backoff; the runtime stops consuming
meanwhile (back-pressure), so nothing is lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One decoded change event as read from a topic.

    `value` is the change-event envelope as a dict: before, after, op (c/u/d/r), ts_ms,
    source {system, database, schema, table, connector, position, snapshot}, transaction.
    `key` is the primary key as a dict (None for keyless tables).
    """

    topic: str
    partition: int
    offset: int
    key: dict[str, Any] | None
    value: dict[str, Any]
    schema_id: int | None = None

    @property
    def op(self) -> str:
        return self.value["op"]

    @property
    def row(self) -> dict[str, Any] | None:
        """The row image that represents the record's current state (before for deletes)."""
        return self.value["before"] if self.op == "d" else self.value["after"]


@dataclass(frozen=True, slots=True)
class SinkFrame:
    """Change events of one writer schema, decoded together (schemas.frames) for columnar stores.

    `frame` has the envelope's columns: before, after (structs of the row), op, ts_ms, source
    (struct), transaction (or the task's `frame_columns` of them), plus each record's `_partition`
    and `_offset` (unless the task's `frame_positions` is False). `key` is the first record's
    key: it names the key fields when a table has to be created.
    """

    topic: str
    schema_id: int
    key: dict[str, Any] | None
    frame: pl.DataFrame


class SinkError(Exception):
    """A write that failed in a way worth retrying (store down, timeout)."""


class FatalSinkError(Exception):
    """A failure retrying cannot fix (incompatible schema change); the sink stops with this message."""


class SinkTask(ABC):
    # A columnar task is handed SinkFrames through put_frames instead of records through put.
    columnar = False
    # A columnar task that never reads `_partition`/`_offset` says so: they cost two Python
    # calls per message to gather.
    frame_positions = True
    # The envelope fields a columnar task reads (schemas.frames' `columns`: `source.sequence` is
    # one field of a record); None: all of them. The others are parsed, not built.
    frame_columns: list[str] | None = None
    # (events, seconds) bounding each batch the runtime hands over and then commits, unless the
    # runtime is told otherwise; stores that like big writes (files) ask for more.
    batch_bounds: tuple[int, float] = (5000, 1.0)

    def put(self, records: list[SinkRecord]) -> None:
        """Buffer or write a batch. May raise SinkError (retried) or FatalSinkError."""
        raise NotImplementedError(f"{type(self).__name__} takes frames (put_frames), not records")

    def put_frames(self, frames: list[SinkFrame]) -> None:
        """The columnar `put`: same contract, one frame per writer schema."""
        raise NotImplementedError(f"{type(self).__name__} takes records (put), not frames")

    @abstractmethod
    def flush(self) -> None:
        """Make everything given to `put` durable in the store. Offsets are committed after this."""

    def flush_started(self) -> Callable[[float | None], bool] | None:
        """`flush` for a store that can finish it in the background: start making everything given
        to `put` durable and return `wait(timeout)`, which blocks until it is and returns True
        (raising as `flush` would), or returns False after `timeout` seconds (None: no bound);
        None when it already is. The runtime puts the next batch before it waits for this one, and
        commits the batch's offsets only after a wait returned True. The default flushes: None."""
        self.flush()
        return None

    def close(self) -> None:
        """Release connections; the default has nothing to release."""
