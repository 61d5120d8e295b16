"""Report periods in whole UTC days: a daily report is yesterday, weekly the last 7 days, monthly the
last 30 days, each ending at `end` (default: today 00:00 UTC, exclusive), compared with the period
just before it."""

from __future__ import annotations

import datetime as dt

DAYS = {"daily": 1, "weekly": 7, "monthly": 30}


def window(period: str, end: dt.date | None = None) -> tuple[dt.date, dt.date, dt.date]:
    if period not in DAYS:
        raise ValueError(f"period must be one of {sorted(DAYS)}")
    end = end or dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=DAYS[period])
    return start, end, start - dt.timedelta(days=DAYS[period])
