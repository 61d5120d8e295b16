"""Password hashing (argon2id) and the lock-out policy for repeated failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_LENGTH = 8

_hasher = PasswordHasher()
# Verifying against this for unknown users keeps the response time the same as for known ones.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_strength(password: str) -> str | None:
    """A reason the password is refused, or None. The password itself is never echoed."""
    if len(password) < MIN_LENGTH:
        return f"password must have at least {MIN_LENGTH} characters"
    if password.isalpha() or password.isdigit():
        return "password must mix letters with digits or symbols"
    return None


def now() -> datetime:
    return datetime.now(UTC)


def lock_after(failures: int) -> datetime | None:
    """When `failures` consecutive failures reach the limit, the time the lock ends."""
    return now() + LOCK_FOR if failures >= MAX_FAILURES else None
