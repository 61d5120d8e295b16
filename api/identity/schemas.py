"""Request and response bodies for users, groups, roles and API keys. No response model has a
secret field; the one exception is `ApiKeyCreated.key`, shown once at creation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.identity.permissions import PERMISSION_PATTERN

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")]
Tenant = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")]
Permission = Annotated[str, Field(pattern=PERMISSION_PATTERN, max_length=100)]
Grant = Annotated[str, Field(pattern=r"^(pipeline|table|column):[A-Za-z0-9_.*\-]{1,200}$")]
TenantGrant = Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_\-]{0,99})$")]
Password = Annotated[SecretStr, Field(min_length=1, max_length=256)]
# Where notices (quality tickets) are mailed; "" clears it. Deliberately loose: the server decides.
Email = Annotated[str, Field(pattern=r"^$|^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254)]
Lang = Literal["zh", "en"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    username: Name
    password: Password
    display_name: str = Field("", max_length=200)
    email: Email | None = Field(None, description="where notices (quality tickets) are mailed")
    lang: Lang | None = Field(None, description="language of the notices: zh (default) or en")
    tenant: Tenant | None = Field(None, description="default: the caller's tenant")
    roles: list[Name] = []
    groups: list[Name] = []
    tenants: list[TenantGrant] = Field([], description="extra tenants this user may see; ['*'] = all")
    grants: list[Grant] = Field([], description="data grants narrowing access inside the tenant")
    superuser: bool = False


class UserPatch(_In):
    password: Password | None = None
    display_name: str | None = Field(None, max_length=200)
    email: Email | None = Field(None, description='"" removes it')
    lang: Lang | None = None
    roles: list[Name] | None = None
    groups: list[Name] | None = None
    tenants: list[TenantGrant] | None = None
    grants: list[Grant] | None = None
    disabled: bool | None = None
    unlock: bool = Field(False, description="clear the sign-in back-off of every source for this user")


class UserOut(BaseModel):
    username: str
    display_name: str
    email: str | None = None
    lang: str | None = None
    tenant: str | None
    superuser: bool
    disabled: bool
    roles: list[str]
    groups: list[str]
    tenants: list[str]
    grants: list[str]
    created_at: str


class GroupIn(_In):
    name: Name
    tenant: Tenant | None = None
    description: str = Field("", max_length=2000)
    roles: list[Name] = []


class GroupPatch(_In):
    description: str | None = Field(None, max_length=2000)
    roles: list[Name] | None = None


class GroupOut(BaseModel):
    name: str
    tenant: str | None
    description: str
    roles: list[str]
    members: list[str] = []


class RoleIn(_In):
    name: Name
    tenant: Tenant | None = Field(
        None, description="default: the caller's tenant; only a superuser creates global roles (no tenant)"
    )
    description: str = Field("", max_length=2000)
    permissions: list[Permission] = []
    grants: list[Grant] = []


class RolePatch(_In):
    description: str | None = Field(None, max_length=2000)
    permissions: list[Permission] | None = None
    grants: list[Grant] | None = None


class RoleOut(BaseModel):
    name: str
    tenant: str | None = Field(description="owner tenant; null = global")
    description: str
    permissions: list[str]
    grants: list[str]
    builtin: bool


class ApiKeyIn(_In):
    name: Name
    tenant: Tenant | None = None
    roles: list[Name] = []
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="default: no expiry")
    owner: Name | None = Field(None, description="user answerable for the key; default: the creator")


class ApiKeyPatch(_In):
    owner: Name = Field(description="reassign the key to this user (keys die with their owner otherwise)")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    tenant: str | None
    roles: list[str]
    created_by: str
    owner: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown only now, store it safely")
