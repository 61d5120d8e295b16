"""Who is calling and what they may do. Every route depends on `require(permission)`.

`require` is a FastAPI dependency: it runs before the handler (and before its own 404s), answers
401 without a valid credential and 403 without the permission, and returns the Principal.
Handlers use the Principal for data scope: `sees_tenant(t)` and `may_access(kind, name)`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request, status

from api.auth import BasicLogin, is_operator_key, presented_credential, unauthorized
from api.identity import tokens
from api.identity.permissions import grants as _grants
from api.identity.store import store_for
from deploy.logs import set_request_tenant


@dataclass(frozen=True)
class Principal:
    name: str
    tenant: str | None = None  # home tenant; None with superuser = all tenants
    permissions: frozenset[str] = field(default_factory=frozenset)
    superuser: bool = False
    kind: str = "operator"  # "operator" | "user" | "api_key"
    tenants: frozenset[str] = field(default_factory=frozenset)  # extra tenants granted; "*" = all
    grants: frozenset[str] = field(default_factory=frozenset)  # data grants, e.g. "pipeline:population"

    def can(self, permission: str) -> bool:
        return self.superuser or _grants(self.permissions, permission)

    @property
    def all_tenants(self) -> bool:
        return self.superuser or "*" in self.tenants

    def sees_tenant(self, tenant: str | None) -> bool:
        """Tenant scope: own tenant, granted tenants, or all for superusers."""
        return self.all_tenants or (tenant is not None and (tenant == self.tenant or tenant in self.tenants))

    def visible_tenants(self) -> set[str] | None:
        """None = every tenant; else the set a query must be limited to."""
        return None if self.all_tenants else {t for t in {self.tenant, *self.tenants} if t}

    def may_access(self, kind: str, name: str) -> bool:
        """Data grants narrow access inside a tenant: with no `kind:` grant, everything is allowed.
        Grants may use shell wildcards (`table:civil.*`); a table grant covers its columns."""
        if self.superuser:
            return True
        scoped = [g.split(":", 1)[1] for g in self.grants if g.startswith(kind + ":")]
        if kind == "column":
            scoped += [g.split(":", 1)[1] + ".*" for g in self.grants if g.startswith("table:")]
        return not scoped or any(fnmatch.fnmatchcase(name, pattern) for pattern in scoped)


def _user_principal(store, claims: dict) -> Principal | None:
    user = store.user(claims["sub"])
    if user is None or user["disabled"] or not store.token_claims_match(user, claims.get("uid"), claims.get("gen")):
        return None  # deleted (or recreated), disabled, or changed since the token was issued
    return _principal_of(store, user)


def _basic_principal(request: Request, store, login: BasicLogin) -> Principal:
    """HTTP Basic with a user's name and password: the sign-in rules of POST /auth/token on every
    request (back-off per source address and typed name, 429 with Retry-After; one 401 for an unknown
    user, a wrong password and a disabled account; failures audited under the typed name)."""
    source = request.client.host if request.client else "unknown"
    wait = store.throttled_for(source, login.username)
    if wait:
        request.state.audit_actor = login.username[:200]
        raise HTTPException(429, "too many failed sign-ins; try again later", headers={"Retry-After": str(wait)})
    result, user = store.check_login(login.username[:200], login.password[:257])
    if result != "ok" or user is None:
        request.state.audit_actor = login.username[:200]
        store.note_failure(source, login.username)
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Basic"})
    store.clear_throttle(login.username, source)
    principal = _principal_of(store, store.user(user["username"]) or user)
    if principal is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Basic"})
    return principal


def _principal_of(store, user: dict) -> Principal | None:
    if user.get("disabled"):
        return None
    username = user["username"]
    perms, grants = store.resolve(
        user["roles"], user["groups"], tenant=user["tenant"], any_tenant=bool(user["superuser"])
    )
    return Principal(
        name=username,
        tenant=user["tenant"],
        permissions=frozenset(perms),
        superuser=bool(user["superuser"]),
        kind="user",
        tenants=frozenset(user["tenants"]),
        grants=frozenset(grants) | frozenset(user["grants"]),
    )


def current_principal(request: Request, given: str | BasicLogin = Depends(presented_credential)) -> Principal:
    settings = request.app.state.settings
    principal: Principal | None
    if isinstance(given, BasicLogin):
        principal = _basic_principal(request, store_for(settings.resolved_control_db_url), given)
    elif is_operator_key(request, given):
        principal = Principal(name="operator", superuser=True, kind="operator")
    else:
        store = store_for(settings.resolved_control_db_url)
        key = store.check_api_key(given)
        if key is not None:
            perms, grants = store.resolve(key["roles"], tenant=key["tenant"])
            principal = Principal(
                name=f"apikey:{key['name']}",
                tenant=key["tenant"],
                permissions=frozenset(perms),
                kind="api_key",
                grants=frozenset(grants),
            )
        else:
            claims = tokens.claims_of(request.app.state.jwt_key, given)
            principal = _user_principal(store, claims) if claims else None
    if principal is None:
        raise unauthorized()
    request.state.principal = principal  # read by the audit middleware
    set_request_tenant(None if principal.all_tenants else principal.tenant)  # log lines: GET /logs scope
    return principal


def require(permission: str):
    """A dependency that returns the Principal when it holds `permission`, else answers 403."""

    def check(request: Request, principal: Principal = Depends(current_principal)) -> Principal:
        request.state.permission = permission
        if not principal.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {permission!r} required")
        return principal

    return check


authenticated = current_principal  # for the few routes any signed-in caller may use (e.g. /auth/me)
