"""Reading the quality metrics back (from the daily rollup: a month is a few thousand rows there,
whatever the raw table holds). Every read is per tenant scope, optionally one system or a set of
datasets (a department's), over [start, end) in whole days.

    where = Filter(scope, system=None, datasets=None)
    totals(client, where, start, end) -> {"evaluated", "failed", "ratio", "score"}
    by_dimension / by_rule / top_datasets / causes / daily(client, where, start, end) -> [dict]
    events_per_day(client, scopes, start, end, datasets=None) -> {(scope, dataset): [(day, events)]}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from quality_stream.metrics.schema import DAILY

DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness")


@dataclass(frozen=True)
class Filter:
    scope: str
    system: str | None = None
    datasets: tuple[str, ...] | None = None

    def sql(self, start: dt.date, end: dt.date) -> tuple[str, dict]:
        clauses = ["scope = %(scope)s", "day >= %(start)s", "day < %(end)s"]
        params: dict = {"scope": self.scope, "start": start, "end": end}
        if self.system is not None:
            clauses.append("system = %(system)s")
            params["system"] = self.system
        if self.datasets is not None:
            clauses.append("dataset IN %(datasets)s")
            params["datasets"] = tuple(self.datasets) or ("",)
        return " AND ".join(clauses), params


def score(evaluated: int, failed: int) -> float | None:
    """Share of judged values that passed, 0..100 (None when nothing was judged)."""
    return None if not evaluated else round(100.0 * (1 - failed / evaluated), 2)


def _rows(client, where: Filter, start, end, select: str, group: str, order: str, limit: int = 1000):
    cond, params = where.sql(start, end)
    sql = (
        f"SELECT {select}, sum(evaluated) AS ev, sum(failed) AS f FROM {DAILY} WHERE {cond} "
        f"GROUP BY {group} ORDER BY {order} LIMIT {int(limit)}"
    )
    return client.execute(sql, params)


def _item(keys: dict, ev: int, f: int) -> dict:
    return {
        **keys,
        "evaluated": int(ev),
        "failed": int(f),
        "ratio": round(f / ev, 6) if ev else 0.0,
        "score": score(ev, f),
    }


def totals(client, where: Filter, start, end) -> dict:
    cond, params = where.sql(start, end)
    ev, f = client.execute(f"SELECT sum(evaluated), sum(failed) FROM {DAILY} WHERE {cond}", params)[0]
    return _item({}, ev or 0, f or 0)


def by_dimension(client, where: Filter, start, end) -> list[dict]:
    rows = _rows(client, where, start, end, "dimension", "dimension", "dimension")
    return [_item({"dimension": d}, ev, f) for d, ev, f in rows]


def by_rule(client, where: Filter, start, end, limit: int = 50) -> list[dict]:
    rows = _rows(client, where, start, end, "rule, dimension", "rule, dimension", "f DESC, rule", limit)
    return [_item({"rule": r, "dimension": d}, ev, f) for r, d, ev, f in rows]


def top_datasets(client, where: Filter, start, end, limit: int = 10) -> list[dict]:
    rows = _rows(client, where, start, end, "dataset, system", "dataset, system", "f DESC, dataset", limit)
    return [_item({"dataset": ds, "system": s}, ev, f) for ds, s, ev, f in rows]


def causes(client, where: Filter, start, end, limit: int = 20) -> list[dict]:
    """Failures grouped by the rule message (the why), most frequent first."""
    rows = _rows(client, where, start, end, "message", "message", "f DESC, message", limit)
    return [_item({"message": m}, ev, f) for m, ev, f in rows if f]


def daily(client, where: Filter, start, end, per_dimension: bool = False) -> list[dict]:
    if per_dimension:
        rows = _rows(client, where, start, end, "day, dimension", "day, dimension", "day, dimension", 100_000)
        return [_item({"day": d.isoformat(), "dimension": dim}, ev, f) for d, dim, ev, f in rows]
    rows = _rows(client, where, start, end, "day", "day", "day", 100_000)
    return [_item({"day": d.isoformat()}, ev, f) for d, ev, f in rows]


def grouped(client, where: Filter, start, end, column: str) -> list[dict]:
    """Score per `column` (dataset | system) and dimension."""
    assert column in ("dataset", "system")
    rows = _rows(
        client, where, start, end, f"{column}, dimension", f"{column}, dimension", f"{column}, dimension", 100_000
    )
    return [_item({column: k, "dimension": d}, ev, f) for k, d, ev, f in rows]


def events_per_day(
    client, scopes: set[str] | None, start, end, datasets: tuple[str, ...] | None = None
) -> dict[tuple[str, str], list[tuple[dt.date, int]]]:
    """Events each dataset (raw topic) carried per day, for the catalogue's asset statistics:
    {(scope, dataset): [(day, events)]}, days ascending. Every rule of a pipeline judges every
    event, so a day's events are the most any one rule judged; two pipelines reading the same
    topic count it once (the larger of the two)."""
    cond, params = "day >= %(start)s AND day < %(end)s", {"start": start, "end": end}
    if scopes is not None:
        cond += " AND scope IN %(scopes)s"
        params["scopes"] = tuple(sorted(scopes)) or ("\x00",)
    if datasets is not None:
        cond += " AND dataset IN %(datasets)s"
        params["datasets"] = tuple(datasets) or ("",)
    rows = client.execute(
        f"SELECT scope, dataset, day, max(ev) FROM (SELECT scope, dataset, pipeline, rule, day, "
        f"sum(evaluated) AS ev FROM {DAILY} WHERE {cond} GROUP BY scope, dataset, pipeline, rule, day) "
        "GROUP BY scope, dataset, day ORDER BY scope, dataset, day",
        params,
    )
    out: dict[tuple[str, str], list[tuple[dt.date, int]]] = {}
    for scope, dataset, day, events in rows:
        out.setdefault((scope, dataset), []).append((day, int(events)))
    return out
