"""Throughput of HdfsSinkTask writing Avro to a real local HDFS (NameNode + DataNode).

Run: .venv/bin/python tests/benchmarks/bench_hdfs.py [--mb 256] [--format avro] [--text-bytes 400]
Starts its own cluster on ports --port-base .. +4 (default 29885-29889; with --from-topic a broker
and registry on +192/+181) under a temp dir, writes change events of one table in runtime-sized
batches (put + occasional flush), and reports committed file MB/s and rows/s, measured end to end
(row building, encoding, WebHDFS upload, rename), and the CPU seconds per MB spent meanwhile by
this process and by the HDFS daemons (a shared machine's load bends MB/s more than these).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.hdfs.cluster import HdfsCluster  # noqa: E402
from sinks.base import SinkRecord  # noqa: E402
from sinks.hdfs import HdfsSinkSettings, HdfsSinkTask  # noqa: E402
from tests.benchmarks.profiling import profiled  # noqa: E402

PORT_BASE = 29885
DAY_MS = 1_700_000_000_000


def make_records(n: int, text_bytes: int, start: int = 0) -> list[SinkRecord]:
    rnd = random.Random(start)
    text = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(4096))
    recs = []
    for i in range(start, start + n):
        o = rnd.randrange(4096 - text_bytes)
        row = {
            "id": i,
            "customer_id": rnd.randrange(1_000_000),
            "amount": rnd.random() * 1000,
            "currency": "EUR",
            "status": rnd.choice(("new", "paid", "shipped")),
            "qty": rnd.randrange(100),
            "paid": rnd.random() < 0.5,
            "created_ms": DAY_MS + i,
            "note": text[o : o + text_bytes],
        }
        value = {
            "op": "c",
            "before": None,
            "after": row,
            "ts_ms": DAY_MS + i,
            "transaction": None,
            "source": {
                "system": "postgresql",
                "database": "shop",
                "schema": "public",
                "table": "orders",
                "connector": "pg",
                "position": {"lsn": 10_000 + i},
                "snapshot": False,
            },
        }
        recs.append(SinkRecord("huiliu.shop.orders", 0, i, {"id": i}, value))
    return recs


class CpuMeter:
    """CPU seconds (user + system) between start() and stop(): this process's (every thread) and
    those of the processes in `others` (name -> pids: the HDFS daemons, the broker)."""

    def __init__(self, others: dict[str, list[int]]) -> None:
        self.others = others
        self.seconds: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {"this process": time.process_time()}
        for name, pids in self.others.items():
            now[name] = 0.0
            for pid in pids:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                now[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return now

    def start(self) -> None:
        self.seconds = {k: -v for k, v in self._now().items()}

    def stop(self) -> None:
        for k, v in self._now().items():
            self.seconds[k] += v

    def per_mb(self, mb: float) -> str:
        return ", ".join(f"{k} {v / mb:.4f}" for k, v in self.seconds.items())


def from_topic(task, batches, args, cpu: CpuMeter) -> tuple[float, int]:
    """(seconds, rows) SinkRunner took to bring the rows from a topic into the task, counted from
    its first written batch (the group join is not the sink's throughput)."""
    import threading

    import sqlalchemy.types as sa

    from connectors.base import CapturedTable, ChangeEvent
    from connectors.runtime import SourceRuntime
    from deploy.settings import Settings
    from deploy.stack import Stack
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from sinks.runtime import SinkRunner
    from tests.sources import ListSourceTask

    base = args.port_base + 100
    settings = Settings(
        state_dir=tempfile.mkdtemp(prefix="bench-hdfs-stack-"),
        kafka_bootstrap=f"127.0.0.1:{base + 92}",
        schema_registry_url=f"http://127.0.0.1:{base + 81}",
        broker_storage="memory",  # the sink's throughput, not the broker's durability (bench_broker)
    )
    stack = Stack(settings)
    stack.up(progress=False, only=["broker", "registry"])
    broker = stack.component("broker").running_pid()
    if broker is not None:
        cpu.others["broker"] = [broker]
    try:
        cols = (
            ColumnSpec("id", sa.BigInteger(), False, True),
            ColumnSpec("customer_id", sa.BigInteger()),
            ColumnSpec("amount", sa.Float()),
            ColumnSpec("currency", sa.String()),
            ColumnSpec("status", sa.String()),
            ColumnSpec("qty", sa.Integer()),
            ColumnSpec("paid", sa.Boolean()),
            ColumnSpec("created_ms", sa.BigInteger()),
            ColumnSpec("note", sa.String()),
        )
        table = CapturedTable("shop", "orders", cols, "shop", "public")
        events = [
            ChangeEvent(table, r.op, None, r.value["after"], r.value["ts_ms"], {"lsn": r.offset}, r.offset)
            for b in batches
            for r in b
        ]
        codec = WireCodec(settings.schema_registry_url)
        runtime = SourceRuntime(
            ListSourceTask("bench-hdfs", events, 20_000),
            bootstrap=settings.kafka_bootstrap,
            codec=codec,
            control_db_url=f"sqlite:///{settings.state_dir}/control.db",
        )
        n = runtime.drain()
        del events, batches[:]
        runner = SinkRunner(
            settings.kafka_bootstrap,
            "bench-hdfs",
            [runtime.topic_of(table)],
            codec,
            task,
            consumer_extra={"session.timeout.ms": 6000},
        )  # the task's batch bounds
        stop = threading.Event()
        thread = threading.Thread(target=lambda: profiled(lambda: runner.run(stop), args.profile), daemon=True)
        thread.start()
        while runner.status.written == 0:
            time.sleep(0.01)
        t0, first = time.perf_counter(), runner.status.written
        cpu.start()
        while runner.status.written < n:
            time.sleep(0.05)
        secs = time.perf_counter() - t0
        cpu.stop()
        stop.set()
        thread.join(60)
        return secs, n - first
    finally:
        stack.down(only=["broker", "registry"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=256, help="approximate MB of files to write")
    ap.add_argument("--format", choices=["avro", "parquet"], default="avro")
    ap.add_argument("--codec", choices=["null", "deflate"], default="null")
    ap.add_argument("--text-bytes", type=int, default=400, help="size of the text column per row")
    ap.add_argument("--batch", type=int, default=20_000, help="records per put (a runtime batch)")
    ap.add_argument("--flush-every", type=int, default=10, help="flush after this many batches")
    ap.add_argument("--roll-mb", type=float, default=64)
    ap.add_argument("--port-base", type=int, default=PORT_BASE, help="first of the HDFS ports (+192/+181 Kafka)")
    ap.add_argument("--profile", metavar="FILE", help="profile the writes, top functions into FILE")
    ap.add_argument(
        "--from-topic",
        action="store_true",
        help="publish the rows to a topic first and time SinkRunner (consume, decode, write)",
    )
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-hdfs-"))
    cluster = HdfsCluster.from_port_base(base, args.port_base, heap_mb=768)
    cluster.start()
    try:
        task = HdfsSinkTask(
            HdfsSinkSettings(
                url=cluster.webhdfs_url,
                root="/bench",
                format=args.format,
                avro_codec=args.codec,
                roll_bytes=int(args.roll_mb * 2**20),
            )
        )
        # Probe the encoded row size so the run writes about --mb.
        probe = HdfsSinkTask(
            HdfsSinkSettings(url=cluster.webhdfs_url, root="/bench-probe", format=args.format, avro_codec=args.codec)
        )
        probe.put(make_records(5000, args.text_bytes, start=10**9))
        probe.flush()
        row_bytes = probe.bytes_committed / 5000
        n = int(args.mb * 2**20 / row_bytes)
        if args.from_topic:  # whole batches: a partial last batch would wait out commit_seconds, timed
            per_batch = task.batch_bounds[0]
            n = -(-n // per_batch) * per_batch
        batches = [make_records(min(args.batch, n - s), args.text_bytes, s) for s in range(0, n, args.batch)]
        # The pre-built input (hundreds of thousands of dicts) is not the sink's: keep the cyclic GC
        # from rescanning it on every full collection, as a runtime that frees each batch never has to.
        gc.freeze()

        def write_all():
            for i, b in enumerate(batches, 1):
                task.put(b)
                if i % args.flush_every == 0:
                    task.flush()
            task.flush()

        cpu = CpuMeter({"HDFS daemons": [p.pid for p in cluster._procs.values()]})
        timed = n
        if args.from_topic:
            secs, timed = from_topic(task, batches, args, cpu)
        else:
            t0 = time.perf_counter()
            cpu.start()
            profiled(write_all, args.profile)
            secs = time.perf_counter() - t0
            cpu.stop()
        mb = task.bytes_committed / 2**20 * timed / n  # the timed rows' share of the files
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        how = " from a topic (SinkRunner)" if args.from_topic else ""
        print(
            f"{args.format}/{args.codec}{how}: {n} rows ({row_bytes:.0f} B/row encoded), {task.files_committed} files, "
            f"{mb:.1f} MB timed in {secs:.2f}s -> {mb / secs:.1f} MB/s, {timed / secs:,.0f} rows/s "
            f"; CPU s/MB: {cpu.per_mb(mb)} "
            f"(load avg {load}, 2 cores)"
        )
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
