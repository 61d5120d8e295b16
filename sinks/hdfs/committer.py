"""Uploads closed files and renames them into place on one background thread.

Uploading while the task encodes the next file roughly doubles throughput (encoding holds the
GIL, socket writes release it). Files are committed strictly in the order they were closed;
after a failure nothing later is attempted until the error has been reported to the caller
(the next `submit` or `drain`), and the failed file is retried first after that, so each
directory always holds a contiguous prefix of its offsets.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sinks.hdfs.store import INPROGRESS, HdfsStore

log = logging.getLogger(__name__)


@dataclass
class ClosedFile:
    key: tuple  # (topic, partition, table, day)
    name: str
    last_offset: int
    data: bytes
    size: int


class Committer:
    def __init__(
        self, store: HdfsStore, on_committed: Callable[[ClosedFile, bool], None], max_buffered_bytes: int
    ) -> None:
        self._store = store
        self._on_committed = on_committed
        self._max = max_buffered_bytes
        self._queue: deque[ClosedFile] = deque()
        self._buffered = 0
        self._cv = threading.Condition()
        self._running = False
        self._error: BaseException | None = None
        self.submitted = 0  # files submitted so far
        self._done = 0  # of them, committed (or discarded)

    def submit(self, f: ClosedFile) -> None:
        """Queues a file; blocks while too many encoded bytes wait for upload (back-pressure)."""
        with self._cv:
            self._queue.append(f)
            self._buffered += f.size
            self.submitted += 1
            self._start()
            while self._running and self._buffered > self._max:
                self._cv.wait()
            self._reraise()

    def drain(self, upto: int | None = None, timeout: float | None = None) -> bool:
        """Commits everything queued, or the first `upto` files ever submitted (those queued before
        the `submitted` count was taken): True once they are, False when `timeout` seconds passed
        first; raises the first failure (queue kept for a retry)."""
        with self._cv:
            self._start()
            done = self._cv.wait_for(lambda: not self._running or (upto is not None and self._done >= upto), timeout)
            self._reraise()
            return done

    def discard(self) -> None:
        with self._cv:
            self._queue.clear()
            self._buffered = 0
            self._done = self.submitted

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _start(self) -> None:
        if not self._running and self._error is None and self._queue:
            self._running = True
            threading.Thread(target=self._run, name="hdfs-commit", daemon=True).start()

    def _reraise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _run(self) -> None:
        while True:
            with self._cv:
                if not self._queue:
                    self._running = False
                    self._cv.notify_all()
                    return
                f = self._queue[0]
            try:
                committed = self._commit(f)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
                with self._cv:
                    self._error = exc
                    self._running = False
                    self._cv.notify_all()
                return
            self._on_committed(f, committed)  # before drain() can return for it
            with self._cv:
                if self._queue and self._queue[0] is f:  # discard() may have emptied it meanwhile
                    self._queue.popleft()
                    self._buffered -= f.size
                    self._done += 1
                self._cv.notify_all()

    def _commit(self, f: ClosedFile) -> bool:
        _topic, _partition, table, day = f.key
        temp = posixpath.join(self._store.temp_dir(table, day), f.name + INPROGRESS)
        final = posixpath.join(self._store.final_dir(table, day), f.name)
        # Rewritten on a retry too: the temp of a failed attempt may be gone or partial.
        self._store.write_temp(temp, f.data)
        committed = self._store.commit(temp, final)
        if not committed:
            log.info("%s already committed (replay); dropped the duplicate", final)
        return committed
