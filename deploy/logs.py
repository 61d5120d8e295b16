"""Structured logs: JSON lines to stderr and to `<state_dir>/logs/huiliu.jsonl` (searched by GET /logs).

Each line: {"time", "level", "logger", "message", "request_id", ...extra}. `request_id` comes from
a context variable the API's middleware sets (api/request_ids.py), so every line logged while
serving a request carries its id. Secrets must not be passed to log calls (NFR-03).
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import sys
import time
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from deploy.settings import Settings

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("huiliu_request_id", default=None)
LOG_FILE = "huiliu.jsonl"
_MARK = "_huiliu_json"  # set on our handlers so a second call does not add duplicates


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class _Formatter(JsonFormatter):
    def formatTime(self, record, datefmt=None):  # ISO 8601 UTC with milliseconds: sortable, comparable
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def formatter() -> logging.Formatter:
    return _Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def log_path(settings: Settings) -> Path:
    return settings.state_dir / "logs" / LOG_FILE


def configure_logging(
    settings: Settings,
    level: str = "INFO",
    stderr: bool = True,
    stderr_level: str | None = None,
    max_bytes: int = 50_000_000,
    backups: int = 5,
) -> Path:
    """Install the JSON handlers on the root logger (idempotent); returns the log file's path.

    `stderr_level` (default: `level`) lets a console stay quieter than the file."""
    root = logging.getLogger()
    path = log_path(settings)
    if any(getattr(h, _MARK, None) == str(path) for h in root.handlers):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    ]
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel((stderr_level or level).upper())
        handlers.append(console)
    for h in handlers:
        h.setFormatter(formatter())
        h.addFilter(RequestIdFilter())
        setattr(h, _MARK, str(path))
        root.addHandler(h)
    root.setLevel(level.upper())
    return path
