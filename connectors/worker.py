"""A worker: claims connector tasks through Redis leases and runs each in a thread.

Every `tick` (a third of the lease time) the worker reconciles: tasks of deleted connectors are
stopped and released; a changed connector version (config update, pause, resume, restart,
snapshot) restarts the task; then it balances: with more tasks than its fair share
(ceil(tasks / live workers)) it releases the surplus, with fewer it claims unowned tasks.
A separate heartbeat thread renews the leases, so a slow task stop never lets them lapse; a
lease found lost (another worker holds it) stops that task at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from connectors.leases import Leases, fair_share, task_key
from connectors.store import ConnectorRecord, ConnectorStore
from connectors.task_runner import TaskRunner

log = logging.getLogger(__name__)


@dataclass
class Owned:
    connector: str
    task: int
    version: int
    runner: TaskRunner | None  # None while the connector is paused


class Worker:
    def __init__(
        self,
        settings,
        lease_seconds: float = 15.0,
        worker_id: str | None = None,
        max_attempts: int = 6,
        max_delay: float = 30.0,
    ):
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"
        # first start: the state dir (control DB file, secrets key, task state) may not exist yet
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        self.store = ConnectorStore.for_settings(settings)
        self.leases = Leases.for_settings(settings, lease_seconds)
        self.tick = lease_seconds / 3
        self.max_attempts = max_attempts
        self.max_delay = max_delay
        self.owned: dict[str, Owned] = {}
        self._lock = threading.Lock()
        self._lost: set[str] = set()

    # -- heartbeat (own thread) ---------------------------------------------------------------
    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.leases.heartbeat(self.id, f"pid={os.getpid()}")
                with self._lock:
                    keys = list(self.owned)
                for key in keys:
                    if not self.leases.renew(key, self.id):
                        with self._lock:
                            self._lost.add(key)
            except Exception as exc:  # Redis away: tasks keep running; leases lapse if it stays away
                log.warning("heartbeat failed: %s", exc)
            stop.wait(self.tick)

    # -- task lifecycle -----------------------------------------------------------------------
    def _status(self, record: ConnectorRecord, task: int):
        def report(state, detail=None, trace=None):
            try:
                self.store.set_task_status(record.name, task, state, self.id, detail, trace, record.version)
            except Exception as exc:  # status is informational: never let it break the lifecycle
                log.warning("cannot store status of %s/%d: %s", record.name, task, exc)

        return report

    def _start(self, key: str, record: ConnectorRecord, task: int) -> None:
        report = self._status(record, task)
        if record.kind == "source" and task == 0:
            for snap in self.store.pending_snapshots(record.name):
                cleared = self.store.run_snapshot(record.name, snap["id"], snap["tables"])
                log.info("snapshot %s of %s: cleared offsets of %s", snap["id"], record.name, cleared or "nothing")
        runner = None
        if record.target_state in ("PAUSED", "STOPPED"):  # STOPPED: Kafka Connect's stop, no task runs
            report(record.target_state)
        else:
            runner = TaskRunner(record, task, self.settings, report, self.max_attempts, max_delay=self.max_delay)
            runner.start()
        with self._lock:
            self.owned[key] = Owned(record.name, task, record.version, runner)
        log.info("task %s: %s", key, "paused" if runner is None else "started")

    def _stop_runner(self, key: str) -> None:
        owned = self.owned.get(key)
        if owned and owned.runner and not owned.runner.stop():
            log.warning("task %s did not stop within the timeout; its thread is abandoned", key)

    def _release(self, key: str, status: str | None = "UNASSIGNED") -> None:
        owned = self.owned.get(key)
        self._stop_runner(key)
        with self._lock:
            self.owned.pop(key, None)
            self._lost.discard(key)
        if owned and status:  # before the release: the next owner's reports must come after ours
            try:
                self.store.set_task_status(owned.connector, owned.task, status, None)
            except Exception as exc:
                log.warning("cannot store status of %s: %s", key, exc)
        self.leases.release(key, self.id)
        log.info("task %s released", key)

    # -- reconcile ----------------------------------------------------------------------------
    def step(self) -> None:
        records = {r.name: r for r in self.store.all()}
        desired = {task_key(r.name, t): (r, t) for r in records.values() for t in range(r.task_count)}
        with self._lock:
            lost, self._lost = self._lost, set()
        for key in lost:  # someone else holds it now: stop without touching its status
            log.warning("lease of %s lost; stopping it", key)
            self._stop_runner(key)
            with self._lock:
                self.owned.pop(key, None)
        for key in [k for k in self.owned if k not in desired]:
            self._release(key, status=None)  # connector deleted: nothing to report on
        for key, owned in list(self.owned.items()):
            record, task = desired[key]
            if record.version != owned.version:
                self._status(record, task)("RESTARTING")
                self._stop_runner(key)
                self._start(key, record, task)
        self._balance(desired)

    def _balance(self, desired: dict[str, tuple[ConnectorRecord, int]]) -> None:
        share = fair_share(len(desired), len(self.leases.live_workers()))
        surplus = len(self.owned) - share
        for key in sorted(self.owned, reverse=True)[: max(surplus, 0)]:
            log.info("releasing %s: %d tasks over the fair share of %d", key, surplus, share)
            self._release(key)
        if len(self.owned) >= share:
            return
        owners = self.leases.owners([k for k in desired if k not in self.owned])
        for key in sorted(k for k, owner in owners.items() if owner is None):
            if len(self.owned) >= share:
                break
            if self.leases.acquire(key, self.id):
                record, task = desired[key]
                self._start(key, record, task)

    # -- main loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started (lease %.1fs)", self.id, self.leases.ttl_ms / 1000)
        beat_stop = threading.Event()
        self.leases.heartbeat(self.id)
        beat = threading.Thread(target=self._heartbeat, args=(beat_stop,), name="heartbeat", daemon=True)
        beat.start()
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # control DB or Redis away: keep the running tasks, try again
                    log.warning("reconcile failed: %s", exc)
                stop.wait(self.tick)
        finally:
            self.shutdown()
            beat_stop.set()

    def shutdown(self) -> None:
        """Stop every task and release its lease, so another worker takes it over at once."""
        for owned in list(self.owned.values()):
            if owned.runner:
                owned.runner.stop_event.set()  # all stop together, then wait for each
        for key in list(self.owned):
            try:
                self._release(key)
            except Exception as exc:
                log.warning("cannot release %s: %s", key, exc)
        try:
            self.leases.leave(self.id)
        except Exception as exc:
            log.warning("cannot deregister worker %s: %s", self.id, exc)
        log.info("worker %s stopped", self.id)
