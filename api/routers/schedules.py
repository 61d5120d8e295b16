"""Schedules (AGG-07): cron / manual / dependency runs of actions, run history, third-party trigger.

Tenants: a schedule belongs to a tenant (the creator's home tenant or `tenant` in the body, one
the caller sees); names are unique per tenant, so another tenant's names are never revealed.
Another tenant's schedule (and its runs) answers 404 for every route; depends_on resolves only in
the schedule's tenant; params may not point at another tenant's pipeline, connector or consumer
group (422, as for an unknown one). Secrets in params are sealed at rest and shown as `****`; a
`****` sent back keeps the stored secret only while its endpoint is unchanged, else 422.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from api.audit.affected import note_affected_tenant
from api.identity.policy import home_tenant
from api.scheduling import ACTIONS, scheduler_for
from api.scheduling.actions import Scope, check_params
from api.scheduling.cron import CronRefused, check_cron
from api.scoping import sees, target_problem
from api.security import Principal, require
from connectors.secrets import EndpointChanged, mask, unmask

router = APIRouter(tags=["schedules"])
_manage = require("schedules:manage")  # one callable: resolved once per request
MANAGE = Depends(_manage)


class ScheduleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    action: str = Field(description="registered action name, e.g. pipeline.capture")
    params: dict[str, Any] = {}
    cron: str | None = Field(
        None,
        max_length=120,
        description="5 fields, or 6 with seconds last; at least schedule_min_interval_s apart; none = manual/dependency only",
    )
    depends_on: list[str] = Field([], description="schedule ids or names that must succeed first")
    enabled: bool = True
    tenant: str | None = Field(None, max_length=100, description="default: the caller's home tenant")


class SchedulePatch(BaseModel):
    action: str | None = None
    params: dict[str, Any] | None = None
    cron: str | None = Field(None, max_length=120, description="as in ScheduleIn")
    depends_on: list[str] | None = None
    enabled: bool | None = None


class TriggerIn(BaseModel):
    key: str | None = Field(None, max_length=150, description="idempotency key: a retry with it starts nothing new")


def _validate(
    store,
    sid: str | None,
    action: str | None,
    cron: str | None,
    depends_on: list[str] | None,
    tenant: str | None = None,
    min_interval_s: int = 60,
) -> list[str] | None:
    if action is not None and action not in ACTIONS:
        raise HTTPException(422, f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    if cron is not None:
        try:  # exactly the documented forms, not firing more often than the setting allows
            check_cron(cron, min_interval_s)
        except CronRefused as exc:
            raise HTTPException(422, str(exc))
    if depends_on is None:
        return None
    ids = []
    for ref in depends_on:
        parent = store.get(ref, tenant=tenant, any_tenant=False)  # only the schedule's own tenant
        if parent is None or parent["tenant"] != tenant:
            raise HTTPException(422, f"depends_on: no schedule {ref!r}")
        ids.append(parent["id"])
    # Refuse cycles: walk the parents' ancestry looking for this schedule.
    seen, todo = set(), list(ids)
    while todo and sid:
        cur = todo.pop()
        if cur == sid:
            raise HTTPException(422, "depends_on would create a cycle")
        if cur not in seen:
            seen.add(cur)
            todo.extend((store.get(cur) or {}).get("depends_on", []))
    return ids


def _min_interval(request: Request) -> int:
    return request.app.state.settings.schedule_min_interval_s


def _get(request: Request, sid: str, principal: Principal) -> dict:
    """The schedule `sid` (id, or name in the caller's tenants) when the caller sees it, else 404
    (another tenant's reads as missing; its owner is noted for the audit log either way)."""
    found = scheduler_for(request.app).store.lookup(sid)
    by_id = [s for s in found if s["id"] == sid]
    candidates = by_id or found
    for s in candidates:
        note_affected_tenant(request, s["tenant"])
    visible = [s for s in candidates if sees(principal, s["tenant"])]
    if len(visible) > 1:  # an all-tenant caller and one name in several tenants
        own = [s for s in visible if s["tenant"] == principal.tenant]
        if len(own) != 1:
            raise HTTPException(409, f"several schedules are named {sid!r}; use the schedule's id")
        visible = own
    if not visible:
        raise HTTPException(404, f"no schedule {sid!r}")
    return visible[0]


def _out(s: dict | None) -> dict | None:
    """A schedule as answered: secrets in params masked."""
    return {**s, "params": mask(s["params"])} if s else s


def _check_targets(request: Request, tenant: str | None, params: dict) -> None:
    problem = target_problem(request.app.state.settings, tenant, params)
    if problem:
        raise HTTPException(422, problem)


@router.post("/schedules", status_code=201, summary="Create a schedule (in your tenant, or `tenant`)")
def create_schedule(body: ScheduleIn, request: Request, principal=MANAGE) -> dict:
    store = scheduler_for(request.app).store
    tenant = home_tenant(principal, body.tenant)  # 403 for a tenant the caller does not see
    if store.get(body.name, tenant=tenant, any_tenant=False):  # names are per tenant
        raise HTTPException(409, f"schedule {body.name!r} exists")
    deps = _validate(store, None, body.action, body.cron, body.depends_on, tenant, _min_interval(request))
    _check_targets(request, tenant, body.params)
    check_params(body.action, body.params, request.app.state.settings, Scope.of(principal))  # paths/hosts: 422
    try:
        created = store.create(
            body.name, body.action, body.params, body.cron, deps, body.enabled, principal.name, tenant=tenant
        )
    except IntegrityError:  # created meanwhile (or a database from before per-tenant names)
        raise HTTPException(409, f"schedule {body.name!r} exists")
    return _out(created)


@router.get("/schedules", summary="The schedules of your tenants")
def list_schedules(request: Request, principal=MANAGE) -> list[dict]:
    return [_out(s) for s in scheduler_for(request.app).store.list(principal.visible_tenants())]


@router.get("/schedules/{sid}", summary="One schedule (id or name)")
def get_schedule(sid: str, request: Request, principal=MANAGE) -> dict:
    return _out(_get(request, sid, principal))


@router.patch("/schedules/{sid}", summary="Change a schedule")
def patch_schedule(sid: str, body: SchedulePatch, request: Request, principal=MANAGE) -> dict:
    s, store = _get(request, sid, principal), scheduler_for(request.app).store
    values = body.model_dump(exclude_unset=True)
    if values.get("params") is not None:
        try:  # `****` sent back keeps the stored secret while its endpoint is unchanged
            values["params"] = unmask(values["params"], s["params"], path="params")
        except EndpointChanged as exc:
            raise HTTPException(422, str(exc))
        _check_targets(request, s["tenant"], values["params"])
    elif "params" in values:
        values["params"] = {}
    deps = _validate(
        store,
        s["id"],
        values.get("action"),
        values.get("cron"),
        values.get("depends_on"),
        s["tenant"],
        _min_interval(request),
    )
    scope = Scope.of(request.state.principal)  # paths inside the caller's data root, else 422
    check_params(
        values.get("action", s["action"]), values.get("params", s["params"]), request.app.state.settings, scope
    )
    if deps is not None:
        values["depends_on"] = deps
    return _out(store.update(s["id"], **values))


@router.delete("/schedules/{sid}", status_code=204, summary="Delete a schedule")
def delete_schedule(sid: str, request: Request, principal=MANAGE) -> None:
    s, store = _get(request, sid, principal), scheduler_for(request.app).store
    children = [c["name"] for c in store.list({s["tenant"]} if s["tenant"] else None) if s["id"] in c["depends_on"]]
    if children:
        raise HTTPException(409, f"schedules {children} depend on {s['name']!r}")
    store.delete(s["id"])


@router.post("/schedules/{sid}/run", status_code=202, summary="Run now (manual trigger)")
def run_now(sid: str, request: Request, principal=MANAGE) -> dict:
    s = _get(request, sid, principal)
    return scheduler_for(request.app).fire(s, "manual", f"manual:{uuid.uuid4().hex}", principal.name)


@router.post(
    "/schedules/{sid}/trigger",
    status_code=202,
    summary="Start a run from a third-party scheduler; `key` makes retries idempotent",
)
def trigger(sid: str, request: Request, body: TriggerIn | None = None, principal=MANAGE) -> dict:
    s, sched = _get(request, sid, principal), scheduler_for(request.app)
    key = f"http:{body.key}" if body and body.key else f"http:{uuid.uuid4().hex}"
    run = sched.fire(s, "http", key, principal.name)
    if run is None:
        existing = sched.store.get_run_by_key(s["id"], key)
        raise HTTPException(409, {"detail": "already triggered with this key", "run": existing})
    return run


@router.get("/schedules/{sid}/runs", summary="Run history: status, duration, counts, error")
def runs(sid: str, request: Request, limit: int = Query(50, ge=1, le=1000), principal=MANAGE) -> list[dict]:
    s = _get(request, sid, principal)
    return scheduler_for(request.app).store.runs(s["id"], limit=min(limit, 1000))


@router.get("/schedule-runs/{run_id}", summary="One run (of a schedule of your tenants)")
def get_run(run_id: str, request: Request, principal=MANAGE) -> dict:
    store = scheduler_for(request.app).store
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    schedule = store.get(run["schedule_id"])
    if schedule is not None:
        note_affected_tenant(request, schedule["tenant"])
    # a deleted schedule's runs: all-tenant callers only
    if not (principal.all_tenants or (schedule is not None and sees(principal, schedule["tenant"]))):
        raise HTTPException(404, f"no run {run_id!r}")
    return run
