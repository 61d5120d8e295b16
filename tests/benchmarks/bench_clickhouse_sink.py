"""Sustained rows/s from a Kafka topic into ClickHouse through the real sink runtime, and the
bare client's ceiling in the same run (issue 19: the sink >= 80% of it).

    .venv/bin/python tests/benchmarks/bench_clickhouse_sink.py --rows 1000000 --batch 50000

Uses the local stack described by HUILIU_* settings (started if needed). Publishes `rows`
change events (8 columns) to a fresh topic, then times SinkRunner (consume -> decode -> columnar
insert -> commit) until every row is in ClickHouse. Then the ceiling: clickhouse-driver's own
columnar insert (`execute(..., columnar=True)`) of the same rows' columns, already in memory as
the Python values the sink used to hand it (DateTime as epoch seconds, decimals as text), in
batches of the same size into a table of the same layout; and the same with the driver's numpy
columns (`use_numpy`). Prints rows/s, ratios, the sink's CPU per row (its process, librdkafka's
threads included) and ClickHouse's, the load average and the versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import polars as pl
import sqlalchemy.types as sa

from connectors.base import CapturedTable, ChangeEvent
from connectors.runtime import SourceRuntime
from deploy.clickhouse import client_from_url
from deploy.settings import get_settings
from deploy.stack import Stack
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask, backend_for
from sinks.clickhouse.columns import frame_series, python_values
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


def clickhouse_pid(state_dir: str) -> int | None:
    """The stack's ClickHouse server (its config lives under the state directory)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"clickhouse-server") and any(state_dir.encode() in a for a in cmd):
            return int(pid)
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _numpy(series):
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.epoch("s").to_numpy()  # the driver writes integers as they are
    if isinstance(series.dtype, (pl.Categorical, pl.Enum)):
        series = series.cast(pl.String)
    return series.to_numpy()


def ceiling(url: str, table: str, fields, frames, numpy: bool) -> float:
    """rows/s of clickhouse-driver inserting the same columns, batch by batch, nothing else done."""
    client = client_from_url(url, settings={"use_numpy": True} if numpy else {})
    backend = backend_for(url)
    backend.execute(f"CREATE TABLE {table} AS {table.rsplit('_', 1)[0]}")
    batches = []
    for frame in frames:
        if numpy:  # numbers, dates and epoch seconds as numpy arrays; no numpy column for Decimal
            cols = [
                (n, np.array(python_values(v, t), dtype=object) if "Decimal" in t else _numpy(v))
                for n, t, v in frame_series(frame, fields)
            ]
        else:
            cols = [(n, python_values(v, t)) for n, t, v in frame_series(frame, fields)]
        batches.append(cols)
    names = ", ".join(n for n, _ in batches[0])
    start, rows = time.perf_counter(), 0
    for cols in batches:
        client.execute(f"INSERT INTO {table} ({names}) VALUES", [c for _, c in cols], columnar=True)
        rows += len(cols[0][1])
    elapsed = time.perf_counter() - start
    assert backend.execute(f"SELECT count() FROM {table}")[0][0] == rows
    client.disconnect()
    backend.close()
    return rows / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--profile", metavar="FILE", help="profile the sink, top functions into FILE")
    ap.add_argument("--consumer", nargs="*", default=[], metavar="KEY=VALUE", help="librdkafka settings to try")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the bare client's ceiling")
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
        consumer_extra={"session.timeout.ms": 6000, **dict(kv.split("=", 1) for kv in args.consumer)},
    )
    # the frames the sink decodes, kept for the ceiling (taken before the clock starts)
    kept: list = []
    put_frames = task.put_frames
    task.put_frames = lambda frames: (kept.extend(f.frame for f in frames), put_frames(frames))[1]
    ch_pid = clickhouse_pid(str(settings.state_dir))
    load_before = os.getloadavg()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: profiled(lambda: runner.run(stop), args.profile), daemon=True)
    thread.start()
    while runner.status.written == 0:
        time.sleep(0.01)
    start, first = time.perf_counter(), runner.status.written  # from the first batch: excludes group join
    cpu0, ch0 = time.process_time(), cpu_seconds(ch_pid)
    while runner.status.written < args.rows:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu, ch_cpu = time.process_time() - cpu0, cpu_seconds(ch_pid) - ch0
    stop.set()
    thread.join(30)
    rate = (args.rows - first) / elapsed
    backend = backend_for(url)
    count = backend.execute(f"SELECT count() FROM {name} FINAL")[0][0]
    server = backend.execute("SELECT version()")[0][0]
    backend.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.rows - first
    print(
        f"sink: {n} rows in {elapsed:.2f}s = {rate:,.0f} rows/s into {url.split('@')[-1]}; "
        f"rows in table (FINAL): {count}; CPU per row: sink {cpu / n * 1e6:.2f} us, ClickHouse "
        f"{ch_cpu / n * 1e6:.2f} us; peak RSS {rss:.0f} MB (publisher included)"
    )
    if args.ceiling and url.startswith("clickhouse"):
        fields = task._row_fields(next(iter(task._schema_fields)))
        plain = ceiling(url, f"{name}_plain", fields, kept, numpy=False)
        numpy = ceiling(url, f"{name}_numpy", fields, kept, numpy=True)
        print(
            f"ceiling, clickhouse-driver columnar insert of the same {sum(f.height for f in kept)} rows in the "
            f"same batches: Python lists {plain:,.0f} rows/s (sink/ceiling {rate / plain:.2f}); numpy columns "
            f"{numpy:,.0f} rows/s ({rate / numpy:.2f})"
        )
    import clickhouse_driver
    import confluent_kafka

    print(
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; ClickHouse {server}, "
        f"clickhouse-driver {clickhouse_driver.__version__}, polars {pl.__version__}, confluent-kafka "
        f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]}), Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
