"""Structured logs: JSON lines to stderr and to `<state_dir>/logs/huiliu.jsonl` (searched by GET /logs).

Each line: {"time", "level", "logger", "message", "request_id", "tenant", ...extra}. `request_id` comes from
a context variable the API's middleware sets (api/request_ids.py), so every line logged while
serving a request carries its id. Secrets must not be passed to log calls (NFR-03).

`tenant` is the tenant of the request's caller (None: the operator, an all-tenant caller, or no
request), so GET /logs can show a tenant its own lines only. The API sets it where the caller is
resolved (`set_request_tenant`, from api/security.py); as that runs in a worker thread whose
context does not flow back, it is also remembered per request id, and a request id claimed by two
tenants (a caller may choose its X-Request-ID) attributes its lines to neither. Background work
may pass `extra={"tenant": ...}` or set `tenant_var` itself.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from deploy.settings import Settings

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("huiliu_request_id", default=None)
tenant_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("huiliu_tenant", default=None)
_CONFLICT = object()  # a request id used by callers of two tenants: its lines belong to neither
_REMEMBERED = 10_000  # request ids whose tenant is remembered (the newest)
_request_tenants: OrderedDict[str, object] = OrderedDict()
_tenants_lock = threading.Lock()


def set_request_tenant(tenant: str | None) -> None:
    """The current request's caller belongs to `tenant`: every line logged for it says so."""
    tenant_var.set(tenant)
    rid = request_id_var.get()
    if not rid:
        return
    with _tenants_lock:  # None (the operator's) is a claim too: no tenant may take over its lines
        known = _request_tenants.get(rid, tenant)
        _request_tenants[rid] = tenant if known == tenant else _CONFLICT
        _request_tenants.move_to_end(rid)
        while len(_request_tenants) > _REMEMBERED:
            _request_tenants.popitem(last=False)


def in_tenant(tenant: str | None, fn):
    """`fn` wrapped so that the lines it logs (in whatever thread runs it, e.g. a job worker) carry
    `tenant`; the thread's previous tenant is restored afterwards."""

    def run(*args, **kwargs):
        token = tenant_var.set(tenant)
        try:
            return fn(*args, **kwargs)
        finally:
            tenant_var.reset(token)

    return run


def request_tenant(request_id: str | None) -> str | None:
    if not request_id:
        return None
    with _tenants_lock:
        tenant = _request_tenants.get(request_id)
    return tenant if isinstance(tenant, str) else None


LOG_FILE = "huiliu.jsonl"
_MARK = "_huiliu_json"  # set on our handlers so a second call does not add duplicates


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        if getattr(record, "tenant", None) is None:
            record.tenant = tenant_var.get() or request_tenant(record.request_id)
        return True


class _Formatter(JsonFormatter):
    def formatTime(self, record, datefmt=None):  # ISO 8601 UTC with milliseconds: sortable, comparable
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def formatter() -> logging.Formatter:
    return _Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant)s",
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
