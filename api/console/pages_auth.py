"""Sign-in, sign-out and the console's static files."""

from __future__ import annotations

import hmac
import mimetypes
import time
from pathlib import Path

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.console.backend import Backend
from api.console.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    PATH,
    ConsoleRoute,
    Session,
    clear_session,
    new_login_csrf,
    render,
    set_login_csrf,
    set_session,
    signed_in,
)

router = APIRouter(route_class=ConsoleRoute)
STATIC = (Path(__file__).resolve().parent / "static").resolve()


def _next(target: str | None) -> str:
    """Only a console path of this site (no open redirect)."""
    if target and target.startswith(PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PATH + "/"


def _login_page(request: Request, error: str | None = None, status_code: int = 200, username: str = "") -> Response:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        {
            "login_csrf": token,
            "error": error,
            "expired": request.query_params.get("expired") == "1",
            "next": _next(request.query_params.get("next")),
            "username": username,
        },
        status_code=status_code,
    )
    set_login_csrf(response, request, token)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    username: str = Form("", max_length=200),
    password: str = Form("", max_length=1000),
    csrf_token: str = Form("", alias=CSRF_FIELD, max_length=200),
    next: str = Form("", max_length=500),
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or not hmac.compare_digest(cookie, csrf_token):
        request.state.audit_reason = "console: sign-in without its CSRF token"
        return _login_page(request, "login.csrf", 403, username)
    answer = await Backend(request).post("/auth/token", data={"username": username, "password": password})
    if answer.status_code == 429:
        return _login_page(request, "login.throttled", 429, username)
    if answer.status_code != 200:
        return _login_page(request, "login.failed", 401, username)
    body = answer.json()
    request.state.audit_actor = username[:200]
    request.state.audit_action = "console.login"
    response = RedirectResponse(_next(next), status_code=303)
    set_session(response, request, body["access_token"], int(body["expires_in"]), since=int(time.time()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PATH)
    return response


@router.post("/logout")
def logout(request: Request, session: Session = Depends(signed_in)) -> Response:
    request.state.audit_action = "console.logout"
    response = RedirectResponse(PATH + "/login", status_code=303)
    clear_session(response, request)
    return response


@router.get("/static/{path:path}")
def static(path: str) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPException(404, "no such file")
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.name in ("LICENSE", "NOTICE"):
        kind = "text/plain"
    return FileResponse(target, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})
