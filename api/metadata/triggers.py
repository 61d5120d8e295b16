"""Harvests nobody asked for by hand: when a connector starts (created RUNNING, or resumed) the
catalogue reads what it touches, as a message-centre job, so the create call does not wait for it.
`metadata_harvest_on_start` (deploy/settings.py) turns it off. One pending harvest per connector:
a second start while the first is queued or running adds none.

    harvest_on_start(app, record, operator) -> job id | None     # never raises
"""

from __future__ import annotations

import logging
import threading

from api.jobs import job_manager
from api.metadata.harvest import Target, harvest_job
from connectors.catalog import harvest_steps
from connectors.topics import connector_topics
from deploy.logs import in_tenant

log = logging.getLogger(__name__)
_pending: set[str] = set()
_lock = threading.Lock()


def harvest_on_start(app, record, operator: str) -> str | None:
    settings = app.state.settings
    if not settings.metadata_harvest_on_start:
        return None
    key, added = f"{record.tenant or ''}/{record.name}", False
    try:
        try:
            topics = connector_topics(record, settings)
        except Exception:  # a document this code no longer parses still has its tables
            topics = []
        steps = harvest_steps(record.plugin, record.config, settings, topics)
        if not steps:
            return None
        with _lock:
            if key in _pending:
                return None
            _pending.add(key)
            added = True
        job = harvest_job(settings, [Target(record.name, record.tenant, tuple(steps), record)])

        def run(ctx):
            try:
                return job(ctx)
            finally:
                with _lock:
                    _pending.discard(key)

        return job_manager(app).submit("metadata.harvest", operator, in_tenant(record.tenant, run))
    except Exception:  # the connector started; its catalogue entry can wait for the next harvest
        log.warning("could not queue the harvest of connector %s", record.name, exc_info=True)
        if added:
            with _lock:
                _pending.discard(key)
        return None
