"""A table's snapshot chunks read one ahead, on a thread, while the runtime encodes and produces
the chunk before it. ADBC's read and pyarrow release the GIL while they work, and the database
does its part in its own process: in a profile of the 1M-row snapshot the reads were a third of
the time, all spent waiting.

Order and positions: one thread reads one table's chunks in key order, each after the last key of
the one before, and hands them over through a queue of `depth` chunks. The task stores nothing
itself: a chunk's position becomes the stored offset only once the runtime has published it and
the broker acknowledged it, so after a crash or a restart the snapshot resumes after the last
acknowledged chunk and the chunks that were read ahead are simply read again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Chunk = TypeVar("Chunk")
_END = object()


class ChunkPrefetch(Generic[Chunk]):
    """`read(after)` -> (chunk, the key the next chunk starts after, or None after the last chunk),
    called on a thread from `start` on; `take()` returns (the key a chunk started after, the chunk)
    in order. An error of `read` is raised by the `take()` that would have returned its chunk."""

    def __init__(self, read: Callable[[Any], tuple[Chunk, Any]], start: Any, depth: int = 1, name: str = "prefetch"):
        self._read = read
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), name=name, daemon=True)
        self._thread.start()

    def _run(self, after: Any) -> None:
        while not self._stop.is_set():
            try:
                chunk, following = self._read(after)
            except BaseException as exc:  # handed to the caller, which decides
                self._put(exc)
                return
            if not self._put((after, chunk)) or following is None:
                break
            after = following
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self) -> tuple[Any, Chunk]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is _END:
            raise LookupError("no chunk after the table's last one")
        return item

    def close(self) -> None:
        """Stop reading ahead; waits for a read in progress (at most one chunk's read)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()
