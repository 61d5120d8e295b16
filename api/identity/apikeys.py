"""API keys for systems: `hlk_<id>_<secret>`; only a SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (no dictionary to guess from) and keeps
per-request verification cheap; the whole key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "hlk_"


def new_key() -> tuple[str, str, str]:
    """(key_id, full key to show once, hash to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}{key_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX):
        return None
    rest = key[len(PREFIX) :]
    key_id, sep, secret = rest.partition("_")
    return (key_id, secret) if sep and key_id and secret else None


def matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, digest(secret))
