"""Syslog message parsing: RFC 5424 (structured) and RFC 3164 (BSD), the two forms seen in the field.

`parse(text)` returns the fields of the `SYSLOG_COLUMNS` layout or raises ValueError with the
reason (the collector quarantines such messages; it never drops them).
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy.types as sa

from schemas.sqltypes import ColumnSpec

SYSLOG_COLUMNS = (
    ColumnSpec("facility", sa.Integer()),
    ColumnSpec("severity", sa.Integer()),
    ColumnSpec("timestamp", sa.String()),
    ColumnSpec("hostname", sa.String()),
    ColumnSpec("app_name", sa.String()),
    ColumnSpec("procid", sa.String()),
    ColumnSpec("msgid", sa.String()),
    ColumnSpec("structured_data", sa.String()),
    ColumnSpec("message", sa.String()),
    ColumnSpec("format", sa.String()),
    ColumnSpec("peer", sa.String()),
    ColumnSpec("received_at", sa.DateTime()),
)
_PRI = re.compile(r"<(\d{1,3})>")
_5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
_3164 = re.compile(r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ")
_TAG = re.compile(r"([^\s:\[]{1,48})(?:\[([^\]]*)\])?: ?")


def _nil(v: str) -> str | None:
    return None if v == "-" else v


def _structured_data(rest: str) -> tuple[str | None, str]:
    """Splits `[id k="v"]...[...] msg`; brackets inside quoted values may be escaped with a backslash."""
    if rest.startswith("-"):
        return None, rest[2:] if rest.startswith("- ") else rest[1:]
    if not rest.startswith("["):
        raise ValueError("RFC 5424: structured data must be '-' or start with '['")
    i, depth, quoted = 0, 0, False
    while i < len(rest):
        ch = rest[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "[" and not quoted:
            depth += 1
        elif ch == "]" and not quoted:
            depth -= 1
            if depth == 0 and (i + 1 == len(rest) or rest[i + 1] != "["):
                return rest[: i + 1], rest[i + 2 :]
        i += 1
    raise ValueError("RFC 5424: unterminated structured data")


def parse(text: str) -> dict:
    m = _PRI.match(text)
    if not m or int(m.group(1)) > 191:
        raise ValueError("not syslog: no <PRI> (0-191) at the start")
    pri, rest = int(m.group(1)), text[m.end() :]
    out = {"facility": pri >> 3, "severity": pri & 7}
    if h := _5424.match(rest):
        sd, msg = _structured_data(rest[h.end() :])
        if msg.startswith("\ufeff"):
            msg = msg[1:]  # RFC 5424 UTF-8 BOM marker
        ts, host, app, proc, msgid = (_nil(g) for g in h.groups())
        if ts is not None:
            datetime.fromisoformat(ts.replace("Z", "+00:00"))  # ValueError names a bad timestamp
        out.update(
            timestamp=ts,
            hostname=host,
            app_name=app,
            procid=proc,
            msgid=msgid,
            structured_data=sd,
            message=msg,
            format="rfc5424",
        )
        return out
    if h := _3164.match(rest):
        msg = rest[h.end() :]
        app = proc = None
        if t := _TAG.match(msg):
            app, proc, msg = t.group(1), t.group(2), msg[t.end() :]
        out.update(
            timestamp=h.group(1),
            hostname=h.group(2),
            app_name=app,
            procid=proc,
            msgid=None,
            structured_data=None,
            message=msg,
            format="rfc3164",
        )
        return out
    # RFC 3164 4.3.3: a relay must accept a PRI with no valid header; the whole rest is the message.
    out.update(
        timestamp=None,
        hostname=None,
        app_name=None,
        procid=None,
        msgid=None,
        structured_data=None,
        message=rest,
        format="rfc3164-noheader",
    )
    return out
