"""Salted row keys: `<salt>|<pk1>|<pk2>...`.

The 2-hex-char salt spreads monotonically increasing keys (ids, timestamps) over
`salt_buckets` key ranges, i.e. over regions once the table is pre-split, while staying
computable from the key alone so point lookups remain a single `get`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .codec import encode_text

SEP = "|"
_NULL = "\\N"  # unambiguous: a literal backslash in a value is escaped to "\\"


def _escape(value: Any) -> str:
    # Escape the separator so ("a|b",) and ("a", "b") cannot produce the same key.
    if value is None:
        return _NULL
    return encode_text(value).replace("\\", "\\\\").replace(SEP, "\\" + SEP)


def key_body(key: dict[str, Any]) -> str:
    """Primary key values joined in key order (the dict order of SinkRecord.key)."""
    return SEP.join(_escape(v) for v in key.values())


def salt(body: str, buckets: int) -> str:
    return f"{hashlib.md5(body.encode('utf-8')).digest()[0] % buckets:02x}"


def row_key(key: dict[str, Any], buckets: int) -> bytes:
    body = key_body(key)
    return f"{salt(body, buckets)}{SEP}{body}".encode()
