"""The call log of data services: every call, written to ClickHouse in batches, off the call's path.

    log = CallLog(clickhouse_url)            # one per API process (a daemon thread flushes)
    log.record(scope=..., application=..., service=..., version=..., status=..., latency_ms=...,
               rows=..., bytes=..., client_ip=..., key_id=..., reason=...)   # never blocks, never raises
    log.counters -> {"recorded", "written", "dropped_full", "dropped_failed"}
    stats(client, scope, service, period="hour", since=..., until=...) -> calls, error ratio, p50/p95/p99

`record` puts the row in a bounded queue (MAX_BUFFER rows); the flusher writes up to BATCH rows
every FLUSH_S seconds. When ClickHouse is down the batch is dropped after one failed write and
counted (`dropped_failed`), and when the queue is full new rows are dropped and counted
(`dropped_full`): the call itself is never slowed or failed by its logging. The counters are
exported in /metrics (`huiliu_service_calllog_dropped_total`).

The table (created by the flusher if missing; ClickHouse 18.16 and later):

    huiliu_service_calls (
        time DateTime,          -- the call's end, UTC
        date Date,              -- partition key (month)
        scope String,           -- the owning tenant ("" = none)
        service String, version UInt32,
        application String,     -- the application's name ("" when its key was unknown)
        key_id String,          -- the credential used (never its secret)
        status UInt16,          -- HTTP status answered
        latency_ms Float32,     -- from the request's arrival to the answer's body being ready
        rows UInt32, bytes UInt64,   -- rows and body bytes answered
        client_ip String,
        reason String           -- the refusal's reason (English), "" when served
    ) ENGINE = MergeTree() PARTITION BY toYYYYMM(date) ORDER BY (scope, service, time)

Retention: drop old monthly partitions (`ALTER TABLE ... DROP PARTITION 202601`); 18.16 has no TTL.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
TABLE = "huiliu_service_calls"
MAX_BUFFER = 50_000
BATCH = 5_000
FLUSH_S = 1.0
PERIODS = {"minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toDate"}
COLUMNS = (
    "time",
    "date",
    "scope",
    "service",
    "version",
    "application",
    "key_id",
    "status",
    "latency_ms",
    "rows",
    "bytes",
    "client_ip",
    "reason",
)
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    time DateTime, date Date, scope String, service String, version UInt32, application String,
    key_id String, status UInt16, latency_ms Float32, rows UInt32, bytes UInt64, client_ip String,
    reason String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(date) ORDER BY (scope, service, time)"""


class CallLog:
    def __init__(self, clickhouse_url: str, max_buffer: int = MAX_BUFFER, flush_s: float = FLUSH_S):
        self.url, self.flush_s = clickhouse_url, flush_s
        self.queue: queue.Queue = queue.Queue(maxsize=max_buffer)
        self.counters = {"recorded": 0, "written": 0, "dropped_full": 0, "dropped_failed": 0}
        self._lock = threading.Lock()
        self._client = None
        self._table_ready = False
        self._thread = threading.Thread(target=self._run, name="service-calllog", daemon=True)
        self._thread.start()

    def record(self, **call: Any) -> None:
        now = time.time()
        row = (
            datetime.fromtimestamp(now, UTC).replace(tzinfo=None),
            datetime.fromtimestamp(now, UTC).date(),
            call.get("scope") or "",
            call.get("service") or "",
            int(call.get("version") or 0),
            call.get("application") or "",
            call.get("key_id") or "",
            int(call.get("status") or 0),
            float(call.get("latency_ms") or 0.0),
            int(call.get("rows") or 0),
            int(call.get("bytes") or 0),
            call.get("client_ip") or "",
            (call.get("reason") or "")[:300],
        )
        try:
            self.queue.put_nowait(row)
            self._count("recorded")
        except queue.Full:
            self._count("dropped_full")

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]  # blocks until there is something to write
            deadline = time.monotonic() + self.flush_s
            while len(batch) < BATCH:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=left))
                except queue.Empty:
                    break
            self.flush(batch)

    def flush(self, batch: list[tuple]) -> None:
        try:
            client = self._connected()
            client.execute(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES", batch)
            self._count("written", len(batch))
        except Exception as exc:  # ClickHouse down or refusing: drop, count, go on
            self._count("dropped_failed", len(batch))
            log.warning("service call log: %d calls not written: %s", len(batch), str(exc)[:200])
            self._disconnect()

    def _connected(self):
        if self._client is None:
            from sinks.clickhouse import client_from_url

            self._client = client_from_url(self.url)
        if not self._table_ready:
            self._client.execute(DDL)
            self._table_ready = True
        return self._client

    def _disconnect(self) -> None:
        client, self._client, self._table_ready = self._client, None, False
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                pass


def stats(
    client, scope: str, service: str, period: str = "hour", since: float | None = None, until: float | None = None
) -> dict[str, Any]:
    """Calls, error ratio (5xx) and refusal ratio (4xx), latency quantiles per period, top applications."""
    until = time.time() if until is None else until
    since = until - 86400 if since is None else since
    args = {
        "scope": scope,
        "service": service,
        "since": datetime.fromtimestamp(since, UTC).replace(tzinfo=None),
        "until": datetime.fromtimestamp(until, UTC).replace(tzinfo=None),
    }
    where = "scope = %(scope)s AND service = %(service)s AND time >= %(since)s AND time <= %(until)s"
    client.execute(DDL)
    rows = client.execute(
        f"SELECT {PERIODS[period]}(time) AS p, count(), countIf(status >= 500), countIf(status >= 400 AND status < 500),"
        f" quantiles(0.5, 0.95, 0.99)(latency_ms), sum(rows), sum(bytes)"
        f" FROM {TABLE} WHERE {where} GROUP BY p ORDER BY p",
        args,
    )
    apps = client.execute(
        f"SELECT application, count() AS n, countIf(status >= 500), countIf(status >= 400 AND status < 500),"
        f" quantile(0.99)(latency_ms) FROM {TABLE} WHERE {where} GROUP BY application ORDER BY n DESC LIMIT 10",
        args,
    )
    total = client.execute(
        f"SELECT count(), countIf(status >= 500), countIf(status >= 400 AND status < 500),"
        f" quantiles(0.5, 0.95, 0.99)(latency_ms) FROM {TABLE} WHERE {where}",
        args,
    )[0]

    def ratio(part, whole):
        return round(part / whole, 4) if whole else 0.0

    def q(values):
        return {k: round(float(v), 2) for k, v in zip(("p50", "p95", "p99"), values, strict=True)}

    return {
        "service": service,
        "period": period,
        "since": since,
        "until": until,
        "calls": total[0],
        "error_ratio": ratio(total[1], total[0]),
        "refused_ratio": ratio(total[2], total[0]),
        "latency_ms": q(total[3]) if total[0] else {"p50": 0.0, "p95": 0.0, "p99": 0.0},
        "periods": [
            {
                "start": p.isoformat() if hasattr(p, "isoformat") else str(p),
                "calls": n,
                "error_ratio": ratio(errors, n),
                "refused_ratio": ratio(refused, n),
                "latency_ms": q(qs),
                "rows": int(rows_),
                "bytes": int(bytes_),
            }
            for p, n, errors, refused, qs, rows_, bytes_ in rows
        ],
        "top_applications": [
            {
                "application": a or "(unknown key)",
                "calls": n,
                "error_ratio": ratio(e, n),
                "refused_ratio": ratio(r, n),
                "p99_ms": round(float(p99), 2),
            }
            for a, n, e, r, p99 in apps
        ],
    }


BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class CallMetrics:
    """In-process call counts and a latency histogram per service, for /metrics (each API process
    exports its own since its start; Prometheus sums the processes it scrapes)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.calls: dict[tuple[str, str, str], int] = {}  # (service, version, status) -> calls
        self.latency: dict[str, list[float]] = {}  # service -> bucket counts + [sum]

    def observe(self, service: str, version: int, status: int, latency_ms: float) -> None:
        with self._lock:
            k = (service, str(version), str(status))
            self.calls[k] = self.calls.get(k, 0) + 1
            h = self.latency.setdefault(service, [0.0] * (len(BUCKETS_MS) + 2))
            for i, edge in enumerate(BUCKETS_MS):
                if latency_ms <= edge:
                    h[i] += 1
            h[-2] += 1  # +Inf
            h[-1] += latency_ms / 1000.0

    def snapshot(self) -> tuple[dict, dict]:
        with self._lock:
            return dict(self.calls), {k: list(v) for k, v in self.latency.items()}


METRICS = CallMetrics()
LOGS: dict[str, CallLog] = {}
_LOGS_LOCK = threading.Lock()


def call_log(clickhouse_url: str) -> CallLog:
    """The process's call log for a ClickHouse (started on first use)."""
    with _LOGS_LOCK:
        if clickhouse_url not in LOGS:
            LOGS[clickhouse_url] = CallLog(clickhouse_url)
        return LOGS[clickhouse_url]


def collect():
    """Prometheus metric families of the calls this process served and of its call logs."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    calls, latency = METRICS.snapshot()
    total = CounterMetricFamily(
        "huiliu_service_calls",
        "Data-service calls by service, version and status",
        labels=["service", "version", "status"],
    )
    for (service, version, status), n in sorted(calls.items()):
        total.add_metric([service, version, status], n)
    yield total
    hist = HistogramMetricFamily("huiliu_service_call_seconds", "Data-service call latency", labels=["service"])
    for service, h in sorted(latency.items()):
        buckets = [(str(edge / 1000.0), h[i]) for i, edge in enumerate(BUCKETS_MS)] + [("+Inf", h[-2])]
        hist.add_metric([service], buckets, h[-1])
    yield hist
    from streams.dataservices.answers import ANSWERS

    kept = CounterMetricFamily(
        "huiliu_service_cache_lookups",
        "Calls of services with a cache TTL, answered from the cache (hit) or ClickHouse (miss)",
        labels=["service", "outcome"],
    )
    for (service, outcome), n in sorted(dict(ANSWERS.counts).items()):
        kept.add_metric([service, outcome], n)
    yield kept
    dropped = CounterMetricFamily(
        "huiliu_service_calllog_dropped", "Call-log rows not written to ClickHouse", labels=["reason"]
    )
    written = CounterMetricFamily("huiliu_service_calllog_written", "Call-log rows written to ClickHouse")
    sums = {"full": 0, "failed": 0, "written": 0}
    for log_ in list(LOGS.values()):
        sums["full"] += log_.counters["dropped_full"]
        sums["failed"] += log_.counters["dropped_failed"]
        sums["written"] += log_.counters["written"]
    dropped.add_metric(["buffer_full"], sums["full"])
    dropped.add_metric(["clickhouse_failed"], sums["failed"])
    written.add_metric([], sums["written"])
    yield dropped
    yield written
