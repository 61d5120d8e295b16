"""Cell value encoding: every value is stored as a UTF-8 string, readable from any HBase client."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any


def encode_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Raw bytes are not valid UTF-8 in general; base64 keeps the "cells are text" rule.
        return base64.b64encode(bytes(value)).decode("ascii")
    # dicts, lists (json/array columns, source positions): canonical JSON.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def encode_cell(value: Any) -> bytes:
    return encode_text(value).encode("utf-8")
