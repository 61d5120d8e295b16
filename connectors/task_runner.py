"""One connector task in a thread: build its runtime, run it until stopped, retry failures.

A failure (lost database connection, broker down) is retried with exponential backoff
(1 s, 2 s, 4 s ... capped at `max_delay`); meanwhile the task shows state RUNNING with a detail
`retrying in Ns (attempt k/N): <error>` and the trace. After `max_attempts` consecutive failures
it becomes FAILED and stays so until a restart. A task that ran healthily for a while before
failing starts counting again. Config errors and fatal sink errors fail at once: retrying
cannot fix them.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from connectors.document import parse
from connectors.plugins import TaskContext
from connectors.secrets import scrub
from connectors.store import ConnectorRecord
from deploy.logs import in_tenant
from deploy.messages import post_message
from deploy.openlineage import streaming_run

log = logging.getLogger(__name__)

Report = Callable[..., None]  # report(state, detail=None, trace=None)


class ConfigInvalid(Exception):
    pass


def _is_config_error(exc: BaseException) -> bool:
    """Errors no retry can fix: the stored config is invalid (also when a task finds out itself,
    e.g. a pydantic ValidationError building its model, or an error marked `config_error = True`)."""
    from pydantic import ValidationError

    return isinstance(exc, (ConfigInvalid, ValidationError)) or getattr(exc, "config_error", False) is True


def _summary(exc: BaseException) -> str:
    """The error's first line: driver errors go on with the SQL and its row values (kept in the trace only)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def build_runtime(record: ConnectorRecord, settings, codec=None, **sink_kwargs):
    """The SourceRuntime or SinkRunner for a stored connector (imports are late: workers only).
    A stage of a pipeline (`pipeline` in its document) counts under the pipeline's name, so
    /pipelines/{name}/stats shows every stage; a stand-alone sink counts under its own name."""
    from schemas.serde import WireCodec

    spec, errors = parse(record.name, record.config, settings)
    if spec is not None:  # paths outside the connector's data root are never opened (issue 20)
        from connectors.validation import stored_path_errors

        errors = stored_path_errors(record, spec, settings)
        spec = None if errors else spec
    if spec is None:
        raise ConfigInvalid("; ".join(f"{e.field}: {e.message}" for e in errors))
    codec = codec or WireCodec(settings.schema_registry_url)
    task = spec.plugin.build(spec.plugin_config, TaskContext(record.name, settings, codec, record.tenant))
    evolution = getattr(task, "evolution", None)  # schema changes it meets are recorded for its tenant
    if evolution is not None:
        evolution.attach(settings.resolved_control_db_url, record.tenant)
    cfg = spec.plugin_config
    if callable(getattr(task, "run", None)):
        # A task that runs itself (a pipeline's runner stage): it reads the connector's topics.
        if spec.topics:
            task.topics = list(spec.topics)
        return task
    if spec.kind == "source":
        from connectors.runtime import SourceRuntime

        if not getattr(task, "name", None):
            task.name = record.name  # offsets are stored under the task's name
        from deploy.control import StageCounters

        return SourceRuntime(
            task,
            bootstrap=settings.kafka_bootstrap,
            codec=codec,
            control_db_url=settings.resolved_control_db_url,
            topic_prefix=getattr(cfg, "topic_prefix", None) or settings.topic_prefix,
            partitions=getattr(cfg, "partitions", 1),
            counters=StageCounters(settings.resolved_control_db_url, spec.pipeline) if spec.pipeline else None,
        )
    from deploy.control import StageCounters
    from sinks.runtime import SinkRunner

    # counters under the pipeline's or the connector's name: written/deleted and write latency reach /metrics
    return SinkRunner(
        settings.kafka_bootstrap,
        f"huiliu-connect-{record.name}",
        spec.topics,
        codec,
        task,
        counters=StageCounters(settings.resolved_control_db_url, spec.pipeline or record.name),
        **sink_kwargs,
    )


class TaskRunner:
    def __init__(
        self,
        record: ConnectorRecord,
        task_id: int,
        settings,
        report: Report,
        max_attempts: int = 6,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
    ):
        self.record = record
        self.task_id = task_id
        self.settings = settings
        self._report = report
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.stop_event = threading.Event()
        self.state = "RUNNING"
        # its log lines carry the connector's tenant, so GET /logs shows them to that tenant
        main = in_tenant(record.tenant, self._main)
        self.thread = threading.Thread(target=main, name=f"task-{record.name}-{task_id}", daemon=True)

    def start(self) -> None:
        self.report("RUNNING", "starting")
        self.thread.start()

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the task to stop and wait; False when it did not stop in time (it is a daemon thread)."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        return not self.thread.is_alive()

    def report(self, state: str, detail: str | None = None, trace: str | None = None) -> None:
        self.state = state
        try:
            self._report(state, scrub(detail, self.record.config), scrub(trace, self.record.config))
        except Exception as exc:  # a status write must never kill the task itself
            log.warning("cannot store status of %s/%d: %s", self.record.name, self.task_id, exc)

    def _fail(self, exc: BaseException, prefix: str) -> None:
        message = scrub(f"{prefix}{_summary(exc)}", self.record.config)
        log.error("task %s/%d failed: %s", self.record.name, self.task_id, message)
        self.report("FAILED", message, traceback.format_exc())

    def _watch_sink(self, runtime) -> None:
        """A sink retries a failing write itself, forever (the store may come back): its status says
        so meanwhile, like a retried task's (`retrying in Ns (attempt k, failing since ...)` with the
        error), and after `max_attempts` failures in a row a message goes to the connector's tenant."""
        from sinks.runtime import SinkRunner

        if not isinstance(runtime, SinkRunner):
            return
        status = runtime.status
        original, max_backoff = status.set, getattr(runtime, "max_backoff", 10.0)
        failing = {"count": 0, "since": None, "alerted": False}

        def observed(state: str, error: str | None = None) -> None:
            original(state, error)
            if state == "degraded":
                failing["count"] += 1
                failing["since"] = failing["since"] or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                delay = min(0.5 * 2 ** (failing["count"] - 1), max_backoff)
                self.report(
                    "RUNNING",
                    f"retrying in {delay:g}s (attempt {failing['count']}, failing since {failing['since']}): {error}",
                )
                if failing["count"] >= self.max_attempts and not failing["alerted"]:
                    failing["alerted"] = True
                    self._alert(f"failing since {failing['since']} ({failing['count']} attempts): {error}")
            elif state == "running" and failing["count"]:
                failing.update(count=0, since=None, alerted=False)
                self.report("RUNNING", "recovered after a retry")

        status.set = observed

    def _alert(self, detail: str) -> None:
        """A message to the connector's tenant in the message centre (never fatal to the task)."""
        try:
            post_message(
                self.settings.resolved_control_db_url,
                "connector",
                "error",
                f"connector {self.record.name} task {self.task_id} is failing",
                scrub(detail, self.record.config),
                tenant=getattr(self.record, "tenant", None),
            )
        except Exception as exc:
            log.warning("cannot raise the message for %s/%d: %s", self.record.name, self.task_id, exc)

    def _main(self) -> None:
        from sinks.base import FatalSinkError

        attempts = 0
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                runtime = build_runtime(self.record, self.settings)
                self.report("RUNNING", "recovered after a retry" if attempts else None)
                self._watch_sink(runtime)
                held = getattr(getattr(runtime, "task", None), "held", None)
                if held is not None and hasattr(held, "on_hold"):  # a table held, the others captured
                    held.on_hold = lambda detail: self.report("RUNNING", detail)
                with streaming_run(self.settings, self.record, self.task_id):  # OpenLineage, when on
                    runtime.run(self.stop_event)
                return
            except (ConfigInvalid, FatalSinkError) as exc:
                self._fail(exc, "")
                return
            except Exception as exc:  # noqa: BLE001 - every other failure is retried with backoff
                if self.stop_event.is_set():
                    return
                if _is_config_error(exc):  # found by the task itself: retrying cannot fix it
                    self._fail(exc, "config error: ")
                    return
                if time.monotonic() - started > 2 * self.max_delay:
                    attempts = 0  # it was healthy for a while: a new run of failures
                attempts += 1
                if attempts >= self.max_attempts:
                    self._fail(exc, f"gave up after {attempts} attempts: ")
                    self._alert(f"FAILED after {attempts} attempts: {_summary(exc)}")
                    return
                delay = min(self.base_delay * 2 ** (attempts - 1), self.max_delay)
                message = f"retrying in {delay:.0f}s (attempt {attempts}/{self.max_attempts}): {_summary(exc)}"
                log.warning("task %s/%d: %s", self.record.name, self.task_id, scrub(message, self.record.config))
                self.report("RUNNING", message, traceback.format_exc())
                self.stop_event.wait(delay)
