"""Answers for refusals raised below the routers: a path outside the caller's data root or a
host off the tenant's allow-list (422, naming the parameter), too many connection checks (429
with Retry-After). `install(app)` registers them."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.paths import PathRefused
from connectors.probes import HostRefused, ProbeRateLimited


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    request.state.audit_reason = str(exc)[:300]
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _rate_limited(request: Request, exc: ProbeRateLimited) -> JSONResponse:
    request.state.audit_reason = str(exc)
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(PathRefused, _refused)
    app.add_exception_handler(HostRefused, _refused)
    app.add_exception_handler(ProbeRateLimited, _rate_limited)
