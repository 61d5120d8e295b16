"""A task's status as an operator reads it: FAILED, FAILING (RUNNING while retrying: the worker's
detail `retrying in Ns (attempt k...): <error>`) or its plain state, with the last error, the
attempt and the next retry. One reading for `/health`, `/ops/lag` and the `task_failed` alert."""

from __future__ import annotations

import re
from typing import Any

_RETRY = re.compile(r"^retrying in ([0-9.]+)s \(attempt (\d+)")


def failing(state: str, detail: str | None) -> dict[str, Any] | None:
    """{state: FAILED|FAILING, last_error, attempt, next_retry_s} for a failing task, else None."""
    detail = detail or ""
    retry = _RETRY.match(detail) if state == "RUNNING" else None
    if state != "FAILED" and not retry:
        return None
    return {
        "state": "FAILED" if state == "FAILED" else "FAILING",
        "last_error": detail.split("): ", 1)[-1] if retry else detail,
        "attempt": int(retry.group(2)) if retry else None,
        "next_retry_s": float(retry.group(1)) if retry else None,
    }


def shown(state: str, detail: str | None) -> dict[str, Any]:
    """Any task's state as shown: the failing reading where it fails, else its state and detail."""
    return failing(state, detail) or {"state": state, "last_error": None, "attempt": None, "next_retry_s": None}
