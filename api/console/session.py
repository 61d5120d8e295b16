"""Console sessions: the API's JWT in a cookie, a CSRF token bound to it, and page rendering.

- Sign-in posts the form to `POST /auth/token` (in-process: same back-off, audit, 401/429); the
  access token goes into `huiliu_session`: HttpOnly, SameSite=Strict, path /console, Secure when
  the request came over https, lifetime = the token's. Nothing else is stored on the server.
- Renewal: a page request made when the token has less than 10 minutes left gets a fresh token
  (same account, uid and generation, so a password or role change still ends the session), up to
  12 hours after sign-in (`huiliu_since`: the sign-in time, signed); then the person signs in again.
- CSRF: every state-changing console request carries `csrf_token` (form field) or `X-CSRF-Token`
  (htmx header) equal to HMAC(jwt signing key, user and sign-in time): a per-session token checked
  server side, unchanged by renewals.
  The sign-in form has its own double-submit token (cookie `huiliu_login_csrf` = form field).
- `signed_in` (a dependency of every page): the cookie's token resolved exactly as the API resolves
  a Bearer token (api.security.current_principal: expiry, disabled, password/role changes), so the
  page's audit entry names the person. No valid session: a redirect (303) to the sign-in page,
  for htmx requests 401 with `HX-Redirect`; nothing is done.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from api.console.backend import page_language
from api.console.i18n import COOKIE as LANG_COOKIE
from api.console.i18n import LANGUAGES, environment, language_of
from api.identity import tokens
from api.security import Principal, current_principal

SESSION_COOKIE = "huiliu_session"
SINCE_COOKIE = "huiliu_since"
FLASH_COOKIE = "huiliu_flash"  # a POST's outcome for the page it redirects to (api.console.flash)
MAX_SESSION_S = 12 * 3600
RENEW_BELOW_S = 600
LOGIN_CSRF_COOKIE = "huiliu_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PATH = "/console"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Scripts from this server only (the vendored libraries and console.js); no inline script, no eval.
# Inline styles are allowed: the chart and graph libraries size their canvases with style attributes.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Session:
    token: str
    principal: Principal
    csrf: str

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)


def _sign(request: Request, text: str) -> str:
    return hmac.new(request.app.state.jwt_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def csrf_for(request: Request, subject: str, since: int) -> str:
    return _sign(request, f"csrf:{subject}:{since}")


def session_start(request: Request, subject: str) -> int | None:
    """The sign-in time of this browser's session for `subject`, when its signature holds."""
    value = request.cookies.get(SINCE_COOKIE, "")
    started, _, signature = value.partition(".")
    if not started.isdigit() or not hmac.compare_digest(signature, _sign(request, f"since:{subject}:{started}")):
        return None
    return int(started)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie(response: Response, request: Request, name: str, value: str, lifetime: int) -> None:
    response.set_cookie(
        name, value, max_age=lifetime, path=PATH, httponly=True, samesite="strict", secure=secure(request)
    )


def set_session(response: Response, request: Request, token: str, lifetime: int, since: int | None = None) -> None:
    """The token's cookie; at sign-in (`since`) also the signed sign-in time."""
    _cookie(response, request, SESSION_COOKIE, token, lifetime)
    if since is not None:
        subject = tokens.subject(request.app.state.jwt_key, token) or ""
        signed = f"{since}.{_sign(request, f'since:{subject}:{since}')}"
        _cookie(response, request, SINCE_COOKIE, signed, MAX_SESSION_S)


def clear_session(response: Response, request: Request) -> None:
    for name in (SESSION_COOKIE, SINCE_COOKIE):
        response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=secure(request))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, path=PATH, httponly=True, samesite="strict", secure=secure(request), max_age=3600
    )


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def signed_in(request: Request) -> Session:
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    # the page's audit entry; the API calls it makes are audited under their own actions
    request.state.audit_action = (
        f"console {request.method} {template if template.startswith(PATH) else PATH + template}"
    )
    page_language.set(language_of(request))  # the API's refusals in the page's language (backend.detail_of)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise not_signed_in(request, expired=False)
    try:
        principal = await run_in_threadpool(current_principal, request, token)
    except HTTPException:
        raise not_signed_in(request, expired=True)
    claims = tokens.claims_of(request.app.state.jwt_key, token) or {}
    since, now = session_start(request, principal.name), time.time()
    if since is None or now - since > MAX_SESSION_S:
        raise not_signed_in(request, expired=True)
    if claims.get("exp", 0) - now < RENEW_BELOW_S:
        token, lifetime = tokens.issue(
            request.app.state.jwt_key, claims["sub"], claims.get("tenant"), claims["uid"], claims["gen"]
        )
        request.state.console_renewed = (token, lifetime)
    session = Session(token, principal, csrf_for(request, principal.name, since))
    if request.method not in SAFE_METHODS:
        sent = await _sent_csrf(request)
        if not sent or not hmac.compare_digest(sent, session.csrf):
            request.state.audit_reason = "console: missing or wrong CSRF token"
            raise HTTPException(403, "missing or wrong CSRF token")
    return session


def not_signed_in(request: Request, expired: bool) -> HTTPException:
    """Back to the sign-in page (then to this page): 303 for a page, 401 + HX-Redirect for htmx."""
    back = request.url.path
    if request.headers.get("HX-Request"):  # a poll or a button: back to the page it came from
        back = urlsplit(request.headers.get("HX-Current-URL", "")).path or PATH + "/"
    target = f"{PATH}/login?next={quote(back)}" + ("&expired=1" if expired else "")
    headers = {"Location": target}
    if expired:  # the browser forgets the dead token
        flags = "; Secure" if secure(request) else ""
        headers["Set-Cookie"] = f"{SESSION_COOKIE}=; Max-Age=0; Path={PATH}; HttpOnly; SameSite=Strict{flags}"
    if request.headers.get("HX-Request"):
        return HTTPException(401, "not signed in", headers={**headers, "HX-Redirect": target})
    return HTTPException(303, "not signed in", headers=headers)


def render(
    request: Request,
    template: str,
    context: dict | None = None,
    status_code: int = 200,
    session: Session | None = None,
) -> HTMLResponse:
    lang = language_of(request)
    zone = request.app.state.settings.console_timezone
    env = environment(lang)
    page = env.get_template(template).render(
        request=request,
        lang=lang,
        languages=list(LANGUAGES),
        session=session,
        csrf=session.csrf if session else "",
        zone=zone,
        path=request.url.path,
        htmx_config=json.dumps({"includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False}),
        **(context or {}),
    )
    response = HTMLResponse(page, status_code=status_code, headers={"Content-Security-Policy": CSP})
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, path=PATH, samesite="lax", max_age=365 * 86400, secure=secure(request))
    return response


class ConsoleRoute(APIRoute):
    """Console routes: a token renewed while serving the request goes back in the cookie; an
    outcome a page took (flash.take) is deleted from the browser."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await handler(request)
            renewed = getattr(request.state, "console_renewed", None)
            if renewed is not None:
                set_session(response, request, *renewed)
            if getattr(request.state, "console_flash_taken", False):
                response.delete_cookie(
                    FLASH_COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure(request)
                )
            return response

        return route
