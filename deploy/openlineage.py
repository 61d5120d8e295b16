"""OpenLineage emission (issue 15): off unless `openlineage_url` names a transport:

    http://marquez:5000            HTTP transport, POST <url>/api/v1/lineage (Marquez, DataHub, Huiliu)
    file:///var/log/huiliu/ol.jsonl  file transport, one event per line, appended
    kafka://broker:9092/topic      Kafka transport

Streaming jobs (a worker's connector tasks: sources, runners, sinks) are STREAMING runs: START when
the task starts, a RUNNING event with the whole picture every `openlineage_snapshot_s` (no terminal
event while they run), COMPLETE when stopped, FAIL when the task fails. Snapshots and imports are
BATCH runs: START, then COMPLETE or FAIL. The datasets, fields, column lineage and rules come from the
catalogue (schemas.catalog.openlineage). Emission never stops a job: a failed send is logged.

    with streaming_run(settings, record, task_id):   # around the task's run loop
        ...
    job_fn = batch_run(settings, record, "snapshot", job_fn)
"""

from __future__ import annotations

import logging
import threading
import uuid
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from deploy.kafka_security import client_config

log = logging.getLogger(__name__)


class BadTransport(ValueError):
    pass


def transport_config(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return {"type": "http", "url": url.rstrip("/"), "endpoint": "api/v1/lineage", "timeout": 5.0}
    if parsed.scheme == "file" and parsed.path:
        return {"type": "file", "log_file_path": parsed.path, "append": True}
    if parsed.scheme == "kafka" and parsed.netloc and parsed.path.strip("/"):
        return {
            "type": "kafka",
            "topic": parsed.path.strip("/"),
            "config": client_config(parsed.netloc),  # the platform's Kafka security applies here too
            "flush": True,
        }
    raise BadTransport("openlineage_url: http(s)://host[:port], file:///path or kafka://host:port/topic")


@lru_cache(maxsize=4)
def _client(url: str):
    from openlineage.client import OpenLineageClient

    return OpenLineageClient(config={"transport": transport_config(url)})


def close_clients() -> None:
    """Close the transports' clients (a Kafka producer keeps reconnecting otherwise); the next
    event opens them again."""
    for url in list(_opened):
        _client(url).close(5.0)
    _opened.clear()
    _client.cache_clear()


_opened: set[str] = set()


def emit(settings, event) -> bool:
    """Send one event; False (logged) when the transport failed."""
    try:
        _client(settings.openlineage_url).emit(event)
        _opened.add(settings.openlineage_url)
        return True
    except Exception as exc:  # lineage is a report on the job, never a reason for it to fail
        log.warning("OpenLineage event not sent: %s: %s", type(exc).__name__, str(exc)[:300])
        return False


def _on(settings) -> bool:
    """Emission is on when `openlineage_url` is set (a stand-in settings object without it: off)."""
    return bool(getattr(settings, "openlineage_url", ""))


def job_kind(record) -> str:
    return {"processor": "runner", "sink": "sink"}.get(record.kind, "source")


def _counts(settings, record) -> dict[str, int]:
    pipeline = record.config.get("pipeline")
    if not (record.plugin.startswith("runner.") and isinstance(pipeline, str)):
        return {}
    from deploy.control import StageCounters

    try:
        return StageCounters(settings.resolved_control_db_url, pipeline).read().get("runner", {})
    except Exception:  # counters are a bonus on the event
        return {}


def _event(settings, record, event_type: str, run_id: str, processing: str, error: str | None = None):
    from deploy.control import engine_for
    from schemas.catalog.openlineage import JobView, job_view, run_event
    from schemas.catalog.urns import job_urn

    rules = record.config.get("rules") if record.plugin.startswith("runner.") else None
    view = job_view(
        engine_for(settings.resolved_control_db_url), record.tenant or "", job_urn(record.name), job_kind(record), rules
    )
    view = view or JobView(job_urn(record.name), job_kind(record), [], [])  # not harvested yet: the run alone
    return run_event(view, event_type, run_id, processing, _counts(settings, record), error)


def _send(settings, record, event_type: str, run_id: str, processing: str, error: str | None = None) -> None:
    try:
        event = _event(settings, record, event_type, run_id, processing, error)
    except Exception as exc:
        log.warning("OpenLineage event of %s not built: %s: %s", record.name, type(exc).__name__, str(exc)[:300])
        return
    emit(settings, event)


@contextmanager
def streaming_run(settings, record, task_id: int = 0):
    """START now, RUNNING every `openlineage_snapshot_s` while the body runs, then COMPLETE or FAIL."""
    if not _on(settings):
        yield
        return
    run_id, done = str(uuid.uuid4()), threading.Event()
    _send(settings, record, "START", run_id, "STREAMING")

    def snapshots() -> None:
        while not done.wait(settings.openlineage_snapshot_s):
            _send(settings, record, "RUNNING", run_id, "STREAMING")

    thread = threading.Thread(target=snapshots, name=f"openlineage-{record.name}-{task_id}", daemon=True)
    thread.start()
    try:
        yield
    except BaseException as exc:
        done.set()
        _send(settings, record, "FAIL", run_id, "STREAMING", f"{type(exc).__name__}: {exc}")
        raise
    done.set()
    _send(settings, record, "COMPLETE", run_id, "STREAMING")


def batch_run(settings, record, fn):
    """`fn(ctx)` (a job) as a BATCH run of the connector's job: START, then COMPLETE or FAIL."""
    if not _on(settings):
        return fn

    def run(ctx):
        run_id = str(uuid.uuid4())
        _send(settings, record, "START", run_id, "BATCH")
        try:
            result = fn(ctx)
        except BaseException as exc:
            _send(settings, record, "FAIL", run_id, "BATCH", f"{type(exc).__name__}: {exc}")
            raise
        _send(settings, record, "COMPLETE", run_id, "BATCH")
        return result

    return run
