"""ASGI middleware: one audit entry per API request, written before the response leaves.

Writing before the response start means a client that saw an answer can rely on its audit entry
existing; when the entry cannot be written, the answer is withheld and replaced by a 503 naming the
request id (nothing is served unaudited; a change the handler already made stays made, and the
log line says so). Routes enrich the entry through `request.state`: `principal` (set by require),
`permission`, `audit_action`, `audit_detail`, `affected_tenant` (api.audit.affected) and, for
failed logins, `audit_actor`; refusals add the reason of the 4xx (`audit_reason`, from app.py's
HTTPException handler).
"""

from __future__ import annotations

import json
import logging
import uuid

from starlette.concurrency import run_in_threadpool

from api.audit.affected import affected_tenant
from api.audit.log import audit_log_for
from deploy.logs import request_id_var

log = logging.getLogger(__name__)

# Static documentation is not an operation on the platform.
# Liveness probes (GET /livez, every few seconds from a load balancer) neither.
UNAUDITED = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/favicon.ico", "/livez"}
# Nor the web console's static files (scripts, styles, licences); its pages and actions are audited.
UNAUDITED_PREFIXES = ("/console/static/",)


class AuditUnavailable(Exception):
    pass


class AuditMiddleware:
    def __init__(self, app, url: str):
        self.app = app
        self.url = url

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in UNAUDITED or scope["path"].startswith(UNAUDITED_PREFIXES):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        # The id api.request_ids gave this request (it also returns it as X-Request-ID).
        request_id = request_id_var.get() or uuid.uuid4().hex
        written = False
        withheld = False

        async def audited_send(message):
            nonlocal written, withheld
            if message["type"] == "http.response.start" and not written:
                written = True
                try:
                    await self._write(scope, state, message["status"], request_id)
                except AuditUnavailable:
                    withheld = True
                    await _unaudited(send, request_id)
                    return
            if withheld:
                return  # the handler's answer is not served
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not written:
                written = True
                try:
                    await self._write(scope, state, 500, request_id)
                except AuditUnavailable:
                    pass  # logged; the server answers 500 for the exception anyway
            raise

    async def _write(self, scope, state: dict, status: int, request_id: str) -> None:
        principal = state.get("principal")
        route = scope.get("route")
        # a NUL in the request path (refused with 422 at the edge) cannot be stored: shown as U+FFFD
        path = scope["path"].replace("\x00", "\ufffd")
        template = getattr(route, "path", None) or path
        action = state.get("audit_action") or f"{scope['method']} {template}"
        client = scope.get("client")
        tenant = principal.tenant if principal else state.get("audit_tenant")
        affected = affected_tenant(state)
        detail = dict(state.get("audit_detail") or {})
        if status >= 400 and state.get("audit_reason"):
            detail["reason"] = state["audit_reason"]
        batched = bool(state.get("audit_batched"))  # data-API calls: queued, written in batches
        try:
            write = audit_log_for(self.url).record
            call = _now if batched else run_in_threadpool
            await call(
                write,
                batched=batched,
                actor=principal.name if principal else state.get("audit_actor", "anonymous"),
                actor_kind=principal.kind if principal else "anonymous",
                tenant=tenant,
                affected_tenant=affected if affected != tenant else None,
                action=action,
                permission=state.get("permission"),
                method=scope["method"],
                path=path,
                status=status,
                client_ip=client[0] if client else None,
                request_id=request_id,
                detail=detail,
            )
        except Exception as exc:
            log.exception(
                "audit entry could not be written for %s %s (status %s, request %s): answer withheld",
                scope["method"],
                scope["path"],
                status,
                request_id,
            )
            raise AuditUnavailable from exc


async def _now(fn, **kwargs):
    """A queued entry: no thread hop, nothing waits on the database."""
    return fn(**kwargs)


async def _unaudited(send, request_id: str) -> None:
    body = json.dumps(
        {
            "detail": "the audit log could not record this request, so its answer is withheld; "
            "a change it made may have been applied: check before retrying",
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"retry-after", b"5"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
