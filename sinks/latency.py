"""Sink write latency as a histogram kept in the stage counters, the channel /metrics reads.

The control database holds integer counters per (pipeline, stage, metric), so the histogram of
one sink and store is stage `sink_latency` with one counter per bucket (`<store>|le=<bound>`,
not cumulative: a batch changes one row) and the sum in microseconds (`<store>|sum_us`).
`api/metrics.py` turns them back into a Prometheus histogram with `histograms()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

STAGE = "sink_latency"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
INF = "+Inf"


def store_of(task: Any) -> str:
    """The store a sink task writes to: its package under sinks/ (clickhouse, hdfs, hbase), else its class."""
    parts = type(task).__module__.split(".")
    return parts[1] if parts[0] == "sinks" and len(parts) > 2 else type(task).__name__


def observe(counters, store: str, seconds: float) -> None:
    """Count one write of `seconds` (counters: a StageCounters or None)."""
    if counters is None:
        return
    le = next((str(b) for b in BUCKETS if seconds <= b), INF)
    counters.add(STAGE, {f"{store}|le={le}": 1, f"{store}|sum_us": round(seconds * 1_000_000)})


def histograms(rows: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], dict]:
    """(sink, metric, value) rows of stage sink_latency -> {(sink, store): {buckets: [(le, cumulative)], sum}}."""
    found: dict[tuple[str, str], dict] = {}
    for sink, metric, value in rows:
        store, _, part = metric.partition("|")
        h = found.setdefault((sink, store), {"counts": {}, "sum": 0.0})
        if part == "sum_us":
            h["sum"] = value / 1_000_000
        elif part.startswith("le="):
            h["counts"][part[3:]] = value
    for h in found.values():
        counts, total = h.pop("counts"), 0
        h["buckets"] = []
        for le in [str(b) for b in BUCKETS] + [INF]:
            total += counts.get(le, 0)
            h["buckets"].append((le, total))
    return found
