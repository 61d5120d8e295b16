"""Post/Redirect/Get for the console's forms (issue 17): a form that changed something answers 303
to the page that shows the outcome, so reloading that page repeats nothing.

The outcome (how many records were replayed, the decision with the app key shown once, the
created API key) travels to that page in a cookie read once:

    return redirect_with(request, session, f"{PATH}/catalog/access-requests", decision=answer.json())
    ...
    decision = take(request, session).get("decision")   # {} when there is none for this page

The cookie (`huiliu_flash`) is encrypted and authenticated (Fernet, a key derived from the JWT
signing key, so the key shown once is not readable from the browser's cookie store), lives
`TTL_S` seconds, is HttpOnly, SameSite=Strict, path /console, and names the person and the page it
is for: another person's or another page's outcome is not shown. The page that takes it deletes
it (ConsoleRoute, session.py): a reload of that page shows the page without the outcome.
An outcome too large for a cookie is shown on the answer to the POST itself (`None` back).
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request
from fastapi.responses import RedirectResponse

from api.console.session import FLASH_COOKIE, PATH, secure

TTL_S = 120
MAX_COOKIE = 3800  # browsers keep 4,096 bytes a cookie, name and attributes included


def _fernet(request: Request) -> Fernet:
    secret = hashlib.sha256(b"huiliu console flash:" + request.app.state.jwt_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(secret))


def redirect_with(request: Request, session, url: str, **outcome) -> RedirectResponse | None:
    """303 to `url` (a /console path, with its query), the outcome kept for that page; None when
    the outcome does not fit a cookie (the caller renders it as the answer instead)."""
    response = RedirectResponse(url, status_code=303)
    if outcome:
        payload = {"who": session.principal.name, "at": urlsplit(url).path, "outcome": outcome}
        token = _fernet(request).encrypt(json.dumps(payload).encode()).decode()
        if len(token) > MAX_COOKIE:
            return None
        response.set_cookie(
            FLASH_COOKIE, token, max_age=TTL_S, path=PATH, httponly=True, samesite="strict", secure=secure(request)
        )
    return response


def take(request: Request, session) -> dict:
    """The outcome a redirect left for this page and this person ({} when none); the response
    deletes the cookie (session.ConsoleRoute)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    try:
        payload = json.loads(_fernet(request).decrypt(raw.encode(), ttl=TTL_S))
    except (InvalidToken, ValueError):
        request.state.console_flash_taken = True  # expired or not ours: forget it
        return {}
    if payload.get("at") != request.url.path or payload.get("who") != session.principal.name:
        return {}  # for another page (or person): left for it, it expires by itself
    request.state.console_flash_taken = True
    return payload.get("outcome") or {}
