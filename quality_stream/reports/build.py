"""A report's figures: records checked, problems by dimension and rule, top problem tables, causes,
the daily trend, and the same totals for the previous period (the comparison).

Tickets opened/closed in the period come from the caller (`tickets`: {"opened", "closed"} or None
when the ticket store is not there), so this module reads ClickHouse only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from quality_stream.metrics import query
from quality_stream.reports.periods import window


def report_data(
    client,
    where: query.Filter,
    period: str,
    end: dt.date | None = None,
    title: str = "",
    tickets: dict | None = None,
) -> dict[str, Any]:
    start, end, previous = window(period, end)
    now = query.totals(client, where, start, end)
    before = query.totals(client, where, previous, start)
    change = None
    if now["score"] is not None and before["score"] is not None:
        change = round(now["score"] - before["score"], 2)
    return {
        "title": title,
        "period": period,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "previous_start": previous.isoformat(),
        "scope": where.scope,
        "system": where.system,
        "totals": now,
        "previous": before,
        "score_change": change,
        "by_dimension": query.by_dimension(client, where, start, end),
        "by_rule": query.by_rule(client, where, start, end, 20),
        "top_datasets": query.top_datasets(client, where, start, end, 10),
        "causes": query.causes(client, where, start, end, 10),
        "trend": query.daily(client, where, previous, end),
        "tickets": tickets,
    }
