"""Password hashing (argon2id), the password policy, and the back-off after failed sign-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
# Back-off per (source address, account name): the first FREE_FAILURES failures cost nothing,
# then each one doubles the wait before that source may try that account again (2 s, 4 s, 8 s...,
# at most MAX_DELAY). Failures older than FORGET_AFTER are forgotten.
FREE_FAILURES = 5
MAX_DELAY = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)

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


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public breaches, as shipped (lower case) by zxcvbn."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_strength(password: str, username: str | None = None) -> str | None:
    """A reason the password is refused, or None. The password itself is never echoed."""
    if len(password) < MIN_LENGTH:
        return f"password must have at least {MIN_LENGTH} characters"
    if not password.strip():
        return "password must not be only whitespace"
    lowered = password.lower()
    if lowered in _common_passwords() or lowered.strip() in _common_passwords():
        return "password is in a list of common or breached passwords"
    if username and len(username) >= 3 and username.lower() in lowered:
        return "password must not contain the username"
    return None


def now() -> datetime:
    return datetime.now(UTC)


def backoff(failures: int) -> timedelta | None:
    """How long a source must wait after its `failures`-th consecutive failure on one account."""
    if failures < FREE_FAILURES:
        return None
    exponent = min(failures - FREE_FAILURES + 1, 20)
    return min(timedelta(seconds=2**exponent), MAX_DELAY)
