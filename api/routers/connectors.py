"""Connector management in Kafka Connect's REST shape (AGG-09).

The API validates, stores and signals (bumps the connector version in the control database);
workers notice and do the work. Secrets are masked (****) in every answer; a config sent back
with a masked secret keeps the stored one only while the endpoint it authenticates to (scheme,
host, port, user) is unchanged, else 422 (connectors.secrets.unmask). Routes are plain `def`:
FastAPI runs them in its thread pool, as they wait on the database and on live checks.

Tenants: a connector belongs to a tenant (the creator's home tenant, or `tenant` in the create
body / `?tenant=` on PUT, one the caller sees). Another tenant's connector answers 404 for every
route (its existence is not revealed); creating in or moving to a tenant the caller does not see
answers 403. Names are global (they key offsets, consumer groups and task leases): a name taken in
any tenant answers the same 409 "not available", whoever owns it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.identity.policy import home_tenant
from api.jobs import job_manager
from api.jobs.connector_jobs import follow_snapshot
from api.security import Principal, require
from connectors import plugins
from connectors.document import FieldError
from connectors.leases import Leases, task_key
from connectors.secrets import EndpointChanged, scrub, unmask
from connectors.store import ConnectorExists, ConnectorRecord, ConnectorStore
from connectors.validation import validate, validate_response
from deploy.control import OffsetStore
from deploy.logs import in_tenant

MANAGE = require("connector:manage")  # one callable: FastAPI resolves it once per request
router = APIRouter(tags=["connectors"], dependencies=[Depends(MANAGE)])


def _store(request: Request) -> ConnectorStore:
    if not hasattr(request.app.state, "connector_store"):
        request.app.state.connector_store = ConnectorStore.for_settings(request.app.state.settings)
    return request.app.state.connector_store


def _leases(request: Request) -> Leases:
    if not hasattr(request.app.state, "connector_leases"):
        request.app.state.connector_leases = Leases.for_settings(request.app.state.settings)
    return request.app.state.connector_leases


def connector_visible(principal: Principal, tenant: str | None, name: str) -> bool:
    """Tenant scope (a connector without tenant: only all-tenant principals) and connector grants."""
    return (principal.all_tenants or principal.sees_tenant(tenant)) and principal.may_access("connector", name)


def _not_found(name: str) -> HTTPException:
    return HTTPException(404, f"Connector {name} not found")


def _record(request: Request, name: str, principal: Principal) -> ConnectorRecord:
    """The connector when the caller may see it; 404 alike for another tenant's and a missing one.
    The owner is noted for the audit log either way (the attacked tenant sees the attempt)."""
    record = _store(request).get(name)
    if record is None:
        raise _not_found(name)
    note_affected_tenant(request, record.tenant)
    if not connector_visible(principal, record.tenant, name):
        raise _not_found(name)
    return record


def _check_visible(request: Request, name: str, principal: Principal) -> None:
    """As _record, without decrypting the config (for signals and deletion)."""
    exists, tenant = _store(request).tenant_of(name)
    if exists:
        note_affected_tenant(request, tenant)
    if not exists or not connector_visible(principal, tenant, name):
        raise _not_found(name)


def _taken(name: str) -> HTTPException:
    # The same answer whoever owns the name: another tenant's connector names are not revealed.
    return HTTPException(409, f"Connector name {name} is not available")


def _check_name_free(request: Request, name: str, tenant: str | None, principal: Principal) -> None:
    """409 when a deleted connector of that name belonged to a tenant the caller does not see: its
    offsets, file tracking and import reports stay under the name and must not pass to `tenant`."""
    known, last = _store(request).last_owner(name)
    if known and last != tenant and not (principal.all_tenants or principal.sees_tenant(last)):
        note_affected_tenant(request, last)
        raise _taken(name)


def _endpoint_changed(exc: EndpointChanged) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"error_code": 422, "errors": [{"field": exc.field, "message": str(exc)}], "message": str(exc)},
    )


def _invalid(errors: list[FieldError], config: dict) -> JSONResponse:
    fields = [{"field": e.field, "message": scrub(e.message, config)} for e in errors]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(
        status_code=400,
        content={"error_code": 400, "errors": fields, "message": f"Connector configuration is invalid: {summary}"},
    )


def _info(record: ConnectorRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "config": record.masked_config,
        "type": record.kind,
        "tasks": [{"connector": record.name, "task": t} for t in range(record.task_count)],
    }


def _status(request: Request, record: ConnectorRecord) -> dict[str, Any]:
    rows = _store(request).task_statuses(record.name)
    keys = [task_key(record.name, t) for t in range(record.task_count)]
    try:
        owners = _leases(request).owners(keys)
    except Exception:  # Redis away: report what the workers last stored
        owners = {key: rows.get(t, {}).get("worker_id") for t, key in enumerate(keys)}
    tasks = []
    for t, key in enumerate(keys):
        row, owner = rows.get(t, {}), owners.get(key)
        state = row.get("state", "UNASSIGNED")
        if owner is None:
            state = "UNASSIGNED"
        elif row.get("worker_id") != owner:
            state = "RESTARTING"  # a worker just took it over and has not reported yet
        entry = {"id": t, "state": state, "worker_id": owner}
        if row.get("detail") and owner is not None:
            entry["detail"] = row["detail"]
        if row.get("trace") and owner is not None and (state == "FAILED" or "retrying" in (row.get("detail") or "")):
            entry["trace"] = row["trace"]
        tasks.append(entry)
    if record.target_state == "PAUSED":
        state = "PAUSED"
    elif tasks and all(t["state"] == "FAILED" for t in tasks):
        state = "FAILED"
    elif any(t["worker_id"] for t in tasks):
        state = "RUNNING"
    else:
        state = "UNASSIGNED"
    return {
        "name": record.name,
        "type": record.kind,
        "tasks": tasks,
        "connector": {"state": state, "worker_id": tasks[0]["worker_id"] if tasks else None},
    }


@router.get("/connector-plugins", summary="Installed connector plugins (sources and sinks)")
def list_plugins() -> list[dict[str, Any]]:
    return [
        {"class": p.name, "type": p.kind, "version": p.version, "description": p.description}
        for p in plugins.available()
    ]


@router.put("/connector-plugins/{plugin}/config/validate", summary="Validate a config (Kafka Connect shape)")
def validate_plugin_config(plugin: str, request: Request, config: dict[str, Any] = Body(...)) -> dict[str, Any]:
    try:
        found = plugins.get(plugin)
    except plugins.UnknownPlugin as exc:
        raise HTTPException(404, str(exc))
    config = {**config, "connector.class": config.get("connector.class") or plugin}
    name = config.get("name") or "validate"
    _, errors = validate(name, config, request.app.state.settings, principal=request.state.principal)
    return validate_response(found, config, errors)


@router.get("/connectors", summary="Connector names (the caller's tenants); ?expand=status and/or ?expand=info")
def list_connectors(
    request: Request, expand: list[str] = Query(default=[]), principal: Principal = Depends(MANAGE)
) -> Any:
    tenants = principal.visible_tenants()
    if not expand:
        return [n for n in _store(request).names(tenants) if principal.may_access("connector", n)]
    result = {}
    for record in _store(request).all(tenants):
        if not principal.may_access("connector", record.name):
            continue
        entry = {}
        if "info" in expand:
            entry["info"] = _info(record)
        if "status" in expand:
            entry["status"] = _status(request, record)
        result[record.name] = entry
    return result


@router.post("/connectors", status_code=201, summary="Create a connector: {name, config, tenant?}")
def create_connector(request: Request, body: dict[str, Any] = Body(...), principal: Principal = Depends(MANAGE)) -> Any:
    name, config, requested = body.get("name"), body.get("config"), body.get("tenant")
    if requested is not None and not isinstance(requested, str):
        return _invalid([FieldError("tenant", "must be a tenant name")], {})
    if name is not None and not isinstance(name, str):
        return _invalid([FieldError("name", "must be a string")], {})
    tenant = home_tenant(principal, requested)  # 403 for a tenant the caller does not see
    if name and not principal.may_access("connector", str(name)):
        raise HTTPException(403, f"no grant for connector {name!r}")
    if not isinstance(config, dict):
        return _invalid([FieldError("config", "field required: an object of configuration keys")], {})
    if name:
        exists, owner = _store(request).tenant_of(name)
        if exists:
            note_affected_tenant(request, owner)
            raise _taken(name)
        _check_name_free(request, str(name), tenant, principal)
    spec, errors = validate(name, config, request.app.state.settings, principal=principal, tenant=tenant)
    if spec is None:
        return _invalid(errors, config)
    try:
        _store(request).create(spec, tenant)
    except ConnectorExists:
        raise _taken(spec.name)
    return _info(_record(request, spec.name, principal))


@router.get("/connectors/{name}", summary="A connector: config (masked) and tasks")
def get_connector(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return _info(_record(request, name, principal))


@router.get("/connectors/{name}/config", summary="The connector's config, secrets masked")
def get_config(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return _record(request, name, principal).masked_config


@router.get("/connectors/{name}/status", summary="Connector and task states, worker ids, last error")
def get_status(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return _status(request, _record(request, name, principal))


@router.get("/connectors/{name}/tasks", summary="The connector's tasks and their configs (masked)")
def get_tasks(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    record = _record(request, name, principal)
    return [{"id": {"connector": name, "task": t}, "config": record.masked_config} for t in range(record.task_count)]


@router.get("/connectors/{name}/tasks/{task}/status", summary="One task's state, worker id and last error")
def get_task_status(name: str, task: int, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    tasks = _status(request, _record(request, name, principal))["tasks"]
    if not 0 <= task < len(tasks):
        raise HTTPException(404, f"Task {name}/{task} not found")
    return tasks[task]


@router.put(
    "/connectors/{name}/config",
    summary="Create or update a connector (201 created, 200 updated); ?tenant= creates in / moves to a tenant",
)
def put_config(
    name: str,
    request: Request,
    response: Response,
    config: dict[str, Any] = Body(...),
    tenant: str | None = Query(None, max_length=100, description="the connector's tenant (default: unchanged / yours)"),
    principal: Principal = Depends(MANAGE),
) -> Any:
    store = _store(request)
    exists, _ = store.tenant_of(name)
    existing = _record(request, name, principal) if exists else None  # another tenant's: 404
    if existing is None and not principal.may_access("connector", name):
        raise HTTPException(403, f"no grant for connector {name!r}")
    target = home_tenant(principal, tenant) if tenant is not None or existing is None else existing.tenant
    if existing is not None:
        try:  # a masked secret sent back means "unchanged", while its endpoint is unchanged
            config = unmask(config, existing.config)
        except EndpointChanged as exc:
            return _endpoint_changed(exc)
    spec, errors = validate(name, config, request.app.state.settings, principal=principal, tenant=target)
    if spec is None:
        return _invalid(errors, config)
    if existing is None:
        _check_name_free(request, name, target, principal)
        try:
            store.create(spec, target)
        except ConnectorExists:  # created meanwhile, maybe by another tenant
            raise _taken(name)
        response.status_code = 201
    else:
        store.upsert(spec, tenant=target)
        response.status_code = 200
    return _info(_record(request, name, principal))


def _signal(request: Request, name: str, principal: Principal, target_state: str | None = None) -> None:
    _check_visible(request, name, principal)
    if not _store(request).signal(name, target_state):
        raise _not_found(name)


@router.put("/connectors/{name}/pause", status_code=202, summary="Pause: tasks stop capturing, keep their place")
def pause(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal, "PAUSED")
    return Response(status_code=202)


@router.put("/connectors/{name}/resume", status_code=202, summary="Resume a paused connector")
def resume(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal, "RUNNING")
    return Response(status_code=202)


@router.post("/connectors/{name}/restart", status_code=204, summary="Restart the connector's tasks")
def restart(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal)
    return Response(status_code=204)


@router.delete("/connectors/{name}", status_code=204, summary="Stop and delete a connector (offsets are kept)")
def delete_connector(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _check_visible(request, name, principal)
    if not _store(request).delete(name):
        raise _not_found(name)
    return Response(status_code=204)


@router.post(
    "/connectors/{name}/snapshot",
    status_code=202,
    summary="Re-read chosen tables from the start: {\"tables\": [...]} (empty = all); "
    "a job (job_id) follows it to the end",
)
def snapshot(
    name: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    principal: Principal = Depends(MANAGE),
) -> Any:
    audit_as(request, "connector.snapshot", name=name)
    record = _record(request, name, principal)
    if record.kind != "source":
        raise HTTPException(400, f"Connector {name} is a sink; snapshots are for sources")
    tables = body.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        return _invalid([FieldError("tables", "must be a list of table names")], {})
    store = _store(request)
    requested = store.request_snapshot(name, tables)
    offsets = OffsetStore(request.app.state.settings.resolved_control_db_url, name)
    job_id = job_manager(request.app).submit(
        "connector.snapshot",
        principal.name,
        in_tenant(record.tenant, lambda ctx: follow_snapshot(ctx, store, offsets, requested["id"])),
    )
    request.state.audit_detail.update(snapshot=requested["id"], job=job_id)
    return {**requested, "job_id": job_id}


@router.get("/connectors/{name}/snapshots", summary="Snapshot requests of a connector and their outcome")
def snapshots(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    _check_visible(request, name, principal)
    return _store(request).snapshots(name)
