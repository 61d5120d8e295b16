"""Credentials: where they are read from, and the bootstrap operator key.

A caller sends one credential, as `X-API-Key: <key>`, `Authorization: Bearer <credential>` or
HTTP Basic (what Kafka Connect clients speak): `<user>:<password>` signs a user in on every request
(the same back-off and audit as `POST /auth/token`, api.security), `<anything>:<key>` uses the
operator key or an API key given as the password. It is one of: the operator key (superuser, for bootstrap and automation on the host), an API key
(`hlk_...`, created by an admin), or a JWT access token from `POST /auth/token`.
The operator key comes from HUILIU_API_KEY, or is generated once into `<state_dir>/api_key`
(mode 0600) so a fresh install is never open. Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer

from deploy.settings import Settings

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="operator key or an API key (hlk_...)")
_bearer = OAuth2PasswordBearer(
    tokenUrl="/auth/token", auto_error=False, description="JWT from /auth/token, or any key as a bearer credential"
)
_basic = HTTPBasic(
    auto_error=False, description="a user's name and password, or any name with an API key as the password"
)


@dataclass(frozen=True)
class BasicLogin:
    """HTTP Basic with a user's name and password: checked like a sign-in (api.security)."""

    username: str
    password: str

    def __repr__(self) -> str:  # never the password in a trace
        return f"BasicLogin({self.username!r})"


def api_key_for(settings: Settings) -> str:
    if settings.api_key:
        return settings.api_key.get_secret_value()
    path = settings.state_dir / "api_key"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created concurrently by another process
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def unauthorized(message: str = "missing or invalid credentials") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def presented_credential(
    request: Request,
    header: str | None = Depends(_header),
    bearer: str | None = Depends(_bearer),
    basic: HTTPBasicCredentials | None = Depends(_basic),
) -> str | BasicLogin:
    """The credential the caller sent, or 401. Basic with a key as the password is that key."""
    given = header or bearer
    if not given and basic is not None:
        if basic.password.startswith("hlk_") or is_operator_key(request, basic.password):
            return basic.password
        return BasicLogin(basic.username, basic.password)
    if not given:
        raise unauthorized()
    return given


def is_operator_key(request: Request, given: str | BasicLogin) -> bool:
    if not isinstance(given, str):
        return False
    expected: str = request.app.state.api_key
    return hmac.compare_digest(given.encode(), expected.encode())


def require_api_key(request: Request, given: str | BasicLogin = Depends(presented_credential)) -> str:
    """Operator key only (kept for callers written before users existed)."""
    if not is_operator_key(request, given):
        raise unauthorized("missing or invalid API key")
    return "operator"
