"""GET /livez: liveness for load balancers and process supervisors (issue 14).

Unauthenticated and constant: `{"status": "ok"}` whenever the process serves HTTP. It reveals
nothing else (no version, components, tenants or timings) and touches no store; readiness with
component details stays on the authenticated `GET /health`. Not audited (api/audit/middleware.py
UNAUDITED), so frequent probes do not fill the audit log.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="Liveness: the API process answers (no credential needed, nothing revealed)")
async def livez() -> dict[str, str]:
    # async: answered on the event loop, without a hop to a worker thread and back
    return {"status": "ok"}
