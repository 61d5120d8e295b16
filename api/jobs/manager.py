"""Runs jobs in a thread pool and keeps their state in the control DB.

A job is `fn(ctx: JobContext) -> dict | None`; its return value is the result, an exception the
error, `JobCancelled` (or returning after `ctx.cancelled()`, the return value kept as the result:
how far it got) a cancellation. Jobs of a process that is gone are marked `interrupted`: at
start-up for this host's dead pids, and by the sweeper for jobs whose heartbeat stopped (another
host's API died).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from api.jobs.context import JobCancelled, JobContext
from api.jobs.errors import describe, trace
from api.jobs.store import JobStore

log = logging.getLogger(__name__)
STALE_AFTER = 60.0  # seconds without heartbeat before another process's job counts as interrupted


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class JobManager:
    def __init__(self, control_db_url: str, workers: int = 4, heartbeat_seconds: float = 5.0):
        self.store = JobStore(control_db_url)
        # host:pid:token; the token tells a restarted API apart from its predecessor when a
        # container hands it the same pid.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Daemon threads, not a ThreadPoolExecutor: its exit hook would hold the API's shutdown
        # until every running job finished; ours are marked interrupted instead (see stop()).
        self._queue: queue.Queue = queue.Queue()
        for i in range(workers):
            threading.Thread(target=self._worker, name=f"job-{i}", daemon=True).start()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat_seconds = heartbeat_seconds
        self._thread: threading.Thread | None = None
        self.sweep()

    # -- public API
    def submit(
        self, type: str, operator: str, fn: Callable[[JobContext], Any], on_done: Callable[[dict], None] | None = None
    ) -> str:
        """Queue `fn`; returns the job id at once. `on_done(job)` runs after the final state is stored."""
        job_id = uuid.uuid4().hex
        now = time.time()
        self.store.insert(
            id=job_id,
            type=type,
            operator=operator,
            state="queued",
            progress=0.0,
            owner=self.owner,
            created_at=now,
            heartbeat_at=now,
            cancel_requested=0,
        )
        self._queue.put((job_id, fn, on_done))
        return job_id

    def cancel(self, job_id: str) -> dict | None:
        """Ask a job to stop; a queued job is cancelled at once, a running one when it next checks."""
        job = self.store.get(job_id)
        if job is None:
            return None
        if job["state"] == "queued":
            self.store.update(
                job_id, only_if_active=True, state="cancelled", cancel_requested=1, finished_at=time.time()
            )
        elif job["state"] == "running":
            self.store.update(job_id, cancel_requested=1)
        return self.store.get(job_id)

    def get(self, job_id: str) -> dict | None:
        return self.store.get(job_id)

    def list(
        self, state: str | None = None, type: str | None = None, limit: int = 100, operator: str | None = None
    ) -> list[dict]:
        return self.store.list(state, type, limit, operator)

    def wait(self, job_id: str, timeout: float = 30.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.store.get(job_id)
            if job and job["state"] not in ("queued", "running"):
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still active after {timeout}s")

    # -- life cycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._heartbeat_loop, name="job-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The process is going away: its active jobs end as interrupted (they cannot finish)."""
        self._stop.set()
        now = time.time()
        for job_id, owner, _ in self.store.active():
            if owner == self.owner:
                self.store.update(
                    job_id,
                    only_if_active=True,
                    state="interrupted",
                    finished_at=now,
                    error=f"the API process {owner} stopped while the job was active",
                )

    def sweep(self) -> int:
        """Mark jobs whose process is gone as interrupted; returns how many."""
        host = socket.gethostname()
        now, n = time.time(), 0
        for job_id, owner, beat in self.store.active():
            if owner == self.owner:
                continue
            o_host, o_pid, _token = ((owner or "::").rsplit(":", 2) + ["", ""])[:3]
            same_host_gone = (
                o_host == host and o_pid.isdigit() and (int(o_pid) == os.getpid() or not _pid_alive(int(o_pid)))
            )
            dead = same_host_gone or (beat or 0) < now - STALE_AFTER
            if dead and self.store.update(
                job_id,
                only_if_active=True,
                state="interrupted",
                finished_at=now,
                error=f"the API process {owner} stopped while the job was active",
            ):
                n += 1
        return n

    # -- internals
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            try:
                with self._lock:
                    running = list(self._running)
                for job_id in running:
                    self.store.update(job_id, only_if_active=True, heartbeat_at=time.time())
                self.sweep()
            except Exception:  # the loop must survive a locked or unreachable DB
                log.exception("job heartbeat failed")

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._run(*item)
            except Exception:  # e.g. the control DB was unreachable when storing the outcome
                log.exception("job %s: could not record its state", item[0])

    def _run(self, job_id: str, fn: Callable[[JobContext], Any], on_done) -> None:
        ctx = JobContext(job_id, self.store)
        if not self.store.update(job_id, only_if_active=True, state="running", started_at=time.time()):
            if on_done:  # cancelled while queued: still tell the caller (e.g. a schedule run)
                on_done(self.store.get(job_id))
            return
        with self._lock:
            self._running.add(job_id)
        final: dict[str, Any]
        try:
            result = fn(ctx)
            stored = json.dumps(result, default=str) if result is not None else None
            if ctx.cancelled():  # what it returned says how far it got before stopping
                final = {"state": "cancelled", "result": stored}
            else:
                final = {"state": "succeeded", "progress": 100.0, "result": stored}
        except JobCancelled:
            final = {"state": "cancelled"}
        except Exception as exc:
            # describe(): problem and position only; a parser's or driver's text may quote a file
            log.warning("job %s failed: %s", job_id, describe(exc))
            final = {"state": "failed", "error": describe(exc)[:4000], "message": trace(exc)}
        finally:
            with self._lock:
                self._running.discard(job_id)
        self.store.update(job_id, finished_at=time.time(), **final)
        if on_done:
            try:
                on_done(self.store.get(job_id))
            except Exception:
                log.exception("on_done of job %s failed", job_id)
