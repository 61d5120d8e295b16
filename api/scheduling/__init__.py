"""Scheduling (AGG-07): cron, manual, HTTP-triggered and dependent runs of pluggable actions."""

from __future__ import annotations

import threading

from api.scheduling.actions import ACTIONS, action, get_action
from api.scheduling.scheduler import Scheduler

_lock = threading.Lock()


def scheduler_for(app) -> Scheduler:
    """The app's Scheduler (created on first use; the ops lifespan starts its loop)."""
    from api.jobs import job_manager

    jobs = job_manager(app)
    with _lock:
        sched = getattr(app.state, "scheduler", None)
        if sched is None:
            sched = app.state.scheduler = Scheduler(app.state.settings, jobs)
        return sched


__all__ = ["ACTIONS", "action", "get_action", "Scheduler", "scheduler_for"]
