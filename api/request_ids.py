"""Request ids: every request gets one (the caller's `X-Request-ID` if sane and at most 64
characters, else a new one, returned in the header so the caller learns it); it is
returned in the response header and attached to every log line written while serving it.

    from api.request_ids import install_request_ids
    install_request_ids(app)
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from deploy.logs import request_id_var

HEADER = "X-Request-ID"
MAX_LENGTH = 64  # what the audit log stores (audit_log.request_id); a longer id is replaced, not cut
# A caller's id goes into logs and the audit log: no control characters, at most MAX_LENGTH.
_SANE = re.compile(rf"^[A-Za-z0-9._:\-]{{1,{MAX_LENGTH}}}$")
access_log = logging.getLogger("huiliu.access")


class RequestIdMiddleware:
    """Pure ASGI (a BaseHTTPMiddleware ran every request in a task of its own with memory streams
    between them: a third of `GET /livez`'s CPU, issue 17). The access line is written when the
    response starts, as before: its status and the time to the first byte."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, b"x-request-id")
        rid = given if given and _SANE.match(given) else uuid.uuid4().hex
        encoded = rid.encode()
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", encoded))
                message = {**message, "headers": headers}
                # query strings stay out of the line (they may hold secrets)
                access_log.info(
                    "%s %s %s",
                    method,
                    path,
                    message["status"],
                    extra={
                        "request_id": rid,
                        "method": method,
                        "path": path,
                        "status": message["status"],
                        "duration_ms": round((time.perf_counter() - start) * 1000, 1),
                    },
                )
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            access_log.exception("request failed", extra={"method": method, "path": path})
            raise
        finally:
            request_id_var.reset(token)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def install_request_ids(app) -> None:
    app.add_middleware(RequestIdMiddleware)
