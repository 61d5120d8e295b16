"""File import reports (AGG-05): rows read, ok and bad per imported file, with a sample of bad rows."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.security import require
from connectors.files.reports import ImportReports

router = APIRouter(tags=["imports"])


def _reports(request: Request) -> ImportReports:
    return ImportReports(request.app.state.settings.resolved_control_db_url)


@router.get("/imports", summary="File imports, newest first", dependencies=[Depends(require("imports:view"))])
async def list_imports(request: Request, connector: str | None = None, status: str | None = None,
                       limit: int = Query(100, ge=1, le=1000)) -> dict:
    items = await run_in_threadpool(_reports(request).list, connector, status, limit)
    return {"imports": items}


@router.get("/imports/{import_id}", summary="One file import with its first bad rows (line and reason)",
            dependencies=[Depends(require("imports:view"))])
async def get_import(import_id: int, request: Request) -> dict:
    item = await run_in_threadpool(_reports(request).get, import_id)
    if item is None:
        raise HTTPException(404, f"no import {import_id}")
    return item
