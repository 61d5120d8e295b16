"""Users, groups, roles and API keys. Every route needs users:manage; tenant admins see and
change only their tenant, and can never hand out more than they hold (api.identity.policy)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from api.audit import audit_as
from api.identity import passwords
from api.identity.policy import check_grantable, covers, home_tenant, visible
from api.identity.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    GroupIn,
    GroupOut,
    GroupPatch,
    RoleIn,
    RoleOut,
    RolePatch,
    UserIn,
    UserOut,
    UserPatch,
)
from api.identity.store import Conflict, IdentityStore, store_for
from api.security import Principal, require

router = APIRouter(tags=["identity"])
manager = require("users:manage")


def _store(request: Request) -> IdentityStore:
    return store_for(request.app.state.settings.resolved_control_db_url)


def _strong(secret) -> str:
    password = secret.get_secret_value()
    reason = passwords.check_strength(password)
    if reason:
        raise HTTPException(422, reason)
    return password


def _found(row: dict | None, what: str, name: str) -> dict:
    if row is None:
        raise HTTPException(404, f"no {what} {name!r}")
    return row


# users --------------------------------------------------------------------------------------
@router.get("/users", response_model=list[UserOut])
def list_users(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    return [u for u in _store(request).users() if visible(principal, u)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "user.create", username=body.username)
    store = _store(request)
    tenant = home_tenant(principal, body.tenant)
    check_grantable(principal, store, body.roles, body.groups, body.tenants, body.superuser)
    try:
        return store.create_user(
            body.username,
            _strong(body.password),
            tenant=tenant,
            **body.model_dump(exclude={"username", "password", "tenant"}),
        )
    except Conflict:
        raise HTTPException(409, f"user {body.username!r} already exists")


@router.get("/users/{username}", response_model=UserOut)
def get_user(username: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    return _found(visible(principal, _store(request).user(username)), "user", username)


@router.patch("/users/{username}", response_model=UserOut)
def update_user(username: str, body: UserPatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    store = _store(request)
    user = _found(visible(principal, store.user(username)), "user", username)
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"password", "unlock"})
    audit_as(request, "user.update", username=username, fields=sorted(body.model_fields_set))
    check_grantable(principal, store, changes.get("roles", []), changes.get("groups", []), changes.get("tenants", []))
    if user["superuser"] and not principal.superuser:
        raise HTTPException(403, "only a superuser can change a superuser")
    if body.unlock:
        changes.update(failed_logins=0, locked_until=None)
    password = _strong(body.password) if body.password is not None else None
    if password is not None:  # a new password also clears a lock-out
        changes.update(failed_logins=0, locked_until=None)
    return store.update_user(username, password=password, **changes)


@router.delete("/users/{username}", status_code=204)
def delete_user(username: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "user.delete", username=username)
    store = _store(request)
    user = _found(visible(principal, store.user(username)), "user", username)
    if user["superuser"] and not principal.superuser:
        raise HTTPException(403, "only a superuser can delete a superuser")
    store.delete_user(username)
    return Response(status_code=204)


# groups -------------------------------------------------------------------------------------
def _group_out(store: IdentityStore, group: dict) -> dict:
    return {**group, "members": [u["username"] for u in store.users() if group["name"] in u["groups"]]}


@router.get("/groups", response_model=list[GroupOut])
def list_groups(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    store = _store(request)
    return [_group_out(store, g) for g in store.groups() if visible(principal, g)]


@router.post("/groups", response_model=GroupOut, status_code=201)
def create_group(body: GroupIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "group.create", group=body.name)
    store = _store(request)
    tenant = home_tenant(principal, body.tenant)
    check_grantable(principal, store, body.roles)
    try:
        return _group_out(store, store.create_group(**{**body.model_dump(), "tenant": tenant}))
    except Conflict:
        raise HTTPException(409, f"group {body.name!r} already exists")


@router.get("/groups/{name}", response_model=GroupOut)
def get_group(name: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    store = _store(request)
    return _group_out(store, _found(visible(principal, store.group(name)), "group", name))


@router.patch("/groups/{name}", response_model=GroupOut)
def update_group(name: str, body: GroupPatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "group.update", group=name, fields=sorted(body.model_fields_set))
    store = _store(request)
    _found(visible(principal, store.group(name)), "group", name)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    check_grantable(principal, store, changes.get("roles", []))
    return _group_out(store, store.update_group(name, **changes))


@router.delete("/groups/{name}", status_code=204)
def delete_group(name: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "group.delete", group=name)
    store = _store(request)
    _found(visible(principal, store.group(name)), "group", name)
    store.delete_group(name)
    return Response(status_code=204)


# roles (global: a role is a set of permissions; tenant scope comes from the holder) ----------
@router.get("/roles", response_model=list[RoleOut])
def list_roles(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    return _store(request).roles()


@router.post("/roles", response_model=RoleOut, status_code=201)
def create_role(body: RoleIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "role.create", role=body.name)
    if not covers(principal, set(body.permissions)):
        raise HTTPException(403, "cannot grant permissions you do not hold")
    try:
        return _store(request).create_role(**body.model_dump())
    except Conflict:
        raise HTTPException(409, f"role {body.name!r} already exists")


@router.get("/roles/{name}", response_model=RoleOut)
def get_role(name: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    return _found(_store(request).role(name), "role", name)


def _custom_role(store: IdentityStore, name: str) -> dict:
    role = _found(store.role(name), "role", name)
    if role["builtin"]:
        raise HTTPException(409, f"role {name!r} is built in and cannot be changed")
    return role


@router.patch("/roles/{name}", response_model=RoleOut)
def update_role(name: str, body: RolePatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "role.update", role=name, fields=sorted(body.model_fields_set))
    store = _store(request)
    role = _custom_role(store, name)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not covers(principal, set(role["permissions"]) | set(changes.get("permissions", []))):
        raise HTTPException(403, "cannot change a role holding permissions you do not hold")
    return store.update_role(name, **changes)


@router.delete("/roles/{name}", status_code=204)
def delete_role(name: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "role.delete", role=name)
    store = _store(request)
    role = _custom_role(store, name)
    if not covers(principal, set(role["permissions"])):
        raise HTTPException(403, "cannot delete a role holding permissions you do not hold")
    try:
        store.delete_role(name)
    except Conflict as e:
        raise HTTPException(409, str(e))
    return Response(status_code=204)


# API keys ------------------------------------------------------------------------------------
@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    return [k for k in _store(request).api_keys() if visible(principal, k)]


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an API key; the key is in this response only",
)
def create_api_key(body: ApiKeyIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    store = _store(request)
    tenant = home_tenant(principal, body.tenant)
    check_grantable(principal, store, body.roles)
    row, key = store.create_api_key(body.name, tenant, body.roles, principal.name)
    audit_as(request, "api_key.create", id=row["id"], name=body.name)
    return {**row, "key": key}


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut)
def get_api_key(key_id: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    return _found(visible(principal, _store(request).api_key(key_id)), "API key", key_id)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key (kept, for the audit trail)")
def revoke_api_key(key_id: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "api_key.revoke", id=key_id)
    store = _store(request)
    _found(visible(principal, store.api_key(key_id)), "API key", key_id)
    store.revoke_api_key(key_id)
    return Response(status_code=204)
