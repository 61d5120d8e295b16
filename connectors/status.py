"""A connector's status in Kafka Connect's shape, from what the workers stored and who holds the
task leases now. Pure: the caller reads the store and the leases.

    from connectors.status import connector_status
    connector_status(record, store.task_statuses(name), leases.owners(keys))
"""

from __future__ import annotations

from typing import Any

from connectors.leases import task_key
from connectors.plugins import connect_type
from connectors.store import ConnectorRecord


def task_keys(record: ConnectorRecord) -> list[str]:
    return [task_key(record.name, t) for t in range(record.task_count)]


def connector_status(record: ConnectorRecord, rows: dict[int, dict], owners: dict[str, str | None]) -> dict[str, Any]:
    """`rows`: task -> the worker's last report; `owners`: lease key -> worker holding it now."""
    tasks = []
    for t, key in enumerate(task_keys(record)):
        row, owner = rows.get(t, {}), owners.get(key)
        state = row.get("state", "UNASSIGNED")
        if owner is None:
            state = "UNASSIGNED"
        elif row.get("worker_id") != owner:
            state = "RESTARTING"  # a worker just took it over and has not reported yet
        entry = {"id": t, "state": state, "worker_id": owner}
        if row.get("detail") and owner is not None:
            entry["detail"] = row["detail"]
        if row.get("trace") and owner is not None and (state == "FAILED" or "retrying" in (row.get("detail") or "")):
            entry["trace"] = row["trace"]
        tasks.append(entry)
    if record.target_state in ("PAUSED", "STOPPED"):
        state = record.target_state
    elif tasks and all(t["state"] == "FAILED" for t in tasks):
        state = "FAILED"
    elif any(t["worker_id"] for t in tasks):
        state = "RUNNING"
    else:
        state = "UNASSIGNED"
    return {
        "name": record.name,
        "type": connect_type(record.kind),
        "kind": record.kind,
        "tasks": tasks,
        "connector": {"state": state, "worker_id": tasks[0]["worker_id"] if tasks else None},
    }
