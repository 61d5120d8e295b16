"""Secrets inside pipeline documents (passwords in connection URLs, `password`/`secret` fields)
are replaced by `***` in every API response, and put back when a client saves the redacted text
unchanged, so a round trip through a console never loses or reveals them."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential)", re.I)


def _redact_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc or "@" not in parts.netloc or parts.password is None:
        return value
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def redact(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return MASK
        return _redact_url(value) if "://" in value else value
    return value


def restore(new: Any, old: Any, key: str = "") -> Any:
    """`new` with every still-masked value taken from `old` at the same place."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: restore(v, old[k], str(k)) if k in old else v for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [restore(v, old[i], key) if i < len(old) else v for i, v in enumerate(new)]
    if isinstance(new, str) and MASK in new and isinstance(old, str) and old != new and redact(old, key) == new:
        return old
    return new
