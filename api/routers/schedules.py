"""Schedules (AGG-07): cron / manual / dependency runs of actions, run history, third-party trigger.

This router's lifespan starts the API's background loops (jobs, scheduler, alerts): see
api/scheduling/runtime.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from croniter import croniter
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.scheduling import ACTIONS, scheduler_for
from api.scheduling.actions import Scope, check_params
from api.scheduling.runtime import lifespan
from api.security import require

router = APIRouter(tags=["schedules"], lifespan=lifespan)
MANAGE = Depends(require("schedules:manage"))


class ScheduleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    action: str = Field(description="registered action name, e.g. pipeline.capture")
    params: dict[str, Any] = {}
    cron: str | None = Field(None, description="5 fields, or 6 with seconds last; none = manual/dependency only")
    depends_on: list[str] = Field([], description="schedule ids or names that must succeed first")
    enabled: bool = True


class SchedulePatch(BaseModel):
    action: str | None = None
    params: dict[str, Any] | None = None
    cron: str | None = None
    depends_on: list[str] | None = None
    enabled: bool | None = None


class TriggerIn(BaseModel):
    key: str | None = Field(None, max_length=150, description="idempotency key: a retry with it starts nothing new")


def _validate(
    store, sid: str | None, action: str | None, cron: str | None, depends_on: list[str] | None
) -> list[str] | None:
    if action is not None and action not in ACTIONS:
        raise HTTPException(422, f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    if cron is not None and not croniter.is_valid(cron):
        raise HTTPException(422, f"invalid cron expression {cron!r}")
    if depends_on is None:
        return None
    ids = []
    for ref in depends_on:
        parent = store.get(ref)
        if parent is None:
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


def _get(request: Request, sid: str) -> dict:
    s = scheduler_for(request.app).store.get(sid)
    if s is None:
        raise HTTPException(404, f"no schedule {sid!r}")
    return s


@router.post("/schedules", status_code=201, summary="Create a schedule")
def create_schedule(body: ScheduleIn, request: Request, principal=MANAGE) -> dict:
    store = scheduler_for(request.app).store
    if store.get(body.name):
        raise HTTPException(409, f"schedule {body.name!r} exists")
    deps = _validate(store, None, body.action, body.cron, body.depends_on)
    check_params(body.action, body.params, request.app.state.settings, Scope.of(principal))  # paths/hosts: 422
    return store.create(body.name, body.action, body.params, body.cron, deps, body.enabled, principal.name)


@router.get("/schedules", summary="All schedules", dependencies=[MANAGE])
def list_schedules(request: Request) -> list[dict]:
    return scheduler_for(request.app).store.list()


@router.get("/schedules/{sid}", summary="One schedule (id or name)", dependencies=[MANAGE])
def get_schedule(sid: str, request: Request) -> dict:
    return _get(request, sid)


@router.patch("/schedules/{sid}", summary="Change a schedule", dependencies=[MANAGE])
def patch_schedule(sid: str, body: SchedulePatch, request: Request) -> dict:
    s, store = _get(request, sid), scheduler_for(request.app).store
    values = body.model_dump(exclude_unset=True)
    deps = _validate(store, s["id"], values.get("action"), values.get("cron"), values.get("depends_on"))
    scope = Scope.of(request.state.principal)  # paths inside the caller's data root, else 422
    check_params(
        values.get("action", s["action"]), values.get("params", s["params"]), request.app.state.settings, scope
    )
    if deps is not None:
        values["depends_on"] = deps
    return store.update(s["id"], **values)


@router.delete("/schedules/{sid}", status_code=204, summary="Delete a schedule", dependencies=[MANAGE])
def delete_schedule(sid: str, request: Request) -> None:
    s, store = _get(request, sid), scheduler_for(request.app).store
    children = [c["name"] for c in store.list() if s["id"] in c["depends_on"]]
    if children:
        raise HTTPException(409, f"schedules {children} depend on {s['name']!r}")
    store.delete(s["id"])


@router.post("/schedules/{sid}/run", status_code=202, summary="Run now (manual trigger)")
def run_now(sid: str, request: Request, principal=MANAGE) -> dict:
    s = _get(request, sid)
    return scheduler_for(request.app).fire(s, "manual", f"manual:{uuid.uuid4().hex}", principal.name)


@router.post(
    "/schedules/{sid}/trigger",
    status_code=202,
    summary="Start a run from a third-party scheduler; `key` makes retries idempotent",
)
def trigger(sid: str, request: Request, body: TriggerIn | None = None, principal=MANAGE) -> dict:
    s, sched = _get(request, sid), scheduler_for(request.app)
    key = f"http:{body.key}" if body and body.key else f"http:{uuid.uuid4().hex}"
    run = sched.fire(s, "http", key, principal.name)
    if run is None:
        existing = sched.store.get_run_by_key(s["id"], key)
        raise HTTPException(409, {"detail": "already triggered with this key", "run": existing})
    return run


@router.get("/schedules/{sid}/runs", summary="Run history: status, duration, counts, error", dependencies=[MANAGE])
def runs(sid: str, request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict]:
    s = _get(request, sid)
    return scheduler_for(request.app).store.runs(s["id"], limit=min(limit, 1000))


@router.get("/schedule-runs/{run_id}", summary="One run", dependencies=[MANAGE])
def get_run(run_id: str, request: Request) -> dict:
    run = scheduler_for(request.app).store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return run
