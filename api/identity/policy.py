"""What a user manager may hand out: never more than they hold, never outside their tenants."""

from __future__ import annotations

from fastapi import HTTPException

from api.security import Principal


def covers(caller: Principal, permissions: set[str]) -> bool:
    """The caller holds every one of `permissions` (a wildcard only by holding it, or '*')."""
    if caller.superuser:
        return True
    for p in permissions:
        wild = "*" in p
        if (wild and p not in caller.permissions and "*" not in caller.permissions) or (not wild and not caller.can(p)):
            return False
    return True


def home_tenant(caller: Principal, requested: str | None) -> str | None:
    """The tenant a new user/group/key lands in: the requested one if the caller sees it."""
    tenant = requested if requested is not None else caller.tenant
    if tenant is None and not caller.superuser:
        raise HTTPException(422, "tenant is required")
    if tenant is not None and not caller.sees_tenant(tenant):
        raise HTTPException(403, f"no access to tenant {tenant!r}")
    return tenant


def check_grantable(
    caller: Principal, store, roles: list[str], groups: list[str] = (), tenants: list[str] = (), superuser: bool = False
) -> None:
    """403 when the assignment would give more than the caller holds; 422 for unknown names."""
    missing = store.missing_roles(roles)
    if missing:
        raise HTTPException(422, f"unknown roles: {', '.join(missing)}")
    unknown = [g for g in groups if store.group(g) is None]
    if unknown:
        raise HTTPException(422, f"unknown groups: {', '.join(unknown)}")
    for g in groups:
        if not caller.sees_tenant(store.group(g)["tenant"]):
            raise HTTPException(403, f"no access to group {g!r}")
    perms, _ = store.resolve(roles, groups)
    if not covers(caller, perms):
        raise HTTPException(403, "cannot grant permissions you do not hold")
    if (superuser or tenants) and not caller.all_tenants:
        raise HTTPException(403, "only a cross-tenant administrator can grant superuser or other tenants")
    if superuser and not caller.superuser:
        raise HTTPException(403, "only a superuser can create superusers")


def visible(caller: Principal, row: dict | None) -> dict | None:
    """The row when its tenant is in the caller's scope, else None (answered as 404)."""
    return row if row is not None and caller.sees_tenant(row.get("tenant")) else None
