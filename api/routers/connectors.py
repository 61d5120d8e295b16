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

Kafka Connect clients work unchanged: `GET /` (cluster info), stop, task restart, topics,
`initial_state` on create, restart with includeTasks/onlyFailed (202 with the states), and every error
of these routes in Kafka Connect's body `{"error_code": <status>, "message": "..."}` (ConnectRoute).
Deleting a log-CDC connector drops its replication slot and publication first (connectors.decommission).
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.connector_access import (
    check_connector_visible,
    connector_leases,
    connector_not_found,
    connector_store,
    live_status,
    visible_connector,
)
from api.identity.policy import home_tenant
from api.jobs import job_manager
from api.jobs.connector_jobs import follow_snapshot, unknown_snapshot_tables
from api.metadata.triggers import harvest_on_start
from api.security import Principal, require
from connectors import plugins
from connectors.decommission import DecommissionFailed, describe, is_log_cdc, retire, slot_clash
from connectors.document import FieldError
from connectors.paths import PathRefused
from connectors.probes import HostRefused, ProbeRateLimited
from connectors.schema_change_store import store_for
from connectors.schema_changes import NotHeld, UnknownSchemaChange, accept_change
from connectors.secrets import EndpointChanged, scrub, unmask
from connectors.store import ConnectorExists, ConnectorRecord
from connectors.topics import connector_topics
from connectors.validation import validate, validate_response
from deploy.control import OffsetStore
from deploy.kafka_security import client_config
from deploy.logs import in_tenant
from deploy.openlineage import batch_run
from deploy.version import huiliu_version


def _connect_error(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
    if status in (401, 403, 404, 409, 422, 429):  # refusals carry their reason into the audit entry
        request.state.audit_reason = message[:300]
    return JSONResponse({"error_code": status, "message": message}, status_code=status, headers=headers)


class ConnectRoute(APIRoute):
    """Every error of a connector route (authentication, permission, validation, 404, refusals) in
    Kafka Connect's body {"error_code": <http status>, "message": "..."}; input is never echoed."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                message = exc.detail if isinstance(exc.detail, str) else "request refused"
                return _connect_error(request, exc.status_code, message, exc.headers)
            except RequestValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()
                )
                return _connect_error(request, 422, f"invalid request: {fields}"[:1000])
            except (PathRefused, HostRefused) as exc:
                return _connect_error(request, 422, str(exc))
            except ProbeRateLimited as exc:
                return _connect_error(request, 429, str(exc), {"Retry-After": str(exc.retry_after)})
            except DataError:
                return _connect_error(
                    request, 422, "a value does not fit the store: a number out of range or a NUL character in text"
                )

        return route


MANAGE = require("connector:manage")  # one callable: FastAPI resolves it once per request
router = APIRouter(tags=["connectors"], dependencies=[Depends(MANAGE)], route_class=ConnectRoute)
TARGET_STATES = ("RUNNING", "PAUSED", "STOPPED")
STOP_WAIT_S = 20.0  # how long delete/decommission waits for the workers to stop a log-CDC task


def _taken(name: str) -> HTTPException:
    # The same answer whoever owns the name: another tenant's connector names are not revealed.
    return HTTPException(409, f"Connector name {name} is not available")


def _check_name_free(request: Request, name: str, tenant: str | None, principal: Principal) -> None:
    """409 when a deleted connector of that name belonged to a tenant the caller does not see: its
    offsets, file tracking and import reports stay under the name and must not pass to `tenant`."""
    known, last = connector_store(request).last_owner(name)
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


def _slot_clash(request: Request, spec) -> FieldError | None:
    """Log CDC on PostgreSQL: the slot and publication must not be another connector's."""
    if spec.plugin.name != "relational.pg_logical":
        return None
    why = slot_clash(connector_store(request), request.app.state.settings, spec.name, spec.config)
    return FieldError("slot_name", why) if why else None


def _info(record: ConnectorRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "config": record.masked_config,
        "type": plugins.connect_type(record.kind),
        "kind": record.kind,
        "tasks": [{"connector": record.name, "task": t} for t in range(record.task_count)],
    }


@lru_cache(maxsize=1)
def _commit() -> str:
    try:  # a checkout: its commit; an installed wheel has none
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=FilePath(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


@router.get("/", summary="Cluster info (Kafka Connect's GET /): version, commit, kafka_cluster_id")
def cluster_info(request: Request) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient

    cluster_id = None
    try:
        settings = request.app.state.settings
        cluster_id = AdminClient(client_config(settings.kafka_bootstrap)).list_topics(timeout=3).cluster_id
    except Exception:  # the broker away: the rest of the answer still holds
        pass
    return {"version": huiliu_version(), "commit": _commit(), "kafka_cluster_id": cluster_id}


@router.get("/connector-plugins", summary="Installed connector plugins (sources, processors and sinks)")
def list_plugins() -> list[dict[str, Any]]:
    return [
        {
            "class": p.name,
            "type": plugins.connect_type(p.kind),
            "kind": p.kind,
            "version": p.version,
            "description": p.description,
        }
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
    request: Request,
    response: Response,
    expand: list[str] = Query(default=[]),
    limit: int | None = Query(None, ge=1, le=500, description="page size; with it, X-Total-Count says how many match"),
    offset: int = Query(0, ge=0, description="connectors skipped, by name"),
    q: str | None = Query(None, max_length=200, description="names containing this (case-insensitive)"),
    principal: Principal = Depends(MANAGE),
) -> Any:
    """Without `limit`, `offset` or `q`, the whole answer as Kafka Connect gives it. With any of
    them: the page by name, same shape (a list of names, or the expanded object), the number of
    matching connectors in `X-Total-Count`; live status is read for the page's connectors only."""
    store = connector_store(request)
    tenants = principal.visible_tenants()
    if limit is None and offset == 0 and q is None:
        if not expand:
            return [n for n in store.names(tenants) if principal.may_access("connector", n)]
        records = [r for r in store.all(tenants) if principal.may_access("connector", r.name)]
    else:
        size = limit or 500
        if principal.superuser or not any(g.startswith("connector:") for g in principal.grants):
            if not expand:  # no connector grants: paged in the query
                names, total = store.name_page(tenants, size, offset, q)
                response.headers["X-Total-Count"] = str(total)
                return names
            records, total = store.page(tenants, size, offset, q)
        else:  # grants are shell patterns: the names are filtered here, the page's rows read
            matching = [n for n in store.names(tenants, q) if principal.may_access("connector", n)]
            names, total = matching[offset : offset + size], len(matching)
            response.headers["X-Total-Count"] = str(total)
            if not expand:
                return names
            records = store.named(names)
        response.headers["X-Total-Count"] = str(total)
    result = {}
    for record in records:
        entry = {}
        if "info" in expand:
            entry["info"] = _info(record)
        if "status" in expand:
            entry["status"] = live_status(request, record)
        result[record.name] = entry
    return result


@router.post("/connectors", status_code=201, summary="Create a connector: {name, config, tenant?, initial_state?}")
def create_connector(request: Request, body: dict[str, Any] = Body(...), principal: Principal = Depends(MANAGE)) -> Any:
    name, config, requested = body.get("name"), body.get("config"), body.get("tenant")
    initial = body.get("initial_state", "RUNNING")
    if requested is not None and not isinstance(requested, str):
        return _invalid([FieldError("tenant", "must be a tenant name")], {})
    if initial not in TARGET_STATES:
        return _invalid([FieldError("initial_state", "must be RUNNING, PAUSED or STOPPED")], {})
    if name is not None and not isinstance(name, str):
        return _invalid([FieldError("name", "must be a string")], {})
    tenant = home_tenant(principal, requested)  # 403 for a tenant the caller does not see
    if name and not principal.may_access("connector", str(name)):
        raise HTTPException(403, f"no grant for connector {name!r}")
    if not isinstance(config, dict):
        return _invalid([FieldError("config", "field required: an object of configuration keys")], {})
    if name:
        exists, owner = connector_store(request).tenant_of(name)
        if exists:
            note_affected_tenant(request, owner)
            raise _taken(name)
        _check_name_free(request, str(name), tenant, principal)
    spec, errors = validate(name, config, request.app.state.settings, principal=principal, tenant=tenant)
    if spec is None:
        return _invalid(errors, config)
    if clash := _slot_clash(request, spec):
        return _invalid([clash], config)
    try:
        connector_store(request).create(spec, tenant, target_state=initial)
    except ConnectorExists:
        raise _taken(spec.name)
    record = visible_connector(request, spec.name, principal)
    if initial == "RUNNING":
        harvest_on_start(request.app, record, principal.name)  # a job: the create does not wait
    return _info(record)


@router.get("/connectors/{name}", summary="A connector: config (masked) and tasks")
def get_connector(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return _info(visible_connector(request, name, principal))


@router.get("/connectors/{name}/config", summary="The connector's config, secrets masked")
def get_config(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return {**visible_connector(request, name, principal).masked_config, "name": name}  # Kafka Connect includes it


@router.get("/connectors/{name}/status", summary="Connector and task states, worker ids, last error")
def get_status(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return live_status(request, visible_connector(request, name, principal))


@router.get("/connectors/{name}/tasks", summary="The connector's tasks and their configs (masked)")
def get_tasks(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    record = visible_connector(request, name, principal)
    return [{"id": {"connector": name, "task": t}, "config": record.masked_config} for t in range(record.task_count)]


@router.get("/connectors/{name}/tasks/{task}/status", summary="One task's state, worker id and last error")
def get_task_status(
    name: str, request: Request, task: int = Path(ge=0, le=1_000_000), principal: Principal = Depends(MANAGE)
) -> dict[str, Any]:
    tasks = live_status(request, visible_connector(request, name, principal))["tasks"]
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
    store = connector_store(request)
    exists, _ = store.tenant_of(name)
    existing = visible_connector(request, name, principal) if exists else None  # another tenant's: 404
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
    if clash := _slot_clash(request, spec):
        return _invalid([clash], config)
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
    return _info(visible_connector(request, name, principal))


def _signal(request: Request, name: str, principal: Principal, target_state: str | None = None) -> None:
    check_connector_visible(request, name, principal)
    if not connector_store(request).signal(name, target_state):
        raise connector_not_found(name)


@router.put("/connectors/{name}/pause", status_code=202, summary="Pause: tasks stop capturing, keep their place")
def pause(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal, "PAUSED")
    return Response(status_code=202)


@router.put("/connectors/{name}/resume", status_code=202, summary="Resume a paused connector")
def resume(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal, "RUNNING")
    harvest_on_start(request.app, visible_connector(request, name, principal), principal.name)
    return Response(status_code=202)


@router.put("/connectors/{name}/stop", status_code=204, summary="Stop: no task runs until resumed (Kafka Connect)")
def stop(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    _signal(request, name, principal, "STOPPED")
    return Response(status_code=204)


@router.post(
    "/connectors/{name}/restart",
    status_code=204,
    summary="Restart the connector; with includeTasks/onlyFailed: 202 and the states (Kafka Connect 3.x)",
    responses={202: {"description": "restart requested; the connector and task states, RESTARTING where restarted"}},
)
def restart(
    name: str,
    request: Request,
    include_tasks: bool = Query(False, alias="includeTasks"),
    only_failed: bool = Query(False, alias="onlyFailed"),
    principal: Principal = Depends(MANAGE),
) -> Response:
    if not include_tasks and not only_failed:
        _signal(request, name, principal)
        return Response(status_code=204)
    record = visible_connector(request, name, principal)
    status = live_status(request, record)
    connector_failed = status["connector"]["state"] == "FAILED"
    tasks = [t for t in status["tasks"] if include_tasks and (not only_failed or t["state"] == "FAILED")]
    if not only_failed or connector_failed or tasks:
        # One signal restarts every task of the connector (the workers' unit is the connector version).
        if not connector_store(request).signal(name):
            raise connector_not_found(name)
        if not only_failed or connector_failed:
            status["connector"]["state"] = "RESTARTING"
        for task in tasks:
            task["state"] = "RESTARTING"
    return JSONResponse(status, status_code=202)


@router.post("/connectors/{name}/tasks/{task}/restart", status_code=204, summary="Restart one task")
def restart_task(
    name: str, request: Request, task: int = Path(ge=0, le=1_000_000), principal: Principal = Depends(MANAGE)
) -> Response:
    record = visible_connector(request, name, principal)
    if task >= record.task_count:
        raise HTTPException(404, f"Task {name}/{task} not found")
    _signal(request, name, principal)  # the workers restart a connector's tasks together
    return Response(status_code=204)


def _topics(request: Request, record: ConnectorRecord) -> list[str]:
    return connector_topics(record, request.app.state.settings)


@router.get("/connectors/{name}/topics", summary="Topics the connector writes or reads: {name: {topics}}")
def topics(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    record = visible_connector(request, name, principal)
    return {name: {"topics": _topics(request, record)}}


@router.put(
    "/connectors/{name}/topics/reset",
    status_code=202,
    summary="Reset the topic list (Kafka Connect); here topics follow the config, so nothing is kept to reset",
)
def reset_topics(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> Response:
    check_connector_visible(request, name, principal)
    return Response(status_code=202)


def _decommission(request: Request, record: ConnectorRecord) -> dict[str, Any]:
    """Stop the tasks, drop what the connector holds on its source server (connectors.decommission)."""
    return retire(connector_store(request), connector_leases(request), request.app.state.settings, record, STOP_WAIT_S)


@router.post(
    "/connectors/{name}/decommission",
    summary="Log CDC: stop the connector and drop its replication slot and publication on the source server",
)
def decommission_connector(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    record = visible_connector(request, name, principal)
    if not is_log_cdc(record.plugin):
        raise HTTPException(400, f"Connector {name} ({record.plugin}) holds nothing on a source server")
    try:
        result = _decommission(request, record)
    except DecommissionFailed as exc:
        raise HTTPException(409, f"Connector {name} was not decommissioned: {exc}")
    request.state.audit_detail = {"decommission": describe(result)}
    if record.plugin == "relational.mysql_binlog":
        return {"connector": name, "state": record.target_state, **result}
    return {
        "connector": name,
        "state": "STOPPED",
        **result,
        "note": "resuming it creates a new slot and reads the tables again (snapshot)",
    }


@router.delete(
    "/connectors/{name}",
    status_code=204,
    summary="Stop and delete a connector (offsets are kept); a log-CDC connector's slot and publication are "
    "dropped first (X-Huiliu-Decommissioned says what; ?decommission=false leaves them)",
)
def delete_connector(
    name: str,
    request: Request,
    decommission_source: bool = Query(
        True, alias="decommission", description="drop the replication slot and publication of a log-CDC connector"
    ),
    principal: Principal = Depends(MANAGE),
) -> Response:
    check_connector_visible(request, name, principal)
    headers = {}
    record = connector_store(request).get(name) if decommission_source else None
    if record is not None and is_log_cdc(record.plugin):
        try:
            result = _decommission(request, record)
        except DecommissionFailed as exc:
            raise HTTPException(
                409,
                f"Connector {name} was not deleted: {exc}. Retry when the source server answers, or delete it with "
                "?decommission=false and drop the slot and publication yourself",
            )
        said = describe(result)
        request.state.audit_detail = {"decommission": said}
        headers["X-Huiliu-Decommissioned"] = said.encode("ascii", "replace").decode()
    elif not decommission_source:
        request.state.audit_detail = {"decommission": "skipped (?decommission=false)"}
    if not connector_store(request).delete(name):
        raise connector_not_found(name)
    return Response(status_code=204, headers=headers)


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
    record = visible_connector(request, name, principal)
    if record.kind != "source":
        raise HTTPException(400, f"Connector {name} is a sink; snapshots are for sources")
    tables = body.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        return _invalid([FieldError("tables", "must be a list of table names")], {})
    store = connector_store(request)
    offsets = OffsetStore(request.app.state.settings.resolved_control_db_url, name)
    unknown = unknown_snapshot_tables(record, tables, offsets)
    if unknown:  # nothing would be re-read and the job would wait for ever
        return _invalid([FieldError("tables", f"unknown to connector {name}: {unknown}")], {})
    requested = store.request_snapshot(name, tables)
    settings = request.app.state.settings
    job_id = job_manager(request.app).submit(
        "connector.snapshot",
        principal.name,
        in_tenant(
            record.tenant,
            batch_run(settings, record, lambda ctx: follow_snapshot(ctx, store, offsets, requested["id"])),
        ),
    )
    request.state.audit_detail.update(snapshot=requested["id"], job=job_id)
    return {**requested, "job_id": job_id}


@router.get("/connectors/{name}/snapshots", summary="Snapshot requests of a connector and their outcome")
def snapshots(name: str, request: Request, principal: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    check_connector_visible(request, name, principal)
    return connector_store(request).snapshots(name)


@router.get(
    "/connectors/{name}/schema-changes",
    summary="Schema changes the connector met: followed (applied), held (capture stopped) or accepted",
)
def schema_changes(
    name: str,
    request: Request,
    status: str | None = Query(None, pattern="^(applied|held|accepted)$"),
    principal: Principal = Depends(MANAGE),
) -> list[dict[str, Any]]:
    check_connector_visible(request, name, principal)
    return store_for(request.app.state.settings.resolved_control_db_url).list(name, status)


@router.get("/schema-changes", summary="Schema changes of every connector you may see, newest first (?status=)")
def all_schema_changes(
    request: Request,
    status: str | None = Query(None, pattern="^(applied|held|accepted)$"),
    limit: int = Query(200, ge=1, le=1000),
    principal: Principal = Depends(MANAGE),
) -> list[dict[str, Any]]:
    found = store_for(request.app.state.settings.resolved_control_db_url).recent(
        principal.visible_tenants(), status, limit
    )
    return [c for c in found if principal.may_access("connector", c["connector"])]  # connector grants narrow


@router.post(
    "/connectors/{name}/schema-changes/{change_id}/accept",
    summary='Accept a held incompatible schema change: {"mode": "new_version" | "new_topic"}; capture resumes',
)
def accept_schema_change(
    name: str,
    request: Request,
    change_id: int = Path(ge=1, le=2**31 - 1),
    body: dict[str, Any] = Body(...),
    principal: Principal = Depends(MANAGE),
) -> dict[str, Any]:
    audit_as(request, "connector.schema_change.accept", name=name, change=change_id, mode=body.get("mode"))
    check_connector_visible(request, name, principal)
    mode = body.get("mode")
    if not isinstance(mode, str) or set(body) - {"mode"}:
        raise HTTPException(
            422, 'body must be {"mode": "new_version" | "new_topic"}; 请求体须为 {"mode": "new_version" | "new_topic"}'
        )
    settings = request.app.state.settings
    try:
        return accept_change(
            settings.resolved_control_db_url, connector_store(request), name, change_id, mode, principal.name
        )
    except UnknownSchemaChange:
        raise HTTPException(404, f"Schema change {change_id} of connector {name} not found")
    except NotHeld as exc:
        raise HTTPException(409, str(exc))
    except ValueError as exc:  # the mode
        raise HTTPException(422, str(exc))
