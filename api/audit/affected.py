"""Which tenant a request touched, for the audit log: the attacked tenant must see the attempt too.

Routes (or the access checks they call) note the owner of the object they looked at, whether the
answer was the object or a 404/403; the audit middleware files the entry under the caller's tenant
and records this one as `affected_tenant`.

    from api.audit.affected import note_affected_tenant
    note_affected_tenant(request, head["tenant"])
"""

from __future__ import annotations

from fastapi import Request


def note_affected_tenant(request: Request, tenant: str | None) -> None:
    if tenant:
        request.state.affected_tenant = tenant


def affected_tenant(state: dict) -> str | None:
    """Read back from the ASGI scope's state dict (the middleware's view)."""
    return state.get("affected_tenant")
