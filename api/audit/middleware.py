"""ASGI middleware: one audit entry per API request, written before the response leaves.

Writing before the response start means a client that saw an answer can rely on its audit entry
existing. Routes enrich the entry through `request.state`: `principal` (set by require),
`permission`, `audit_action`, `audit_detail` and, for failed logins, `audit_actor`.
"""

from __future__ import annotations

import logging
import uuid

from starlette.concurrency import run_in_threadpool

from api.audit.log import audit_log_for
from deploy.logs import request_id_var

log = logging.getLogger(__name__)

# Static documentation is not an operation on the platform.
UNAUDITED = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/favicon.ico"}


class AuditMiddleware:
    def __init__(self, app, url: str):
        self.app = app
        self.url = url

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in UNAUDITED:
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        # The id api.request_ids gave this request (it also returns it as X-Request-ID).
        request_id = request_id_var.get() or uuid.uuid4().hex
        written = False

        async def audited_send(message):
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True
                await self._write(scope, state, message["status"], request_id)
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not written:
                await self._write(scope, state, 500, request_id)
            raise

    async def _write(self, scope, state: dict, status: int, request_id: str) -> None:
        principal = state.get("principal")
        route = scope.get("route")
        template = getattr(route, "path", None) or scope["path"]
        action = state.get("audit_action") or f"{scope['method']} {template}"
        client = scope.get("client")
        try:
            await run_in_threadpool(
                audit_log_for(self.url).record,
                actor=principal.name if principal else state.get("audit_actor", "anonymous"),
                actor_kind=principal.kind if principal else "anonymous",
                tenant=principal.tenant if principal else state.get("audit_tenant"),
                action=action,
                permission=state.get("permission"),
                method=scope["method"],
                path=scope["path"],
                status=status,
                client_ip=client[0] if client else None,
                request_id=request_id,
                detail=state.get("audit_detail"),
            )
        except Exception:  # never lose the response over it, but say so loudly
            log.exception("audit entry could not be written for %s %s", scope["method"], scope["path"])
