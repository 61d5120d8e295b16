"""API-key authentication: every route needs `X-API-Key` (or `Authorization: Bearer <key>`).

The key comes from HUILIU_API_KEY, or is generated once into `<state_dir>/api_key` (mode 0600)
so a fresh install is never open. Keys are compared in constant time and never logged.
"""
from __future__ import annotations

import hmac
import os
import secrets

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from deploy.settings import Settings

_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


def api_key_for(settings: Settings) -> str:
    if settings.api_key:
        return settings.api_key.get_secret_value()
    path = settings.state_dir / "api_key"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def require_api_key(request: Request, header: str | None = Depends(_header),
                    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    given = header or (bearer.credentials if bearer else None)
    expected: str = request.app.state.api_key
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return "operator"
