"""Who is calling and what they may do. Every route depends on `require(permission)`.

Today one credential exists: the operator API key (see api.auth), which holds every permission
in every tenant. The Principal shape is what routes rely on, so richer identity (users, groups,
roles, tenants) slots in here without touching the routes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Depends

from api.auth import require_api_key


@dataclass(frozen=True)
class Principal:
    name: str
    tenant: str | None = None  # None = all tenants
    permissions: frozenset[str] = field(default_factory=frozenset)
    superuser: bool = False

    def can(self, permission: str) -> bool:
        return self.superuser or permission in self.permissions


def current_principal(name: str = Depends(require_api_key)) -> Principal:
    return Principal(name=name, superuser=True)


def require(permission: str):
    """A dependency that returns the Principal when it holds `permission`, else answers 403."""
    from fastapi import HTTPException, status

    def check(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {permission!r} required")
        return principal

    return check
