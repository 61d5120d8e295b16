"""Throughput of HdfsSinkTask writing Avro to a real local HDFS (NameNode + DataNode).

Run: .venv/bin/python tests/benchmarks/bench_hdfs.py [--mb 256] [--format avro] [--text-bytes 400]
Starts its own cluster on ports 29885-29889 under a temp dir, writes change events of one
table in runtime-sized batches (put + occasional flush), and reports committed file MB/s and
rows/s, measured end to end (row building, encoding, WebHDFS upload, rename).
"""
from __future__ import annotations

import argparse
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
        row = {"id": i, "customer_id": rnd.randrange(1_000_000), "amount": rnd.random() * 1000,
               "currency": "EUR", "status": rnd.choice(("new", "paid", "shipped")), "qty": rnd.randrange(100),
               "paid": rnd.random() < 0.5, "created_ms": DAY_MS + i, "note": text[o:o + text_bytes]}
        value = {"op": "c", "before": None, "after": row, "ts_ms": DAY_MS + i, "transaction": None,
                 "source": {"system": "postgresql", "database": "shop", "schema": "public", "table": "orders",
                            "connector": "pg", "position": {"lsn": 10_000 + i}, "snapshot": False}}
        recs.append(SinkRecord("huiliu.shop.orders", 0, i, {"id": i}, value))
    return recs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=256, help="approximate MB of files to write")
    ap.add_argument("--format", choices=["avro", "parquet"], default="avro")
    ap.add_argument("--codec", choices=["null", "deflate"], default="null")
    ap.add_argument("--text-bytes", type=int, default=400, help="size of the text column per row")
    ap.add_argument("--batch", type=int, default=20_000, help="records per put (a runtime batch)")
    ap.add_argument("--flush-every", type=int, default=10, help="flush after this many batches")
    ap.add_argument("--roll-mb", type=float, default=64)
    ap.add_argument("--profile", metavar="FILE", help="profile the writes, top functions into FILE")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-hdfs-"))
    cluster = HdfsCluster.from_port_base(base, PORT_BASE, heap_mb=768)
    cluster.start()
    try:
        task = HdfsSinkTask(HdfsSinkSettings(url=cluster.webhdfs_url, root="/bench", format=args.format,
                                             avro_codec=args.codec, roll_bytes=int(args.roll_mb * 2**20)))
        # Probe the encoded row size so the run writes about --mb.
        probe = HdfsSinkTask(HdfsSinkSettings(url=cluster.webhdfs_url, root="/bench-probe", format=args.format,
                                              avro_codec=args.codec))
        probe.put(make_records(5000, args.text_bytes, start=10**9))
        probe.flush()
        row_bytes = probe.bytes_committed / 5000
        n = int(args.mb * 2**20 / row_bytes)
        batches = [make_records(min(args.batch, n - s), args.text_bytes, s) for s in range(0, n, args.batch)]

        def write_all():
            for i, b in enumerate(batches, 1):
                task.put(b)
                if i % args.flush_every == 0:
                    task.flush()
            task.flush()

        t0 = time.perf_counter()
        profiled(write_all, args.profile)
        secs = time.perf_counter() - t0
        mb = task.bytes_committed / 2**20
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{args.format}/{args.codec}: {n} rows ({row_bytes:.0f} B/row encoded), {task.files_committed} files, "
              f"{mb:.1f} MB in {secs:.2f}s -> {mb / secs:.1f} MB/s, {n / secs:,.0f} rows/s (load avg {load}, 2 cores)")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
