"""Offsets stored behind the producer: a thread waits for the broker's acknowledgement of what was
produced and then stores the batch's offsets, while the runtime already reads and encodes the
next batch. Waiting for the acks of each snapshot chunk before reading the next one was a fifth of
the snapshot's time (tests/benchmarks/README.md, PostgreSQL snapshot).

Nothing changes about what is stored when: a batch's offsets are stored only after a flush that
began after its last message was produced returned with every message acknowledged, batches in
order, and at most `behind` batches wait (the producer blocks on the next one). The runtime waits
(`wait`) before it produces the next batch, so the topic holds at most one batch beyond the stored
offsets, as without the thread: a crash reads no more again. After a delivery error no later
batch's offsets are stored, and the error is raised by the next `submit` or `wait`: the runtime
stops and its caller restarts the task from the stored offsets (at least once).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Offsets = dict[str, dict[str, Any]]


class AcksBehind:
    def __init__(self, store: Callable[[Offsets], None], behind: int = 1, name: str = "source-acks"):
        """`store(offsets)` flushes the producer (raising unless all was acknowledged) and stores them."""
        self._store = store
        self._pending: queue.Queue = queue.Queue(maxsize=behind)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            offsets = self._pending.get()
            try:
                if offsets is None:
                    return
                if self._error is None:
                    self._store(offsets)
            except BaseException as exc:  # raised to the producing thread by submit() / wait()
                self._error = exc
            finally:
                self._pending.task_done()

    def _raise(self) -> None:
        if self._error is not None:  # kept: no later batch is stored after it
            raise self._error

    def submit(self, offsets: Offsets) -> None:
        """Store `offsets` once everything produced so far is acknowledged; blocks while `behind`
        batches already wait."""
        self._raise()
        self._pending.put(offsets)

    def wait(self) -> None:
        """Until every submitted batch is stored (or the first error, raised here)."""
        self._pending.join()
        self._raise()

    def close(self) -> None:
        self._pending.put(None)
        self._thread.join()
