"""File imports (AGG-05): reports (rows read, ok and bad per imported file, with a sample of bad
rows) and one-off imports of a file connector's path, run as message-centre jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.jobs import job_manager
from api.jobs.connector_jobs import ImportRefused, check_import, import_files
from api.routers.connectors import _record
from api.security import Principal, require
from connectors.files.reports import ImportReports

router = APIRouter(tags=["imports"])


def _reports(request: Request) -> ImportReports:
    return ImportReports(request.app.state.settings.resolved_control_db_url)


@router.get("/imports", summary="File imports, newest first", dependencies=[Depends(require("imports:view"))])
async def list_imports(
    request: Request, connector: str | None = None, status: str | None = None, limit: int = Query(100, ge=1, le=1000)
) -> dict:
    items = await run_in_threadpool(_reports(request).list, connector, status, limit)
    return {"imports": items}


@router.get(
    "/imports/{import_id}",
    summary="One file import with its first bad rows (line and reason)",
    dependencies=[Depends(require("imports:view"))],
)
async def get_import(import_id: int, request: Request) -> dict:
    item = await run_in_threadpool(_reports(request).get, import_id)
    if item is None:
        raise HTTPException(404, f"no import {import_id}")
    return item


class ImportRequest(BaseModel):
    connector: str = Field(max_length=200, description="a file connector (plugin `files`)")
    path: str = Field(max_length=1000, description="file or glob below the connector's store root")


@router.post(
    "/imports", status_code=202, summary="Import a path of a file connector once, as a job (result: the import reports)"
)
def start_import(
    body: ImportRequest, request: Request, principal: Principal = Depends(require("connector:manage"))
) -> dict:
    audit_as(request, "import.start", connector=body.connector, path=body.path)
    record = _record(request, body.connector)
    try:
        check_import(record, body.path)
    except ImportRefused as exc:
        raise HTTPException(exc.status, str(exc))
    settings, manager = request.app.state.settings, job_manager(request.app)
    job_id = manager.submit("files.import", principal.name, lambda ctx: import_files(ctx, settings, record, body.path))
    request.state.audit_detail["job"] = job_id
    return manager.get(job_id)
