"""The runner's quality-metrics writer: counts per window in memory, rows to ClickHouse in batches.

    writer = MetricsWriter(clickhouse_url, scope, pipeline, dataset, rules)   # rules: the RuleSet
    writer.observe()    # after each batch: the counters' growth since the last call, O(rules)
    writer.close()      # flush everything (the runner's shutdown)

The runner's hot path only takes a dict difference; a daemon thread inserts the windows that
closed, every `flush_seconds`, in one INSERT. ClickHouse being down never stops the runner: rows
wait (at most `max_pending` of them, oldest dropped with a log line) and are tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from quality_stream.metrics.schema import COLUMNS, RAW, ensure_tables

log = logging.getLogger(__name__)


def system_of(topic: str) -> str:
    parts = topic.split(".")
    return parts[1] if len(parts) >= 4 else ""


class MetricsWriter:
    def __init__(
        self,
        clickhouse_url: str,
        scope: str,
        pipeline: str,
        dataset: str,
        rules,
        *,
        window_seconds: int = 60,
        flush_seconds: float = 5.0,
        max_pending: int = 100_000,
        clock=time.time,
    ):
        self.url = clickhouse_url
        self.scope, self.pipeline, self.dataset, self.system = scope or "", pipeline, dataset, system_of(dataset)
        self.rules = rules
        self.meta = {r.id: (r.dimension, _message(r)) for r in rules.rules}
        self.window_seconds = window_seconds
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.clock = clock
        self._last = {k: (0, 0) for k in self.meta}
        self._windows: dict[int, dict[str, list[int]]] = {}  # window start -> rule -> [evaluated, failed]
        self._pending: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client = None
        self._thread = threading.Thread(target=self._loop, name=f"quality-metrics-{pipeline}", daemon=True)
        self._thread.start()
        self.written = 0

    def observe(self) -> None:
        window = int(self.clock()) // self.window_seconds * self.window_seconds
        counters = self.rules.counters
        with self._lock:
            slot = self._windows.setdefault(window, {})
            for rid, c in counters.items():
                ev0, f0 = self._last.get(rid, (0, 0))
                ev, f = c["evaluated"], c["failed"]
                if ev < ev0 or f < f0:  # counters were reset
                    ev0 = f0 = 0
                if ev != ev0 or f != f0:
                    acc = slot.setdefault(rid, [0, 0])
                    acc[0] += ev - ev0
                    acc[1] += f - f0
                self._last[rid] = (ev, f)

    def _rows(self, closed_before: float | None) -> list[tuple]:
        rows = []
        with self._lock:
            for window in sorted(self._windows):
                if closed_before is not None and window + self.window_seconds > closed_before:
                    continue
                start = datetime.fromtimestamp(window, UTC).replace(tzinfo=None)
                for rid, (ev, f) in self._windows.pop(window).items():
                    dimension, message = self.meta.get(rid, ("validity", ""))
                    rows.append(
                        (start, self.scope, self.pipeline, self.system, self.dataset, rid, dimension, message, ev, f)
                    )
        return rows

    def flush(self, everything: bool = False) -> int:
        self._pending.extend(self._rows(None if everything else self.clock()))
        if len(self._pending) > self.max_pending:
            log.warning(
                "quality metrics: dropping %d old rows (ClickHouse unreachable)", len(self._pending) - self.max_pending
            )
            del self._pending[: len(self._pending) - self.max_pending]
        if not self._pending:
            return 0
        try:
            if self._client is None:
                from deploy.clickhouse import client_from_url

                self._client = client_from_url(self.url)
                ensure_tables(self._client)
            self._client.execute(f"INSERT INTO {RAW} ({', '.join(COLUMNS)}) VALUES", self._pending)
        except Exception as exc:  # never fatal to the runner: tried again on the next flush
            log.warning("quality metrics not written yet (%d rows): %s", len(self._pending), exc)
            self._client = None
            return 0
        n, self._pending = len(self._pending), []
        self.written += n
        return n

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.flush(everything=True)
        if self._client is not None:
            self._client.disconnect()
            self._client = None


def _message(rule) -> str:
    try:
        fields = rule.columns()
        return rule.message_for(fields[0] if fields else None)
    except Exception:  # a custom rule without a message: reports then group by the rule id
        return ""
