"""What a user manager may do: never hand out more than they hold, never reach outside their
tenants, never act on an account (or a key, group or role) that holds more than they do.

Names of other tenants' users, groups and roles are never confirmed: such a name answers like an
unknown one (404 on its own route, 422 "unknown ..." in an assignment)."""

from __future__ import annotations

import fnmatch

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


def covers_tenants(caller: Principal, tenants: set[str]) -> bool:
    """The caller sees every one of `tenants` ('*' only by seeing all)."""
    if caller.all_tenants:
        return True
    return "*" not in tenants and all(caller.sees_tenant(t) for t in tenants)


def covers_grants(caller: Principal, grants: set[str]) -> bool:
    """Data grants narrow access: the target reaches no further than the caller. For each kind the
    caller is limited in, the target must be limited too, inside the caller's patterns."""
    if caller.superuser:
        return True
    for kind in ("pipeline", "table", "column"):
        mine = [g.split(":", 1)[1] for g in caller.grants if g.startswith(kind + ":")]
        if not mine:
            continue
        theirs = [g.split(":", 1)[1] for g in grants if g.startswith(kind + ":")]
        if not theirs or not all(any(fnmatch.fnmatchcase(t, m) for m in mine) for t in theirs):
            return False
    return True


def home_tenant(caller: Principal, requested: str | None) -> str | None:
    """The tenant a new user/group/key/role lands in: the requested one if the caller sees it."""
    tenant = requested if requested is not None else caller.tenant
    if tenant is None and not caller.superuser:
        raise HTTPException(
            422,
            f"tenant is required: your account ({caller.name}) has no home tenant, so name one you have access "
            "to in `tenant`, or ask a user manager to give your account a tenant",
        )
    if tenant is not None and not caller.sees_tenant(tenant):
        yours = sorted(t for t in {caller.tenant, *caller.tenants} if t)
        raise HTTPException(
            403,
            f"no access to tenant {tenant!r}: your account ({caller.name}) has access to "
            + (", ".join(repr(t) for t in yours) if yours else "no tenant; ask a user manager to give it one"),
        )
    return tenant


def role_visible(caller: Principal, role: dict | None) -> dict | None:
    """Global roles are visible to every user manager; a tenant's role only inside that tenant."""
    if role is None:
        return None
    return role if role.get("tenant") is None or caller.sees_tenant(role["tenant"]) else None


def check_grantable(
    caller: Principal,
    store,
    roles: list[str],
    groups: list[str] = (),
    tenants: list[str] = (),
    superuser: bool = False,
    holder_tenant: str | None = None,
    grants: list[str] | None = None,
) -> None:
    """403 when the assignment would give more than the caller holds; 422 for unknown names.
    `grants`: the holder's direct data grants after the change (None = unchanged). Roles must be usable in the holder's tenant (global, or that tenant's own) and groups must be
    of that tenant; others answer as unknown, whether or not they exist elsewhere."""
    any_tenant = caller.superuser and holder_tenant is None
    missing = [
        r
        for r in sorted(set(roles))
        if not (
            (role := role_visible(caller, store.role(r))) is not None
            and (any_tenant or store.role_usable_in(role, holder_tenant))
        )
    ]
    if missing:
        raise HTTPException(422, f"unknown roles: {', '.join(missing)}")
    unknown = []
    for g in sorted(set(groups)):
        group = store.group(g)
        if (
            group is None
            or not caller.sees_tenant(group["tenant"])
            or (not any_tenant and group["tenant"] != holder_tenant)
        ):
            unknown.append(g)
    if unknown:
        raise HTTPException(422, f"unknown groups: {', '.join(unknown)}")
    perms, role_grants = store.resolve(roles, groups, tenant=holder_tenant, any_tenant=any_tenant)
    if not covers(caller, perms):
        raise HTTPException(403, "cannot grant permissions you do not hold")
    if grants is not None and not covers_grants(caller, role_grants | set(grants)):
        # A manager limited by data grants cannot give (or leave) wider data access than their own.
        raise HTTPException(403, "cannot grant data access wider than yours")
    if (superuser or tenants) and not caller.all_tenants:
        raise HTTPException(403, "only a cross-tenant administrator can grant superuser or other tenants")
    if superuser and not caller.superuser:
        raise HTTPException(403, "only a superuser can create superusers")


def holdings(store, user: dict) -> tuple[set[str], set[str]]:
    """(permissions, data grants) a user holds through roles and groups, plus direct grants."""
    perms, grants = store.resolve(
        user["roles"], user["groups"], tenant=user["tenant"], any_tenant=bool(user["superuser"])
    )
    return perms, grants | set(user["grants"])


def check_target(caller: Principal, store, user: dict, action: str = "change") -> None:
    """403 when the account holds anything the caller does not: superuser, permissions, other
    tenants, or wider data access. Applies to every change of an account (password, disable,
    roles, groups, grants, unlock, delete) and to its API keys."""
    if caller.superuser or (caller.kind == "user" and caller.name == user["username"]):
        return
    if user["superuser"]:
        raise HTTPException(403, f"only a superuser can {action} a superuser")
    perms, grants = holdings(store, user)
    if not covers(caller, perms):
        raise HTTPException(403, f"cannot {action} user {user['username']!r}: they hold permissions you do not hold")
    if not covers_tenants(caller, set(user["tenants"])):
        raise HTTPException(403, f"cannot {action} user {user['username']!r}: they may see tenants you do not see")
    if not covers_grants(caller, grants):
        raise HTTPException(403, f"cannot {action} user {user['username']!r}: their data access is wider than yours")


def check_key_target(caller: Principal, store, key: dict, action: str = "change") -> None:
    """A key is acted on only by someone holding what it holds and what its owner holds."""
    if caller.superuser:
        return
    perms, _ = store.resolve(key["roles"], tenant=key["tenant"])
    if not covers(caller, perms):
        raise HTTPException(403, f"cannot {action} API key {key['id']!r}: it holds permissions you do not hold")
    owner = store.user(key.get("owner") or key["created_by"])
    if owner is not None:
        check_target(caller, store, owner, action + " the API key of")


def visible(caller: Principal, row: dict | None) -> dict | None:
    """The row when its tenant is in the caller's scope, else None (answered as 404)."""
    return row if row is not None and caller.sees_tenant(row.get("tenant")) else None
