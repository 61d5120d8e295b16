"""Log search for operators (ENG-01): GET /logs over the JSON lines of deploy/logs.py.

Each line carries the tenant of the request that wrote it (deploy.logs.set_request_tenant). A
tenant's caller sees its tenants' lines only; lines of no tenant (server, background loops, the
operator) and of other tenants stay hidden. Superusers and all-tenant callers see every line.
"""

from __future__ import annotations

import json
from collections import deque

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.edge import parse_time
from api.security import Principal, require
from deploy.logs import log_path

router = APIRouter(tags=["operations"])
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


def _since(value: str | None) -> str | None:
    """An ISO time or epoch seconds (bounded like every time at the edge), as the log's own sortable UTC format."""
    if not value:
        return None
    return parse_time(value, "since").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def search(
    path,
    q: str | None,
    level: str | None,
    since: str | None,
    request_id: str | None,
    limit: int,
    tenants: set[str] | None = None,
) -> list[dict]:
    """The newest `limit` matching lines; `tenants` limits them to lines of those tenants (None = all)."""
    files = [p for p in [path.with_name(path.name + f".{i}") for i in range(5, 0, -1)] + [path] if p.exists()]
    floor = LEVELS.get((level or "DEBUG").upper(), 0)
    needle = q.lower() if q else None
    found: deque = deque(maxlen=limit)  # newest `limit` matches; files are read oldest first
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if needle and needle not in line.lower():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if LEVELS.get(str(rec.get("level", "")).upper(), 0) < floor:
                    continue
                if since and str(rec.get("time", "")) < since:
                    continue
                if request_id and rec.get("request_id") != request_id:
                    continue
                if tenants is not None and rec.get("tenant") not in tenants:
                    continue
                found.append(rec)
    return list(reversed(found))


@router.get("/logs", summary="Search the structured log (your tenants' lines), newest first")
async def logs(
    request: Request,
    q: str | None = Query(None, description="substring, case-insensitive"),
    level: str | None = Query(None, description="minimum level: DEBUG, INFO, WARNING, ERROR"),
    since: str | None = Query(None, description="ISO time or epoch seconds"),
    request_id: str | None = None,
    limit: int = Query(100, ge=1, le=5000),
    principal: Principal = Depends(require("ops:view")),
) -> dict:
    if level and level.upper() not in LEVELS:
        raise HTTPException(422, f"level must be one of {sorted(LEVELS)}")
    path = log_path(request.app.state.settings)
    tenants = principal.visible_tenants()
    lines = await run_in_threadpool(search, path, q, level, _since(since), request_id, limit, tenants)
    # the server's file path is for the installation's administrators only
    return {"file": str(path) if tenants is None else None, "count": len(lines), "lines": lines}
