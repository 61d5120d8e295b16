"""Connector management in Kafka Connect's REST shape (AGG-09).

The API validates, stores and signals (bumps the connector version in the control database);
workers notice and do the work. Secrets are masked (****) in every answer; a config sent back
with a masked secret keeps the stored one. Routes are plain `def`: FastAPI runs them in its
thread pool, as they wait on the database and on live checks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from api.audit import audit_as
from api.jobs import job_manager
from api.jobs.connector_jobs import follow_snapshot
from api.security import Principal, require
from connectors import plugins
from connectors.document import FieldError
from connectors.leases import Leases, task_key
from connectors.secrets import scrub, unmask
from connectors.store import ConnectorExists, ConnectorRecord, ConnectorStore
from connectors.validation import validate, validate_response
from deploy.control import OffsetStore

router = APIRouter(tags=["connectors"], dependencies=[Depends(require("connector:manage"))])


def _store(request: Request) -> ConnectorStore:
    if not hasattr(request.app.state, "connector_store"):
        request.app.state.connector_store = ConnectorStore.for_settings(request.app.state.settings)
    return request.app.state.connector_store


def _leases(request: Request) -> Leases:
    if not hasattr(request.app.state, "connector_leases"):
        request.app.state.connector_leases = Leases.for_settings(request.app.state.settings)
    return request.app.state.connector_leases


def _record(request: Request, name: str) -> ConnectorRecord:
    record = _store(request).get(name)
    if record is None:
        raise HTTPException(404, f"Connector {name} not found")
    return record


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


@router.get("/connectors", summary="Connector names; ?expand=status and/or ?expand=info")
def list_connectors(request: Request, expand: list[str] = Query(default=[])) -> Any:
    if not expand:
        return _store(request).names()
    result = {}
    for record in _store(request).all():
        entry = {}
        if "info" in expand:
            entry["info"] = _info(record)
        if "status" in expand:
            entry["status"] = _status(request, record)
        result[record.name] = entry
    return result


@router.post("/connectors", status_code=201, summary="Create a connector: {name, config}")
def create_connector(request: Request, body: dict[str, Any] = Body(...)) -> Any:
    name, config = body.get("name"), body.get("config")
    if not isinstance(config, dict):
        return _invalid([FieldError("config", "field required: an object of configuration keys")], {})
    if name and _store(request).get(name) is not None:
        raise HTTPException(409, f"Connector {name} already exists")
    spec, errors = validate(name, config, request.app.state.settings, principal=request.state.principal)
    if spec is None:
        return _invalid(errors, config)
    try:
        _store(request).create(spec)
    except ConnectorExists:
        raise HTTPException(409, f"Connector {name} already exists")
    return _info(_record(request, spec.name))


@router.get("/connectors/{name}", summary="A connector: config (masked) and tasks")
def get_connector(name: str, request: Request) -> dict[str, Any]:
    return _info(_record(request, name))


@router.get("/connectors/{name}/config", summary="The connector's config, secrets masked")
def get_config(name: str, request: Request) -> dict[str, Any]:
    return _record(request, name).masked_config


@router.get("/connectors/{name}/status", summary="Connector and task states, worker ids, last error")
def get_status(name: str, request: Request) -> dict[str, Any]:
    return _status(request, _record(request, name))


@router.get("/connectors/{name}/tasks", summary="The connector's tasks and their configs (masked)")
def get_tasks(name: str, request: Request) -> list[dict[str, Any]]:
    record = _record(request, name)
    return [{"id": {"connector": name, "task": t}, "config": record.masked_config} for t in range(record.task_count)]


@router.get("/connectors/{name}/tasks/{task}/status", summary="One task's state, worker id and last error")
def get_task_status(name: str, task: int, request: Request) -> dict[str, Any]:
    tasks = _status(request, _record(request, name))["tasks"]
    if not 0 <= task < len(tasks):
        raise HTTPException(404, f"Task {name}/{task} not found")
    return tasks[task]


@router.put("/connectors/{name}/config", summary="Create or update a connector (201 created, 200 updated)")
def put_config(name: str, request: Request, response: Response, config: dict[str, Any] = Body(...)) -> Any:
    existing = _store(request).get(name)
    if existing is not None:
        config = unmask(config, existing.config)  # a masked secret sent back means "unchanged"
    spec, errors = validate(name, config, request.app.state.settings, principal=request.state.principal)
    if spec is None:
        return _invalid(errors, config)
    created = _store(request).upsert(spec)
    response.status_code = 201 if created else 200
    return _info(_record(request, name))


@router.put("/connectors/{name}/pause", status_code=202, summary="Pause: tasks stop capturing, keep their place")
def pause(name: str, request: Request) -> Response:
    if not _store(request).signal(name, "PAUSED"):
        raise HTTPException(404, f"Connector {name} not found")
    return Response(status_code=202)


@router.put("/connectors/{name}/resume", status_code=202, summary="Resume a paused connector")
def resume(name: str, request: Request) -> Response:
    if not _store(request).signal(name, "RUNNING"):
        raise HTTPException(404, f"Connector {name} not found")
    return Response(status_code=202)


@router.post("/connectors/{name}/restart", status_code=204, summary="Restart the connector's tasks")
def restart(name: str, request: Request) -> Response:
    if not _store(request).signal(name):
        raise HTTPException(404, f"Connector {name} not found")
    return Response(status_code=204)


@router.delete("/connectors/{name}", status_code=204, summary="Stop and delete a connector (offsets are kept)")
def delete_connector(name: str, request: Request) -> Response:
    if not _store(request).delete(name):
        raise HTTPException(404, f"Connector {name} not found")
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
    principal: Principal = Depends(require("connector:manage")),
) -> Any:
    audit_as(request, "connector.snapshot", name=name)
    record = _record(request, name)
    if record.kind != "source":
        raise HTTPException(400, f"Connector {name} is a sink; snapshots are for sources")
    tables = body.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        return _invalid([FieldError("tables", "must be a list of table names")], {})
    store = _store(request)
    requested = store.request_snapshot(name, tables)
    offsets = OffsetStore(request.app.state.settings.resolved_control_db_url, name)
    job_id = job_manager(request.app).submit(
        "connector.snapshot", principal.name, lambda ctx: follow_snapshot(ctx, store, offsets, requested["id"])
    )
    request.state.audit_detail.update(snapshot=requested["id"], job=job_id)
    return {**requested, "job_id": job_id}


@router.get("/connectors/{name}/snapshots", summary="Snapshot requests of a connector and their outcome")
def snapshots(name: str, request: Request) -> list[dict[str, Any]]:
    _record(request, name)
    return _store(request).snapshots(name)
