"""Background jobs for the message centre (GOV-06): `JobManager.submit(type, operator, fn)`.

    from api.jobs import job_manager
    job_id = job_manager(request.app).submit("snapshot", principal.name, lambda ctx: do_it(ctx))

`fn(ctx)` gets a JobContext: `ctx.progress(pct, message)`, `ctx.cancelled()`, `ctx.check_cancelled()`.
"""

from __future__ import annotations

import threading

from api.jobs.context import JobCancelled, JobContext
from api.jobs.manager import JobManager

_lock = threading.Lock()


def job_manager(app) -> JobManager:
    """The app's JobManager, created on first use (the ops lifespan also starts its heartbeat)."""
    with _lock:
        manager = getattr(app.state, "jobs", None)
        if manager is None:
            manager = JobManager(app.state.settings.resolved_control_db_url)
            app.state.jobs = manager
        return manager


__all__ = ["JobManager", "JobContext", "JobCancelled", "job_manager"]
