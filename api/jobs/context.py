"""What a job function sees: report progress, ask whether the operator cancelled."""

from __future__ import annotations

import time


class JobCancelled(Exception):
    """Raise (or let `check_cancelled()` raise) to end a job as cancelled."""


class JobContext:
    def __init__(self, job_id: str, store, min_interval: float = 0.5):
        self.job_id = job_id
        self._store = store
        self._min_interval = min_interval  # progress is written at most this often: jobs may call it per row
        self._last_write = 0.0
        self._cancelled = False

    def progress(self, pct: float, message: str | None = None) -> None:
        now = time.time()
        if now - self._last_write < self._min_interval and pct < 100:
            return
        self._last_write = now
        values = {"progress": max(0.0, min(100.0, float(pct))), "heartbeat_at": now}
        if message is not None:
            values["message"] = message[:2000]
        self._store.update(self.job_id, only_if_active=True, **values)

    def cancelled(self) -> bool:
        # The flag lives in the DB so a cancel through any API process reaches the job.
        if not self._cancelled:
            self._cancelled = self._store.cancel_requested(self.job_id)
        return self._cancelled

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelled()
