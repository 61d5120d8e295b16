"""The sink contract shared by every store (ClickHouse, HDFS, HBase, chdb).

The runtime consumes a clean topic, hands batches to `SinkTask.put`, calls `flush` when the
batch bound (size or time) is reached, and commits Kafka offsets only after `flush` returned.
A sink that raises from `put`/`flush` is retried with backoff; the runtime stops consuming
meanwhile (back-pressure), so nothing is lost.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


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


class SinkError(Exception):
    """A write that failed in a way worth retrying (store down, timeout)."""


class FatalSinkError(Exception):
    """A failure retrying cannot fix (incompatible schema change); the sink stops with this message."""


class SinkTask(ABC):
    @abstractmethod
    def put(self, records: list[SinkRecord]) -> None:
        """Buffer or write a batch. May raise SinkError (retried) or FatalSinkError."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything given to `put` durable in the store. Offsets are committed after this."""

    def close(self) -> None:
        """Release connections; the default has nothing to release."""
