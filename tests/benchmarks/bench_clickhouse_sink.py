"""Sustained rows/s from a Kafka topic into ClickHouse through the real sink runtime, and the
bare clients' ceilings in the same run (issue 19: the sink >= 80% of the bare insert).

    .venv/bin/python tests/benchmarks/bench_clickhouse_sink.py --rows 1000000 --batch 20000

Uses the local stack described by HUILIU_* settings (started if needed). A child process publishes
`rows` change events (8 columns) to a fresh topic, so this process holds only the sink (its peak
RSS is the sink's, and the garbage collector does not walk a million published events). Then it
times SinkRunner (consume -> decode -> columnar insert -> commit) until every row is in
ClickHouse. Then the ceilings, each the bare client doing nothing else: clickhouse-driver's own
columnar insert (`execute(..., columnar=True)`) of the same rows' columns, in the batches the
sink wrote, as the Python values the sink used to hand it (DateTime as epoch seconds, decimals
as text) and as the driver's numpy columns (`use_numpy`); confluent-kafka's consume of the same
topic in batches of the same size (values taken, nothing else); and the two in series (consume,
then insert: what a sink that did no decoding and no overlap would reach). Prints rows/s, ratios,
the sink's CPU per row by thread (the sink's own, its writer, librdkafka's) and ClickHouse's,
the peak RSS, the load average and the versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from multiprocessing import get_context

import numpy as np
import polars as pl
import sqlalchemy.types as sa

from connectors.base import CapturedTable, ChangeEvent
from connectors.runtime import SourceRuntime
from deploy.clickhouse import client_from_url
from deploy.kafka import batch_consumer, bounded_prefetch
from deploy.pandas_probes import skip_pandas_probes
from deploy.settings import get_settings
from deploy.stack import Stack
from schemas.frames import FrameDecoder
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask, backend_for
from sinks.clickhouse.columns import frame_series, python_values
from sinks.runtime import SinkRunner
from tests.benchmarks.profiling import peak_rss_mb, profiled
from tests.sources import ListSourceTask


def bench_table(name: str) -> CapturedTable:
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
    return CapturedTable("bench", name, cols, "bench", "public")


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


def publish(name: str, rows: int) -> str:
    """Run in a child process: the events and the producer never live in the sink's process."""
    settings = get_settings()
    table = bench_table(name)
    runtime = SourceRuntime(
        ListSourceTask(f"bench-{name}", events(table, rows), 50_000),
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
    )
    runtime.drain()
    return runtime.topic_of(table)


def server_pid(program: bytes, mark: str) -> int | None:
    """The stack's server running `program` with `mark` in its command line (ClickHouse: its state
    directory; the broker: its listener address)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(program) and any(mark.encode() in a for a in cmd):
            return int(pid)
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """tid -> (name, CPU seconds) of this process's threads; librdkafka names its own (rdk:...)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = open(f"/proc/self/task/{tid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def cpu_by_role(before: dict, after: dict, roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds between two thread_cpu() samples, grouped: the named Python threads, librdkafka's
    (rdk:*) and the rest of the process."""
    spent: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        role = roles.get(tid) or ("librdkafka" if comm.startswith("rdk:") else "other")
        spent[role] = spent.get(role, 0.0) + cpu - before.get(tid, (comm, 0.0))[1]
    return spent


def _numpy(series):
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.epoch("s").to_numpy()  # the driver writes integers as they are
    if isinstance(series.dtype, (pl.Categorical, pl.Enum)):
        series = series.cast(pl.String)
    return series.to_numpy()


def bare_consume(bootstrap: str, topic: str, rows: int, batch: int) -> tuple[float, list[bytes]]:
    """rows/s of confluent-kafka consuming the topic in `batch`-sized calls with the sink's prefetch,
    taking each value and nothing else (from the first batch on: group join excluded); the values."""
    consumer = batch_consumer(bootstrap, f"bare-{uuid.uuid4().hex[:6]}", bounded_prefetch(batch))
    consumer.subscribe([topic])
    values: list[bytes] = []
    start = first = None
    while len(values) < rows:
        got = [m.value() for m in consumer.consume(batch, 1.0) if not m.error()]
        if got and start is None:
            start, first = time.perf_counter(), len(got)
        values.extend(got)
    elapsed = time.perf_counter() - start
    consumer.close()
    return (len(values) - first) / elapsed, values


def ceiling(url: str, table: str, fields, frames, numpy: bool, ch_pid: int | None) -> tuple[float, float]:
    """rows/s of clickhouse-driver inserting the same columns, batch by batch, nothing else done,
    and the CPU seconds a row cost (this process and ClickHouse)."""
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
    start, rows, cpu0 = time.perf_counter(), 0, time.process_time() + cpu_seconds(ch_pid)
    for cols in batches:
        client.execute(f"INSERT INTO {table} ({names}) VALUES", [c for _, c in cols], columnar=True)
        rows += len(cols[0][1])
    elapsed = time.perf_counter() - start
    cpu = time.process_time() + cpu_seconds(ch_pid) - cpu0
    assert backend.execute(f"SELECT count() FROM {table}")[0][0] == rows
    client.disconnect()
    backend.close()
    return rows / elapsed, cpu / rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--profile", metavar="FILE", help="profile the sink, top functions into FILE")
    ap.add_argument("--consumer", nargs="*", default=[], metavar="KEY=VALUE", help="librdkafka settings to try")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the bare clients' ceilings")
    ap.add_argument("--url", default=None, help="sink URL (default: the settings' ClickHouse; chdb:///dir works)")
    args = ap.parse_args()
    skip_pandas_probes()  # as in a `huiliu worker` process, which runs sinks
    settings = get_settings()
    Stack(settings).up(progress=False)
    name = f"bench_{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        topic = pool.submit(publish, name, args.rows).result()
    print(f"published {args.rows} events in {time.perf_counter() - t0:.1f}s (child process)")
    rss_start = peak_rss_mb()

    codec = WireCodec(settings.schema_registry_url)
    url = args.url or settings.clickhouse_url
    task = ClickHouseSinkTask(ClickHouseSinkConfig(url=url, table=name), codec.schema_of)
    runner = SinkRunner(
        settings.kafka_bootstrap,
        f"bench-{name}",
        [topic],
        codec,
        task,
        batch_size=args.batch,
        batch_seconds=1.0,
        consumer_extra={"session.timeout.ms": 6000, **dict(kv.split("=", 1) for kv in args.consumer)},
    )
    # the sizes of the batches the sink wrote: the insert ceiling writes the same ones
    sizes: list[int] = []
    put_frames = task.put_frames
    task.put_frames = lambda frames: (sizes.append(sum(f.frame.height for f in frames)), put_frames(frames))[1]
    ch_pid = server_pid(b"clickhouse-server", str(settings.state_dir))
    broker_pid = server_pid(b"tansu", f"tcp://{settings.kafka_bootstrap}")
    load_before = os.getloadavg()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: profiled(lambda: runner.run(stop), args.profile), daemon=True)
    thread.start()
    while runner.status.written == 0:
        time.sleep(0.01)
    start, first = time.perf_counter(), runner.status.written  # from the first batch: excludes group join
    roles = {thread.native_id: "sink"}
    roles.update({t.native_id: "writer" for t in threading.enumerate() if t.name.startswith("sink-writer")})
    cpu0, ch0, broker0, threads0 = time.process_time(), cpu_seconds(ch_pid), cpu_seconds(broker_pid), thread_cpu()
    while runner.status.written < args.rows:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu, ch_cpu, broker_cpu = time.process_time() - cpu0, cpu_seconds(ch_pid) - ch0, cpu_seconds(broker_pid) - broker0
    by_role = cpu_by_role(threads0, thread_cpu(), roles)
    rss = peak_rss_mb()
    stop.set()
    thread.join(30)
    rate = (args.rows - first) / elapsed
    backend = backend_for(url)
    count = backend.execute(f"SELECT count() FROM {name} FINAL")[0][0]
    server = backend.execute("SELECT version()")[0][0]
    backend.close()
    n = args.rows - first
    per_role = ", ".join(f"{role} {sec / n * 1e6:.2f}" for role, sec in sorted(by_role.items(), key=lambda x: -x[1]))
    print(
        f"sink: {n} rows in {elapsed:.2f}s = {rate:,.0f} rows/s into {url.split('@')[-1]}; "
        f"rows in table (FINAL): {count}; CPU per row: sink process {cpu / n * 1e6:.2f} us ({per_role}), "
        f"ClickHouse {ch_cpu / n * 1e6:.2f} us, broker {broker_cpu / n * 1e6:.2f} us; peak RSS {rss:.0f} MB (before the sink: {rss_start:.0f})"
    )
    if args.ceiling and url.startswith("clickhouse"):
        consumed, values = bare_consume(settings.kafka_bootstrap, topic, args.rows, args.batch)
        decoder, frames, at = FrameDecoder(codec), [], 0
        for size in sizes:  # the sink's batches, decoded as it did (not timed)
            frames.extend(run.frame for run in decoder.decode(values[at : at + size]).runs)
            at += size
        del values
        fields = task._row_fields(next(iter(task._schema_fields)))
        plain, plain_cpu = ceiling(url, f"{name}_plain", fields, frames, False, ch_pid)
        numpy, _ = ceiling(url, f"{name}_numpy", fields, frames, True, ch_pid)
        series = 1 / (1 / consumed + 1 / plain)
        sink_cpu = (cpu + ch_cpu + broker_cpu) / n
        print(
            f"ceilings in the same run: clickhouse-driver columnar insert of the same {at} rows in the sink's "
            f"{len(sizes)} batches: Python lists {plain:,.0f} rows/s (sink/ceiling {rate / plain:.2f}); numpy "
            f"columns {numpy:,.0f} rows/s ({rate / numpy:.2f}); confluent-kafka consume of the topic, values "
            f"only: {consumed:,.0f} rows/s; consume then insert (lists), in series: {series:,.0f} rows/s "
            f"(sink/that {rate / series:.2f}). CPU a row, all processes: insert (lists) with ClickHouse "
            f"{plain_cpu * 1e6:.2f} us, sink with ClickHouse and the broker {sink_cpu * 1e6:.2f} us "
            f"(ceiling/sink {plain_cpu / sink_cpu:.2f})"
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
