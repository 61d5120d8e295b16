"""Sign-in for people: OAuth2 password flow -> short-lived JWT. Open route, by necessity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.identity import tokens
from api.identity.store import store_for
from api.security import Principal, authenticated

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    name: str
    kind: str
    tenant: str | None
    superuser: bool
    permissions: list[str]
    tenants: list[str]
    grants: list[str]


@router.post(
    "/auth/token",
    response_model=Token,
    summary="Exchange username and password for an access token",
    responses={
        401: {"description": "wrong username or password"},
        423: {"description": "account locked after repeated failures"},
    },
)
async def token(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> Token:
    request.state.audit_actor = form.username[:200]
    request.state.audit_action = "auth.login"
    store = store_for(request.app.state.settings.resolved_control_db_url)
    result, user = await run_in_threadpool(store.check_login, form.username, form.password)
    if user is not None:
        request.state.audit_tenant = user["tenant"]
    if result == "locked":
        raise HTTPException(
            423, "account locked after repeated failed logins; try again later or ask an administrator to unlock it"
        )
    if result != "ok":  # unknown user, wrong password and disabled look the same from outside
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    access, expires_in = tokens.issue(request.app.state.jwt_key, user["username"], user["tenant"])
    return Token(access_token=access, expires_in=expires_in)


@router.get("/auth/me", response_model=Me, summary="Who the credential belongs to and what it may do")
def me(principal: Principal = Depends(authenticated)) -> Me:
    return Me(
        name=principal.name,
        kind=principal.kind,
        tenant=principal.tenant,
        superuser=principal.superuser,
        permissions=sorted(principal.permissions),
        tenants=sorted(principal.tenants),
        grants=sorted(principal.grants),
    )
