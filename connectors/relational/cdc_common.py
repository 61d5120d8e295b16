"""Pieces both log-based CDC tasks share: value coercion to the reflected column types, reconnect backoff."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from schemas.sqltypes import ColumnSpec, base_avro_type

log = logging.getLogger(__name__)


def _to_time(value: timedelta) -> dtime:
    # MySQL TIME comes back as a timedelta (it may exceed 24h; Avro time-micros cannot)
    total = int(value.total_seconds() * 1_000_000) % (24 * 3600 * 1_000_000)
    return (datetime.min + timedelta(microseconds=total)).time()


def _to_string(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(map(str, value)))  # MySQL SET
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def converter(column: ColumnSpec, table: str, unknown_types: str) -> Callable[[Any], Any] | None:
    """A function bringing a driver/binlog value to what the column's Avro type accepts; None = as is.

    One specialised closure per column: this runs for every value of every change (hot path).
    """
    avro = base_avro_type(column, table, unknown_types)
    kind = avro.get("logicalType") if isinstance(avro, dict) else avro
    if kind == "string":
        return lambda v: v if v is None or type(v) is str else _to_string(v)
    if kind == "time-micros":  # MySQL TIME arrives as a timedelta
        return lambda v: _to_time(v) if isinstance(v, timedelta) else v
    if kind == "boolean":
        return lambda v: v if v is None or type(v) is bool else bool(v)
    if kind in ("int", "long"):
        return lambda v: v if v is None or type(v) is int else int(v)
    if kind == "double":
        return lambda v: v if v is None or type(v) is float else float(v)
    if kind == "decimal":
        return lambda v: v if v is None or isinstance(v, Decimal) else Decimal(str(v))
    if kind == "date":
        return lambda v: v.date() if isinstance(v, datetime) else v
    if kind == "bytes":
        return lambda v: v if v is None or type(v) is bytes else (v.encode() if isinstance(v, str) else bytes(v))
    return None


def row_converter(columns: tuple[ColumnSpec, ...], table: str, unknown_types: str):
    convs = [(c.name, converter(c, table, unknown_types)) for c in columns]

    def convert_row(row: dict[str, Any]) -> dict[str, Any]:
        # columns the table gained after capture started are left out: the registered schema has none
        out = {}
        for name, conv in convs:
            v = row.get(name)
            out[name] = v if conv is None or v is None else conv(v)
        return out

    return convert_row


class Backoff:
    """Reconnect pacing after the source server went away: 0.5 s doubling to `cap`."""

    def __init__(self, cap: float = 10.0):
        self.cap, self.delay, self.until = cap, 0.0, 0.0

    def failed(self, exc: Exception, what: str) -> None:
        self.delay = min(self.cap, max(0.5, self.delay * 2))
        self.until = time.monotonic() + self.delay
        log.warning("%s failed (%s); retrying in %.1fs", what, exc, self.delay)

    def ready(self) -> bool:
        return time.monotonic() >= self.until

    def ok(self) -> None:
        self.delay = 0.0


def ts_now_ms() -> int:
    return int(time.time() * 1000)


def jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
