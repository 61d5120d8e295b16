"""FastAPI application factory. Routers per resource (api/routers/*); every route is authorised."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.audit.middleware import AuditMiddleware
from api.auth import api_key_for
from api.edge import install_edge
from api.identity.tokens import signing_key
from api.refusals import install as install_refusals
from api.request_ids import install_request_ids
from api.route_index import index_routes
from api.routers import all_routers
from api.scheduling.runtime import lifespan
from api.security_headers import SecurityHeadersMiddleware
from deploy.pandas_probes import skip_pandas_probes
from deploy.settings import Settings, get_settings
from deploy.version import huiliu_version


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI echoes the rejected input by default; it may be a password or a key, so drop it.
    errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def _unstorable_value(request: Request, exc: DataError) -> JSONResponse:
    # A value the control DB cannot hold (on PostgreSQL: an id beyond its integer column, a NUL
    # character in text) is a bad request, not a server failure. The driver's text may quote the value.
    return JSONResponse(
        {"detail": "a value does not fit the store: a number out of range or a NUL character in text"}, status_code=422
    )


async def _http_error(request: Request, exc: StarletteHTTPException):
    # Refusals carry their reason into the audit entry: the plain-text messages of 401/403/404/429,
    # written by this service (no secrets, no echoed input documents).
    if exc.status_code in (401, 403, 404, 429) and isinstance(exc.detail, str):
        request.state.audit_reason = exc.detail[:300]
    return await http_exception_handler(request, exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    skip_pandas_probes()  # also in API worker processes uvicorn spawns (they do not go through the CLI)
    settings = settings or get_settings()
    # lifespan: the background loops every API process runs (job heartbeat, scheduler, alerts)
    app = FastAPI(
        title="Huiliu",
        version=huiliu_version(),
        description="Streaming data integration and governance",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.api_key = api_key_for(settings)
    app.state.jwt_key = signing_key(settings.state_dir)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _unstorable_value)
    install_refusals(app)  # 422 for paths/hosts out of scope, 429 for too many live checks
    install_edge(app, settings)  # innermost: size, numeric/time/text bounds of every route; 500 with request id
    app.add_middleware(AuditMiddleware, url=settings.resolved_control_db_url)
    install_request_ids(app)  # outside the audit: the audit entry carries the same request id
    app.add_middleware(SecurityHeadersMiddleware)  # added last = outermost: on every response
    for router in all_routers():  # api/routers/__init__.py ROUTERS: every router, listed
        app.include_router(router)
    index_routes(app)  # a request is tried only against the routes its path's first segment can reach
    return app
