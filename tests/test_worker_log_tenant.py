"""Issue 14: a connector task's log lines carry its connector's tenant (connectors/task_runner.py runs
the task under deploy.logs.in_tenant), so a tenant's caller finds its task failures in GET /logs.
Pure logic: no servers (the task fails while being built)."""

from __future__ import annotations

import logging

from connectors.store import ConnectorRecord
from connectors.task_runner import TaskRunner
from deploy.logs import tenant_var
from deploy.settings import Settings


class _Tenants(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str | None, str]] = []

    def emit(self, record):  # runs in the logging thread: the task's own
        self.seen.append((tenant_var.get(), record.getMessage()))


def test_a_tasks_failure_is_logged_in_its_connectors_tenant(tmp_path):
    record = ConnectorRecord(
        "tenant-log-task",
        "source",
        "no.such.plugin",
        {"connector.class": "no.such.plugin"},
        "RUNNING",
        1,
        1,
        0.0,
        0.0,
        "tx",
    )
    handler, logger = _Tenants(), logging.getLogger("connectors.task_runner")
    logger.addHandler(handler)
    try:
        runner = TaskRunner(record, 0, Settings(state_dir=tmp_path), lambda *a: None, max_attempts=1, base_delay=0)
        runner.start()
        runner.thread.join(30)
    finally:
        logger.removeHandler(handler)
    failed = [tenant for tenant, message in handler.seen if "tenant-log-task" in message]
    assert failed and set(failed) == {"tx"}, handler.seen
    assert tenant_var.get() is None  # the test's own thread is untouched
