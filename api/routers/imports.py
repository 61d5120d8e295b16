"""File imports (AGG-05): reports (rows read, ok and bad per imported file, with a sample of bad
rows) and one-off imports of a file connector's path, run as message-centre jobs.

A report belongs to its connector's tenant: lists show the reports of the caller's connectors,
another tenant's report answers 404 (reports of deleted connectors: all-tenant principals only).
The bad-row samples are business data: shown only with `data:view`, else counts and reasons.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.jobs import job_manager
from api.jobs.connector_jobs import ImportRefused, check_import, import_files
from api.routers.connectors import _record, _store, connector_visible
from api.security import Principal, require
from connectors.files.reports import ImportReports
from deploy.logs import in_tenant

router = APIRouter(tags=["imports"])


def _reports(request: Request) -> ImportReports:
    return ImportReports(request.app.state.settings.resolved_control_db_url)


def _scope(request: Request, principal: Principal) -> list[str] | None:
    """The connector names whose reports the caller sees; None = all."""
    if principal.all_tenants:
        return None
    names = _store(request).names(principal.visible_tenants())
    return [n for n in names if principal.may_access("connector", n)]


# A value quoted in a reason ("not a decimal: '12x'"), but not a column's name ("column 'amount'").
_QUOTED = re.compile(r"""(column )?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _elide_values(reason: str) -> str:
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) else "<value>", reason)


def _without_samples(item: dict, principal: Principal) -> dict:
    """Bad-row samples only with data:view; otherwise row and line numbers and the reasons, with the
    values they quote elided."""
    if principal.can("data:view") or not item.get("errors"):
        return item
    errors = [
        {
            "row": e.get("row"),
            "line": e.get("line"),
            "reason": _elide_values(str(e.get("reason", ""))),
        }
        for e in item["errors"]
    ]
    return {**item, "errors": errors, "samples_hidden": True}


@router.get("/imports", summary="File imports of the caller's connectors, newest first")
async def list_imports(
    request: Request,
    connector: str | None = None,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require("imports:view")),
) -> dict:
    scope = await run_in_threadpool(_scope, request, principal)
    if scope is not None and connector is not None and connector not in scope:
        exists, tenant = await run_in_threadpool(_store(request).tenant_of, connector)
        if exists:  # another tenant's connector: nothing, and its owner sees the attempt
            note_affected_tenant(request, tenant)
        return {"imports": []}
    items = await run_in_threadpool(_reports(request).list, connector, status, limit, scope)
    return {"imports": items}


def _visible_import(request: Request, import_id: int, principal: Principal) -> dict:
    item = _reports(request).get(import_id)
    if item is None:
        raise HTTPException(404, f"no import {import_id}")
    exists, tenant = _store(request).tenant_of(item["connector"])
    if exists:
        note_affected_tenant(request, tenant)
    if not (principal.all_tenants or (exists and connector_visible(principal, tenant, item["connector"]))):
        raise HTTPException(404, f"no import {import_id}")
    return _without_samples(item, principal)


@router.get("/imports/{import_id}", summary="One file import with its first bad rows (rows need data:view)")
async def get_import(import_id: int, request: Request, principal: Principal = Depends(require("imports:view"))) -> dict:
    return await run_in_threadpool(_visible_import, request, import_id, principal)


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
    record = _record(request, body.connector, principal)  # another tenant's connector: 404
    try:
        check_import(record, body.path)
    except ImportRefused as exc:
        raise HTTPException(exc.status, str(exc))
    settings, manager = request.app.state.settings, job_manager(request.app)
    job = in_tenant(record.tenant, lambda ctx: import_files(ctx, settings, record, body.path))  # its log lines
    job_id = manager.submit("files.import", principal.name, job)
    request.state.audit_detail["job"] = job_id
    return manager.get(job_id)
