"""Starts and stops the API's background loops: job heartbeat, scheduler, alert evaluation,
the quality ticket monitor.

`lifespan` is the app's (api/app.py create_app), so they run in every API process. `start_background(app)` / `stop_background(app)` are the same
steps for an app that prefers to call them itself. Set HUILIU_OPS_LOOPS=0 to keep an API process
from running them (e.g. a read-only replica).
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


def start_background(app) -> None:
    if getattr(app.state, "ops_loops_started", False) or os.environ.get("HUILIU_OPS_LOOPS", "1") == "0":
        return
    from api.alerts import alert_engine_for
    from api.jobs import job_manager
    from api.quality.tickets import ticket_loop_for
    from api.scheduling import scheduler_for
    from deploy.logs import configure_logging

    # The JSON log file that /logs searches (idempotent). stderr stays as the launcher set it up:
    # callers that pipe an API's stderr without reading it must not block on our lines.
    configure_logging(app.state.settings, stderr=False)
    job_manager(app).start()
    scheduler_for(app).start()
    alert_engine_for(app).start()
    ticket_loop_for(app).start()  # quality tickets: opened, verified, escalated from the runners' counters
    app.state.ops_loops_started = True
    log.info("background loops started: jobs, scheduler, alerts, quality tickets")


def stop_background(app) -> None:
    if not getattr(app.state, "ops_loops_started", False):
        return
    for name in ("quality_tickets", "alerts", "scheduler", "jobs"):
        component = getattr(app.state, name, None)
        if component is not None:
            component.stop()
    app.state.ops_loops_started = False


@asynccontextmanager
async def lifespan(app):
    start_background(app)
    try:
        yield
    finally:
        stop_background(app)
