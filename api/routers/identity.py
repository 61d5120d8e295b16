"""Users, groups, roles and API keys. Every route needs users:manage; tenant admins see and
change only their tenant, can never hand out more than they hold, and cannot act on an account
(or its keys) holding more than they do (api.identity.policy). Roles belong to the tenant that
created them; global roles (built-in, or created by a superuser without a tenant) are changed by
superusers only. Names of other tenants' objects answer like unknown names."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.identity import passwords
from api.identity.policy import (
    check_grantable,
    check_key_target,
    check_target,
    covers,
    home_tenant,
    role_visible,
    visible,
)
from api.identity.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeyPatch,
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


def _strong(secret, username: str) -> str:
    password = secret.get_secret_value()
    reason = passwords.check_strength(password, username)
    if reason:
        raise HTTPException(422, reason)
    return password


def _found(row: dict | None, what: str, name: str) -> dict:
    if row is None:
        raise HTTPException(404, f"no {what} {name!r}")
    return row


def _looked_up(request: Request, row: dict | None) -> dict | None:
    """Note the owner tenant of what the caller looked at (found or not), for its audit entry."""
    if row is not None:
        note_affected_tenant(request, row.get("tenant"))
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
    if tenant is None and not body.superuser:  # a superuser without a tenant creating, e.g. the first admin
        tenant = request.app.state.settings.default_tenant or None
        if tenant is None:
            raise HTTPException(
                422,
                "tenant is required: a user who is not a superuser belongs to a tenant (send `tenant`; "
                "the setting default_tenant is empty)",
            )
    check_grantable(
        principal,
        store,
        body.roles,
        body.groups,
        body.tenants,
        body.superuser,
        holder_tenant=tenant,
        grants=body.grants,
    )
    password = _strong(body.password, body.username)
    try:
        return store.create_user(
            body.username, password, tenant=tenant, **body.model_dump(exclude={"username", "password", "tenant"})
        )
    except Conflict:
        # User names are global (sign-in takes only the name); the answer is the same whoever holds it.
        raise HTTPException(409, f"user name {body.username!r} is not available")


def _user(request: Request, principal: Principal, store: IdentityStore, username: str) -> dict:
    return _found(visible(principal, _looked_up(request, store.user(username))), "user", username)


@router.get("/users/{username}", response_model=UserOut)
def get_user(username: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    return _user(request, principal, _store(request), username)


@router.patch("/users/{username}", response_model=UserOut)
def update_user(username: str, body: UserPatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "user.update", username=username, fields=sorted(body.model_fields_set))
    store = _store(request)
    user = _user(request, principal, store, username)
    check_target(principal, store, user)
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"password", "unlock"})
    if {"roles", "groups", "grants"} & changes.keys():  # the holdings after the change, whole
        after = {k: changes.get(k, user[k]) for k in ("roles", "groups", "grants")}
        check_grantable(
            principal,
            store,
            after["roles"],
            after["groups"],
            changes.get("tenants", []),
            holder_tenant=user["tenant"],
            grants=after["grants"],
        )
    elif changes.get("tenants"):
        check_grantable(principal, store, [], tenants=changes["tenants"], holder_tenant=user["tenant"])
    password = _strong(body.password, username) if body.password is not None else None
    updated = store.update_user(username, password=password, **changes)
    if body.unlock or password is not None:  # a new password also ends the sign-in back-off
        store.clear_throttle(username)
    return updated


@router.delete("/users/{username}", status_code=204, summary="Delete a user; their API keys are revoked")
def delete_user(username: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "user.delete", username=username)
    store = _store(request)
    user = _user(request, principal, store, username)
    check_target(principal, store, user, "delete")
    store.delete_user(username)
    store.clear_throttle(username)
    return Response(status_code=204)


# groups -------------------------------------------------------------------------------------
def _group_out(store: IdentityStore, group: dict, principal: Principal, users: list[dict] | None = None) -> dict:
    """Members the caller may see (a name of another tenant's user is never shown); `users`: the
    users already read, so a list of groups reads them once, not once a group."""
    users = store.users() if users is None else users
    members = [u["username"] for u in users if group["name"] in u["groups"] and visible(principal, u)]
    return {**group, "members": members}


@router.get("/groups", response_model=list[GroupOut])
def list_groups(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    store = _store(request)
    users = store.users()
    return [_group_out(store, g, principal, users) for g in store.groups() if visible(principal, g)]


@router.post("/groups", response_model=GroupOut, status_code=201)
def create_group(body: GroupIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "group.create", group=body.name)
    store = _store(request)
    tenant = home_tenant(principal, body.tenant)
    check_grantable(principal, store, body.roles, holder_tenant=tenant)
    try:
        return _group_out(store, store.create_group(**{**body.model_dump(), "tenant": tenant}), principal)
    except Conflict:
        raise HTTPException(409, f"group name {body.name!r} is not available")


def _group(request: Request, principal: Principal, store: IdentityStore, name: str) -> dict:
    return _found(visible(principal, _looked_up(request, store.group(name))), "group", name)


def _check_group_target(principal: Principal, store: IdentityStore, group: dict, action: str) -> None:
    perms, _ = store.resolve(group["roles"], tenant=group["tenant"])
    if not covers(principal, perms):
        raise HTTPException(403, f"cannot {action} group {group['name']!r}: it holds permissions you do not hold")


@router.get("/groups/{name}", response_model=GroupOut)
def get_group(name: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    store = _store(request)
    return _group_out(store, _group(request, principal, store, name), principal)


@router.patch("/groups/{name}", response_model=GroupOut)
def update_group(name: str, body: GroupPatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "group.update", group=name, fields=sorted(body.model_fields_set))
    store = _store(request)
    group = _group(request, principal, store, name)
    _check_group_target(principal, store, group, "change")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    check_grantable(principal, store, changes.get("roles", []), holder_tenant=group["tenant"])
    return _group_out(store, store.update_group(name, **changes), principal)


@router.delete("/groups/{name}", status_code=204)
def delete_group(name: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "group.delete", group=name)
    store = _store(request)
    group = _group(request, principal, store, name)
    _check_group_target(principal, store, group, "delete")
    store.delete_group(name)
    return Response(status_code=204)


# roles: a tenant's own (visible and usable only there), or global (superusers change them) ----
@router.get("/roles", response_model=list[RoleOut])
def list_roles(request: Request, principal: Principal = Depends(manager)) -> list[dict]:
    return [r for r in _store(request).roles() if role_visible(principal, r)]


@router.post("/roles", response_model=RoleOut, status_code=201)
def create_role(body: RoleIn, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "role.create", role=body.name)
    tenant = home_tenant(principal, body.tenant)
    if not covers(principal, set(body.permissions)):
        raise HTTPException(403, "cannot grant permissions you do not hold")
    try:
        return _store(request).create_role(**{**body.model_dump(), "tenant": tenant})
    except Conflict:
        # Role names are unique across tenants; the answer never says whose the name is.
        raise HTTPException(409, f"role name {body.name!r} is not available")


def _role(request: Request, principal: Principal, store: IdentityStore, name: str) -> dict:
    return _found(role_visible(principal, _looked_up(request, store.role(name))), "role", name)


@router.get("/roles/{name}", response_model=RoleOut)
def get_role(name: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    store = _store(request)
    return _role(request, principal, store, name)


def _custom_role(request: Request, principal: Principal, store: IdentityStore, name: str) -> dict:
    role = _role(request, principal, store, name)
    if role["builtin"]:
        raise HTTPException(409, f"role {name!r} is built in and cannot be changed")
    if role["tenant"] is None and not principal.superuser:
        raise HTTPException(403, f"role {name!r} is global: only a superuser can change it")
    return role


@router.patch("/roles/{name}", response_model=RoleOut)
def update_role(name: str, body: RolePatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "role.update", role=name, fields=sorted(body.model_fields_set))
    store = _store(request)
    role = _custom_role(request, principal, store, name)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not covers(principal, set(role["permissions"]) | set(changes.get("permissions", []))):
        raise HTTPException(403, "cannot change a role holding permissions you do not hold")
    return store.update_role(name, **changes)


@router.delete("/roles/{name}", status_code=204)
def delete_role(name: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "role.delete", role=name)
    store = _store(request)
    role = _custom_role(request, principal, store, name)
    if not covers(principal, set(role["permissions"])):
        raise HTTPException(403, "cannot delete a role holding permissions you do not hold")
    holders = store.role_holders(name)
    if holders:  # name only the holders the caller may see
        shown = sorted(f"{h['kind']} {h['name']}" for h in holders if principal.sees_tenant(h["tenant"]))
        raise HTTPException(409, f"role {name!r} is still held" + (f" by: {', '.join(shown[:10])}" if shown else ""))
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
    audit_as(request, "api_key.create", name=body.name)
    store = _store(request)
    tenant = home_tenant(principal, body.tenant)
    check_grantable(principal, store, body.roles, holder_tenant=tenant, grants=[])
    owner = body.owner or (principal.name if principal.kind == "user" else None)
    if body.owner:
        _owner(request, principal, store, body.owner)
    row, key = store.create_api_key(body.name, tenant, body.roles, principal.name, body.expires_in_days, owner)
    audit_as(request, "api_key.create", id=row["id"], name=body.name, owner=owner)
    return {**row, "key": key}


def _owner(request: Request, principal: Principal, store: IdentityStore, username: str) -> dict:
    """A key's owner: a user the caller sees and could act on, and who is not disabled."""
    user = visible(principal, _looked_up(request, store.user(username)))
    if user is None or user["disabled"]:
        raise HTTPException(422, f"unknown user {username!r}")
    check_target(principal, store, user, "hand an API key to")
    return user


def _key(request: Request, principal: Principal, store: IdentityStore, key_id: str) -> dict:
    return _found(visible(principal, _looked_up(request, store.api_key(key_id))), "API key", key_id)


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut)
def get_api_key(key_id: str, request: Request, principal: Principal = Depends(manager)) -> dict:
    return _key(request, principal, _store(request), key_id)


@router.patch("/api-keys/{key_id}", response_model=ApiKeyOut, summary="Reassign an API key to another owner")
def update_api_key(key_id: str, body: ApiKeyPatch, request: Request, principal: Principal = Depends(manager)) -> dict:
    audit_as(request, "api_key.update", id=key_id, owner=body.owner)
    store = _store(request)
    key = _key(request, principal, store, key_id)
    check_key_target(principal, store, key)
    _owner(request, principal, store, body.owner)
    return store.reassign_api_key(key_id, body.owner)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key (kept, for the audit trail)")
def revoke_api_key(key_id: str, request: Request, principal: Principal = Depends(manager)) -> Response:
    audit_as(request, "api_key.revoke", id=key_id)
    store = _store(request)
    key = _key(request, principal, store, key_id)
    check_key_target(principal, store, key, "revoke")
    store.revoke_api_key(key_id)
    return Response(status_code=204)
