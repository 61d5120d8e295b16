"""The sink's writer thread: writes the batches the consumer thread decoded, one at a time and in
order; a batch's offsets become committable only once the store confirmed it.

SinkRunner hands a batch over and goes on consuming and decoding the next one while this one is
written, so the store's round trip (ClickHouse's answer to an insert) overlaps the next batch's
consume and decode. At most one batch is handed over and not yet taken: the consumer waits for
it before handing the next (two batches in memory besides librdkafka's prefetch, as before one
in flight and one being read).

A store that finishes a write in the background (`write` returns a wait: the HDFS sink's upload
and rename) is handed the next batch before the writer waits for the one before, so its upload
overlaps the next batch's put and encoding; that batch's offsets become committable only once
its wait returned. Then one batch more is in memory (as files being uploaded).

The consumer thread commits (`committable()` after each write): confluent-kafka lets one thread
at a time into a consumer, and a commit from this thread waited behind `consume` for ever.

A write that fails with SinkError is retried here with backoff (`retrying` is True meanwhile:
the consumer pauses its partitions and keeps polling); any other failure ends the thread and is
raised again in the consumer thread by `hand_over`/`check`. No offset of the batch that failed nor
of any after it becomes committable, so a restart resumes after the last written batch.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import TopicPartition

from sinks.base import SinkError

log = logging.getLogger(__name__)

T = TypeVar("T")
# wait(timeout): True once a written batch is durable, False after timeout seconds (None: no
# bound) if it is not yet (SinkTask.flush_started)
Wait = Callable[[float | None], bool]


@dataclass(slots=True)
class Batch:
    """What the writer writes: the decoded batch, how many messages it holds, and the offsets to
    commit once it is written (the consumer's positions right after consuming it). `data` is let
    go once the store took it (while its flush finishes, the store holds what it needs)."""

    data: Any
    count: int
    offsets: list[TopicPartition]
    deleted: int = 0  # deletes among the messages, for the counters (counted before `data` goes)


class BatchWriter:
    def __init__(
        self,
        name: str,
        write: Callable[[Any], Wait | None],
        written: Callable[[Batch, float], None],
        degraded: Callable[[str], None],
        stop: threading.Event,
        max_backoff: float = 10.0,
    ):
        """`write(data)` makes a batch durable and returns None, or starts to and returns what waits
        until it is; either raises SinkError to be retried. `written(batch, seconds)` counts it,
        `degraded(message)` reports a failed attempt. `stop` (the sink's) ends retrying."""
        self._write, self._written, self._degraded = write, written, degraded
        self._stop = stop
        self.max_backoff = max_backoff
        self._cond = threading.Condition()
        self._pending: Batch | None = None  # handed over and not yet taken
        self._unfinished = False  # a batch written whose wait has not returned yet
        self.poll_seconds = 0.02  # how often a wait for the batch before looks for the next one
        self._committable: list[TopicPartition] | None = None  # where the last written batch ends
        self._closing = False
        self.failure: BaseException | None = None
        self.retrying = False
        self._thread = threading.Thread(target=self._run, name=f"sink-writer-{name}", daemon=True)
        self._thread.start()

    # -- the consumer thread's side ------------------------------------------------------------
    def hand_over(self, batch: Batch, timeout: float) -> bool:
        """Give the writer `batch` once it took the previous one (written, or being finished); False
        if it has not after `timeout` seconds. Raises the writer's failure."""
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
            self._cond.wait_for(
                lambda: (self._pending is None and not self._unfinished) or self.failure is not None or self.retrying,
                timeout,
            )

    def close(self) -> None:
        """Write what was handed over unless the store is failing (retrying ends), then end."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        unfinished: tuple[Batch, Wait, float] | None = None  # written, its wait not yet returned
        while True:
            with self._cond:
                if unfinished is None:
                    self._cond.wait_for(lambda: self._pending is not None or self._closing)
                batch = self._pending
            if batch is None and unfinished is None:
                return
            try:
                if batch is not None:
                    t0 = time.perf_counter()
                    done, wait = self._until_done(functools.partial(self._write, batch.data))
                    if not done:
                        return  # asked to stop while the store was failing: nothing committed
                    batch.data = None
                    if wait is None and unfinished is None:  # durable already: done with it
                        self._finished(batch, t0, taken=True)
                        continue
                    with self._cond:
                        self._pending = None  # taken: the consumer may hand over the next one
                        self._unfinished = True
                        self._cond.notify_all()
                if unfinished is not None:
                    # The batch before: wholly once this one is written (one unfinished at a time),
                    # else briefly, so the next one is put as soon as it is handed over.
                    bound = None if batch is not None or self._closing else self.poll_seconds
                    done, durable = self._until_done(functools.partial(unfinished[1], bound))
                    if not done:
                        return
                    if durable:
                        self._finished(unfinished[0], unfinished[2])
                        unfinished = None
                if batch is not None:
                    if wait is None:
                        self._finished(batch, t0)
                    else:
                        unfinished = (batch, wait, t0)
                with self._cond:
                    self._unfinished = unfinished is not None
                    self._cond.notify_all()
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which raises it
                with self._cond:
                    self.failure = exc
                    self._cond.notify_all()
                return

    def _finished(self, batch: Batch, t0: float, taken: bool = False) -> None:
        """The batch is durable: count it, make its offsets committable (and, `taken`, let the
        consumer hand over the next one)."""
        self._written(batch, time.perf_counter() - t0)
        with self._cond:
            if taken:
                self._pending = None
            if batch.offsets:
                self._committable = batch.offsets  # only now: the store holds the batch
            self._cond.notify_all()

    def _until_done(self, attempt: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, attempt()) once an attempt did not raise SinkError; (False, None) when asked to
        stop while retrying."""
        backoff = 0.5
        while True:
            try:
                result = attempt()
            except SinkError as exc:
                self.retrying = True
                self._degraded(str(exc))
                log.warning("sink write failed, retrying in %.1fs: %s", backoff, exc)
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline:
                    if self._stop.wait(0.2) or self._closing:
                        return False, None
                backoff = min(backoff * 2, self.max_backoff)
                continue
            with self._cond:
                self.retrying = False
                self._cond.notify_all()
            return True, result
