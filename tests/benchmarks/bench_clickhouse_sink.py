"""Sustained rows/s from a Kafka topic into ClickHouse through the real sink runtime.

    .venv/bin/python tests/benchmarks/bench_clickhouse_sink.py --rows 1000000

Uses the local stack described by HUILIU_* settings (started if needed). Publishes `rows`
change events (8 columns) to a fresh topic, then times SinkRunner (consume -> decode -> columnar
insert -> commit) until every row is in ClickHouse. Prints rows/s and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy.types as sa

from connectors.base import CapturedTable, ChangeEvent
from connectors.runtime import SourceRuntime
from deploy.settings import get_settings
from deploy.stack import Stack
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask, backend_for
from sinks.runtime import SinkRunner
from tests.benchmarks.profiling import profiled
from tests.sources import ListSourceTask


def events(table: CapturedTable, n: int):
    born = date(1990, 5, 17)
    seen = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    return [
        ChangeEvent(
            table,
            "c",
            None,
            {
                "id": i,
                "citizen_id": "370102199005171234",
                "name": "张三",
                "gender": "1",
                "born": born,
                "division": "370102",
                "amount": Decimal("12.50"),
                "seen_at": seen,
            },
            1_764_000_000_000,
            {"i": i},
            i,
        )
        for i in range(1, n + 1)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--profile", metavar="FILE", help="profile the sink, top functions into FILE")
    ap.add_argument("--url", default=None, help="sink URL (default: the settings' ClickHouse; chdb:///dir works)")
    args = ap.parse_args()
    settings = get_settings()
    Stack(settings).up(progress=False)
    name = f"bench_{uuid.uuid4().hex[:6]}"
    cols = (
        ColumnSpec("id", sa.BigInteger(), False, True),
        ColumnSpec("citizen_id", sa.String(18)),
        ColumnSpec("name", sa.String(40)),
        ColumnSpec("gender", sa.String(1)),
        ColumnSpec("born", sa.Date()),
        ColumnSpec("division", sa.String(6)),
        ColumnSpec("amount", sa.Numeric(12, 2)),
        ColumnSpec("seen_at", sa.DateTime()),
    )
    table = CapturedTable("bench", name, cols, "bench", "public")
    codec = WireCodec(settings.schema_registry_url)
    runtime = SourceRuntime(
        ListSourceTask(f"bench-{name}", events(table, args.rows), 50_000),
        bootstrap=settings.kafka_bootstrap,
        codec=codec,
        control_db_url=settings.resolved_control_db_url,
    )
    t0 = time.perf_counter()
    runtime.drain()
    print(f"published {args.rows} events in {time.perf_counter() - t0:.1f}s")

    url = args.url or settings.clickhouse_url
    task = ClickHouseSinkTask(ClickHouseSinkConfig(url=url, table=name), codec.schema_of)
    runner = SinkRunner(
        settings.kafka_bootstrap,
        f"bench-{name}",
        [runtime.topic_of(table)],
        codec,
        task,
        batch_size=args.batch,
        batch_seconds=1.0,
        consumer_extra={
            "session.timeout.ms": 6000,
            "fetch.max.bytes": 104857600,
            "max.partition.fetch.bytes": 52428800,
        },
    )
    stop = threading.Event()
    thread = threading.Thread(target=lambda: profiled(lambda: runner.run(stop), args.profile), daemon=True)
    thread.start()
    while runner.status.written == 0:
        time.sleep(0.01)
    start, first = time.perf_counter(), runner.status.written  # from the first batch: excludes group join
    while runner.status.written < args.rows:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join(30)
    rate = (args.rows - first) / elapsed
    backend = backend_for(url)
    count = backend.execute(f"SELECT count() FROM {name} FINAL")[0][0]
    backend.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"sink: {args.rows - first} rows in {elapsed:.2f}s = {rate:,.0f} rows/s into {url.split('@')[-1]}; "
        f"rows in table (FINAL): {count}; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
