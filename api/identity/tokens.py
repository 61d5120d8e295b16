"""JWT access tokens for people: HS256, short expiry, signing key kept 0600 in the state dir.

A token names its user (`sub`), the account (`uid`, random per created account) and the account's
`gen`eration at issue; the API refuses it once either no longer matches the user row, so a
password change or reset, disabling, a change of roles/groups/tenants/grants, or deleting the user
(even if the name is created again) ends every token issued before."""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

import jwt

from api.identity.passwords import now

ALGORITHM = "HS256"
EXPIRES = timedelta(minutes=15)


def signing_key(state_dir: Path) -> str:
    path = state_dir / "jwt_signing_key"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def issue(key: str, username: str, tenant: str | None, user_id: str, generation: int) -> tuple[str, int]:
    issued = now()
    claims = {
        "sub": username,
        "uid": user_id,
        "gen": generation,
        "tenant": tenant,
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + EXPIRES,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM), int(EXPIRES.total_seconds())


def claims_of(key: str, token: str) -> dict | None:
    """The claims of a valid, unexpired access token, else None (reason never disclosed)."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "uid", "gen"]})
    except jwt.PyJWTError:
        return None
    return claims if claims.get("typ") == "access" else None


def subject(key: str, token: str) -> str | None:
    """The username of a valid, unexpired access token, else None."""
    claims = claims_of(key, token)
    return claims.get("sub") if claims else None
