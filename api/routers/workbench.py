"""GET /workbench: the caller's to-do list (issue 16). Thin: composed in api/workbench.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.security import Principal, authenticated
from api.workbench import workbench

router = APIRouter(tags=["workbench"])


@router.get(
    "/workbench",
    summary="Your to-do list: standards reviews waiting for you, your returned submissions, failed jobs, alerts",
)
async def my_workbench(request: Request, principal: Principal = Depends(authenticated)) -> dict[str, Any]:
    return await run_in_threadpool(workbench, request.app, principal)
