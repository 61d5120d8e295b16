"""The consumer groups of sink connectors (`huiliu-connect-<name>`, connectors/task_runner.py), with
the topics they read and their tasks' state (connectors.task_health).

A sink failing from its first batch commits nothing, and once its consumer is closed the broker may
not list its group at all: lag read from the broker alone would not show it. The control DB knows
the group and its topics, so `/ops/lag` shows it with everything unread and why.
"""

from __future__ import annotations

from typing import Any

from connectors.plugins import reads_topics
from connectors.task_health import shown
from connectors.topics import connector_topics

GROUP_PREFIX = "huiliu-connect-"
_ORDER = {"FAILED": 0, "FAILING": 1}  # the worst task speaks for the group


def sink_groups(store, settings, tenants: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """group -> {connector, topics, state, last_error, attempt, next_retry_s} for the sink
    connectors of `tenants` (None: all). State: the worst task's (FAILED, FAILING, RUNNING...),
    PAUSED/STOPPED when so targeted, UNASSIGNED when no task reported yet."""
    groups = {}
    for record in store.all(tenants):
        if not reads_topics(record.kind):  # sinks and runners (processors) consume in a group
            continue
        readings = [shown(s["state"], s["detail"]) for s in store.task_statuses(record.name).values()]
        readings.sort(key=lambda r: _ORDER.get(r["state"], 2))
        reading = readings[0] if readings else shown("UNASSIGNED", None)
        if record.target_state != "RUNNING" and reading["state"] not in _ORDER:
            reading = shown(record.target_state, None)
        groups[GROUP_PREFIX + record.name] = {
            "connector": record.name,
            "topics": connector_topics(record, settings),
            **reading,
        }
    return groups
