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


def install_request_ids(app) -> None:
    @app.middleware("http")
    async def request_id_middleware(request, call_next):
        given = request.headers.get(HEADER)
        rid = given if given and _SANE.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            access_log.exception("request failed", extra={"method": request.method, "path": request.url.path})
            raise
        finally:
            request_id_var.reset(token)
        response.headers[HEADER] = rid
        # Logged after the reset, so pass the id explicitly; query strings stay out (they may hold secrets).
        access_log.info(
            "%s %s %s",
            request.method,
            request.url.path,
            response.status_code,
            extra={
                "request_id": rid,
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - start) * 1000, 1),
            },
        )
        return response
