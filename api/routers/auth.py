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
    groups: list[str] = []  # a person's groups (a catalogue owner may be one); none for keys and operators


BAD_CREDENTIALS = "wrong username or password"


@router.post(
    "/auth/token",
    response_model=Token,
    summary="Exchange username and password for an access token",
    responses={
        401: {"description": "wrong username or password (also: unknown or disabled user)"},
        429: {"description": "too many failed sign-ins from this address for this name; see Retry-After"},
    },
)
async def token(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> Token:
    """Failed sign-ins are counted per (source address, typed name), known or not: after 5 the
    source waits 2 s, then 4 s, 8 s... (at most 15 minutes) before it may try that name again
    (429 with Retry-After). The account itself is never locked, so nobody can lock its owner out,
    and nothing here tells whether a name exists."""
    request.state.audit_actor = form.username[:200]
    request.state.audit_action = "auth.login"
    store = store_for(request.app.state.settings.resolved_control_db_url)
    source = request.client.host if request.client else "unknown"
    wait = await run_in_threadpool(store.throttled_for, source, form.username)
    if wait:
        raise HTTPException(429, "too many failed sign-ins; try again later", headers={"Retry-After": str(wait)})
    # The longest password a user can have is 256 characters; a longer one is checked cut to that
    # (and fails), so a huge one cannot make the hashing slow.
    result, user = await run_in_threadpool(store.check_login, form.username[:200], form.password[:257])
    if user is not None:
        request.state.audit_tenant = user["tenant"]
    if result != "ok":  # unknown user, wrong password and disabled look the same from outside
        await run_in_threadpool(store.note_failure, source, form.username)
        raise HTTPException(401, BAD_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    await run_in_threadpool(store.clear_throttle, form.username, source)
    access, expires_in = tokens.issue(
        request.app.state.jwt_key, user["username"], user["tenant"], user["user_id"], user["generation"]
    )
    return Token(access_token=access, expires_in=expires_in)


@router.get("/auth/me", response_model=Me, summary="Who the credential belongs to and what it may do")
def me(request: Request, principal: Principal = Depends(authenticated)) -> Me:
    groups: list[str] = []
    if principal.kind == "user":
        user = store_for(request.app.state.settings.resolved_control_db_url).user(principal.name) or {}
        groups = sorted(user.get("groups") or [])
    return Me(
        name=principal.name,
        kind=principal.kind,
        tenant=principal.tenant,
        superuser=principal.superuser,
        permissions=sorted(principal.permissions),
        tenants=sorted(principal.tenants),
        grants=sorted(principal.grants),
        groups=groups,
    )
