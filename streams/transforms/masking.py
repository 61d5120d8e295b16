"""Masking functions for personal data, selectable per field and per consumer role.

Functions take and return str (None passes through). `MaskPolicy` maps
role -> field -> mask spec; a spec is a function name ("phone") or a dict
({"fn": "keep", "first": 6, "last": 4}).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

MASK_CHAR = "*"


def keep(value: str, first: int = 0, last: int = 0, char: str = MASK_CHAR) -> str:
    """Keep the first N and last M characters: keep('370102199001011234', 6, 4) -> '370102********1234'."""
    s = str(value)
    if first + last >= len(s):
        # Too short to keep both ends without revealing everything: mask all but the first.
        return s[:1] + char * (len(s) - 1) if len(s) > 1 else char
    return s[:first] + char * (len(s) - first - last) + (s[len(s) - last :] if last else "")


def id_number(value: str) -> str:
    return keep(value, 6, 4)


@lru_cache(maxsize=1)
def compound_surnames() -> frozenset[str]:
    text = resources.files("streams.transforms").joinpath("data/compound_surnames.csv").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return frozenset(lines[1:])  # skip header


def name(value: str) -> str:
    """张三 -> 张*, 张三丰 -> 张**, 欧阳娜娜 -> 欧阳**; the surname is kept, the given name hidden."""
    s = str(value).strip()
    if len(s) <= 1:
        return MASK_CHAR * len(s)
    n = 2 if len(s) >= 3 and s[:2] in compound_surnames() else 1
    return s[:n] + MASK_CHAR * (len(s) - n)


def phone(value: str) -> str:
    """13812345678 -> 138****5678 (landlines keep area code and last 4 digits likewise)."""
    s = str(value).strip()
    if s.startswith("+86"):
        return "+86" + phone(s[3:].lstrip(" -"))
    return keep(s, 3, 4)


def email(value: str) -> str:
    """zhangsan@example.com -> z***@example.com."""
    s = str(value).strip()
    local, at, domain = s.partition("@")
    if not at:
        return keep(s, 1, 0)
    return (local[:1] or "") + "***" + "@" + domain


def redact(value: str) -> str:
    return MASK_CHAR * len(str(value))


def hash_value(value: str, secret: str | bytes) -> str:
    """HMAC-SHA256 hex digest: stable pseudonym for joins, not reversible without the secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("hash masking needs a non-empty secret")
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()


def format_preserving(value: str, key: str | bytes) -> str:
    """Replace digits with digits and letters with letters (same case), deterministically.

    A keyed HMAC stream drives the substitution, so equal inputs give equal outputs
    (joins still work) and the shape survives format checks. It is a pseudonymisation,
    not reversible FPE (FF1/FF3); other characters (-, @, 汉字) are kept.
    """
    k = key.encode() if isinstance(key, str) else key
    if not k:
        raise ValueError("format-preserving masking needs a non-empty key")
    s = str(value)
    stream = b""
    counter = 0
    while len(stream) < len(s):
        stream += hmac.new(k, counter.to_bytes(4, "big") + s.encode("utf-8"), hashlib.sha256).digest()
        counter += 1
    out = []
    for ch, b in zip(s, stream):
        if ch in _DIGITS:
            out.append(_DIGITS[(int(ch) + b) % 10])
        elif ch in _LOWER:
            out.append(_LOWER[(_LOWER.index(ch) + b) % 26])
        elif ch in _UPPER:
            out.append(_UPPER[(_UPPER.index(ch) + b) % 26])
        else:
            out.append(ch)
    return "".join(out)


def _secret(spec: Mapping[str, Any], secrets: Mapping[str, str]) -> str:
    # Secrets come from the build env or an environment variable, never from the rule file itself
    # (an inline "secret" is accepted for tests and local use).
    if "secret_ref" in spec:
        ref = spec["secret_ref"]
        if ref in secrets:
            return secrets[ref]
        if ref in os.environ:
            return os.environ[ref]
        raise ValueError(f"secret {ref!r} not found in secrets or environment")
    if spec.get("secret"):
        return spec["secret"]
    raise ValueError("secret_ref (or secret) is required")


MASKERS: dict[str, Callable[..., str]] = {
    "keep": keep,
    "id_number": id_number,
    "name": name,
    "phone": phone,
    "email": email,
    "redact": redact,
    "hash": hash_value,
    "format_preserving": format_preserving,
}


def resolve(spec: str | Mapping[str, Any] | None, secrets: Mapping[str, str] | None = None) -> Callable[[Any], Any]:
    """Turn a mask spec into a value -> value function (None values pass through)."""
    if spec is None or spec == "clear":
        return lambda v: v
    if spec == "null":
        return lambda v: None
    spec = {"fn": spec} if isinstance(spec, str) else dict(spec)
    fn_name = spec.pop("fn", None)
    if fn_name not in MASKERS:
        raise ValueError(f"unknown mask function {fn_name!r}; known: {', '.join(sorted(MASKERS))}, clear, null")
    fn = MASKERS[fn_name]
    if fn_name == "hash":
        secret = _secret(spec, secrets or {})
        return lambda v: None if v is None else hash_value(v, secret)
    if fn_name == "format_preserving":
        secret = _secret(
            {"secret_ref": spec["key_ref"]} if "key_ref" in spec else {"secret": spec.get("key")}, secrets or {}
        )
        return lambda v: None if v is None else format_preserving(v, secret)
    if fn_name == "keep":
        first, last, char = int(spec.get("first", 0)), int(spec.get("last", 0)), spec.get("char", MASK_CHAR)
        return lambda v: None if v is None else keep(v, first, last, char)
    if spec:
        raise ValueError(f"mask {fn_name!r} takes no options, got {sorted(spec)}")
    return lambda v: None if v is None else fn(v)


def mask_series(s: pl.Series, fn: Callable[[Any], Any]) -> pl.Series:
    import polars as pl  # local: the API masks rows (mask_row) and should not load polars for it

    if s.dtype == pl.Null:
        return s
    return s.cast(pl.Utf8, strict=False).map_elements(fn, return_dtype=pl.Utf8, skip_nulls=True)


class MaskPolicy:
    """role -> field -> mask spec. Fields not listed for a role pass unchanged;
    unknown roles fall back to the "default" role, or are refused when there is none
    (refusing beats leaking clear data to an unconfigured consumer)."""

    def __init__(self, roles: Mapping[str, Mapping[str, Any]], secrets: Mapping[str, str] | None = None):
        self._roles = {
            role: {f: resolve(spec, secrets) for f, spec in fields.items()} for role, fields in roles.items()
        }

    def functions(self, role: str) -> dict[str, Callable[[Any], Any]]:
        if role in self._roles:
            return self._roles[role]
        if "default" in self._roles:
            return self._roles["default"]
        raise KeyError(f"no masking policy for role {role!r}")

    def mask_row(self, row: dict, role: str) -> dict:
        fns = self.functions(role)
        return {k: (fns[k](v) if k in fns and v is not None else v) for k, v in row.items()}

    def mask_rows(self, rows: list[dict], role: str) -> list[dict]:
        return [self.mask_row(r, role) for r in rows]

    def mask_frame(self, df: pl.DataFrame, role: str) -> pl.DataFrame:
        fns = self.functions(role)
        return df.with_columns([mask_series(df[c], fn).alias(c) for c, fn in fns.items() if c in df.columns])
