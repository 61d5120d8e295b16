"""The sink's writer thread: writes the batches the consumer thread decoded, one at a time and in
order; a batch's offsets become committable only once the store confirmed it.

SinkRunner hands a batch over and goes on consuming and decoding the next one while this one is
written, so the store's round trip (ClickHouse's answer to an insert) overlaps the next batch's
consume and decode. At most one batch is handed over and not yet written: the consumer waits for
it before handing the next (two batches in memory besides librdkafka's prefetch, as before one
in flight and one being read).

The consumer thread commits (`committable()` after each write): confluent-kafka lets one thread
at a time into a consumer, and a commit from this thread waited behind `consume` for ever.

A write that fails with SinkError is retried here with backoff (`retrying` is True meanwhile:
the consumer pauses its partitions and keeps polling); any other failure ends the thread and is
raised again in the consumer thread by `hand_over`/`check`. No offset of the batch that failed nor
of any after it becomes committable, so a restart resumes after the last written batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

from sinks.base import SinkError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """What the writer writes: the decoded batch, how many messages it holds, and the offsets to
    commit once it is written (the consumer's positions right after consuming it)."""

    data: Any
    count: int
    offsets: list[TopicPartition]


class BatchWriter:
    def __init__(
        self,
        name: str,
        write: Callable[[Any], None],
        written: Callable[[Batch, float], None],
        degraded: Callable[[str], None],
        stop: threading.Event,
        max_backoff: float = 10.0,
    ):
        """`write(data)` makes a batch durable (raises SinkError to be retried), `written(batch,
        seconds)` counts it, `degraded(message)` reports a failed attempt. `stop` (the sink's) ends
        retrying."""
        self._write, self._written, self._degraded = write, written, degraded
        self._stop = stop
        self.max_backoff = max_backoff
        self._cond = threading.Condition()
        self._pending: Batch | None = None  # handed over and not yet written
        self._committable: list[TopicPartition] | None = None  # where the last written batch ends
        self._closing = False
        self.failure: BaseException | None = None
        self.retrying = False
        self._thread = threading.Thread(target=self._run, name=f"sink-writer-{name}", daemon=True)
        self._thread.start()

    # -- the consumer thread's side ------------------------------------------------------------
    def hand_over(self, batch: Batch, timeout: float) -> bool:
        """Give the writer `batch` once the previous one is written; False if it is still being
        written after `timeout` seconds. Raises the writer's failure."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None or self.failure is not None, timeout)
            self.check()
            if self._pending is not None:
                return False
            self._pending = batch
            self._cond.notify_all()
            return True

    def check(self) -> None:
        """Raise the writer's failure in the calling thread, if it failed."""
        if self.failure is not None:
            raise self.failure

    def committable(self) -> list[TopicPartition] | None:
        """The offsets the batches written since the last call end at (None: nothing new)."""
        with self._cond:
            offsets, self._committable = self._committable, None
            return offsets

    def drain(self, timeout: float) -> None:
        """Wait (bounded) until the batch handed over is written (and so committable): before partitions
        are revoked, so the next owner starts where this one stopped. Not while the store is
        failing: the batch is then read again by the next owner (collapsed by version in FINAL)."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None or self.failure is not None or self.retrying, timeout)

    def close(self) -> None:
        """Write what was handed over unless the store is failing (retrying ends), then end."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closing)
                batch = self._pending
            if batch is None:
                return
            try:
                t0 = time.perf_counter()
                if not self._write_until_done(batch.data):
                    return  # asked to stop while the store was failing: nothing committed
                self._written(batch, time.perf_counter() - t0)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which raises it
                with self._cond:
                    self.failure = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._pending = None
                if batch.offsets:
                    self._committable = batch.offsets  # only now: the store holds the batch
                self._cond.notify_all()

    def _write_until_done(self, data: Any) -> bool:
        backoff = 0.5
        while True:
            try:
                self._write(data)
            except SinkError as exc:
                self.retrying = True
                self._degraded(str(exc))
                log.warning("sink write failed, retrying in %.1fs: %s", backoff, exc)
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline:
                    if self._stop.wait(0.2) or self._closing:
                        return False
                backoff = min(backoff * 2, self.max_backoff)
                continue
            with self._cond:
                self.retrying = False
                self._cond.notify_all()
            return True
