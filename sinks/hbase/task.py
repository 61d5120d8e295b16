"""HBaseSinkTask: the SinkTask contract on top of happybase (HBase Thrift v1)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from schemas.optional import optional_import
from sinks.base import SinkRecord, SinkTask

from .buffer import ChangeBuffer
from .client import HBaseClient, open_connection
from .mapping import to_change
from .settings import HBaseSinkSettings

happybase = optional_import("happybase", extra="hbase")

log = logging.getLogger(__name__)


class HBaseSinkTask(SinkTask):
    """Writes change events of one Huiliu target into one HBase table.

    `put` only buffers (collapsed per row and family); `flush` creates the table/families if
    needed and sends the buffer. On failure the buffer is kept, so a retried `flush` (or a
    re-`put` of the same records) rewrites the same final cells: writes are idempotent.
    """

    def __init__(
        self,
        settings: HBaseSinkSettings | Mapping[str, Any],
        connect: Callable[[HBaseSinkSettings], happybase.Connection] = open_connection,
    ) -> None:
        self.settings = settings if isinstance(settings, HBaseSinkSettings) else HBaseSinkSettings(**settings)
        self._client = HBaseClient(self.settings, connect)
        self._buffer = ChangeBuffer()

    def put(self, records: list[SinkRecord]) -> None:
        # Map everything first: a bad record raises before any of the batch is buffered.
        changes = [to_change(r, self.settings) for r in records]
        for change in changes:
            self._buffer.add(change)

    def flush(self) -> None:
        if not len(self._buffer):
            return
        self._client.ensure_families(self._buffer.families())
        rows = self._client.write(self._buffer.items())
        log.debug(
            "flushed %d records as %d row/family writes to %s", self._buffer.records, rows, self.settings.table_name
        )
        self._buffer.clear()

    def close(self) -> None:
        self._client.close()
