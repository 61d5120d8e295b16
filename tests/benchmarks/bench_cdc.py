"""Benchmark: PostgreSQL log-based CDC throughput and capture latency (commit -> acknowledged in Kafka).

A writer process commits inserts and updates at --rate changes/s for --seconds; the capture loop
(PgLogicalTask + SourceRuntime, as in production) publishes them as Avro envelopes to a private
broker. Latency of a change = time its batch's offset was stored (acknowledged by the broker) - its
commit timestamp.
Target (NFR-01, AGG-02): >= 20k changes/s sustained, p99 latency < 1 s.

Run: .venv/bin/python tests/benchmarks/bench_cdc.py [--rate 25000 --seconds 15 --port-base 42500]
Needs wal_level=logical (`huiliu servers prepare`, deploy/servers.py) and starts its own broker + registry on --port-base.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectors.relational.pg_logical import PgLogicalConfig, PgLogicalTask  # noqa: E402
from connectors.runtime import SourceRuntime  # noqa: E402
from deploy.servers import PG_ADMIN, ensure_pg_logical  # noqa: E402
from deploy.settings import Settings  # noqa: E402
from deploy.stack import Stack  # noqa: E402
from schemas.serde import WireCodec  # noqa: E402

DB = "huiliu_bench_cdc"
PG = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB


def writer(rate: int, seconds: float, tx_rows: int, done) -> None:
    """Commit `tx_rows` changes per transaction at `rate` changes/s: 70% inserts, 30% updates."""
    conn = psycopg.connect(PG)
    next_id, sent, t0 = 1, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        ins = int(tx_rows * 0.7)
        cur = conn.execute(
            "INSERT INTO bench (id, ver, payload, amount, changed) SELECT g, 0, md5(g::text), g * 0.01, "
            "now() FROM generate_series(%s::bigint, %s::bigint) g",
            (next_id, next_id + ins - 1),
        )
        changes = cur.rowcount
        if next_id > tx_rows:
            lo = max(1, next_id - 20 * tx_rows)
            changes += conn.execute(
                "UPDATE bench SET ver = ver + 1 WHERE id BETWEEN %s AND %s", (lo, lo + tx_rows - ins - 1)
            ).rowcount
        conn.commit()
        next_id += ins
        sent += changes
        ahead = sent / rate - (time.perf_counter() - t0)  # pace to the target rate
        if ahead > 0:
            time.sleep(ahead)
    done.value = sent
    conn.close()


class ServerCpu(threading.Thread):
    """CPU seconds used by PostgreSQL's processes during the run, by role: the capture's walsender
    (told by its client port), the writer's backend (its database in the process title), the
    server's background processes, and other sessions (other users of a shared server, left out
    of the total). /proc sampled every 0.2 s, so a backend that exits still counts."""

    def __init__(self, walsender_port):
        super().__init__(daemon=True)
        self.walsender_port = walsender_port  # () -> the capture's client port, None until it streams
        self.seen: dict[int, tuple[float, float]] = {}  # pid -> (first, last) CPU seconds
        self.role: dict[int, str] = {}
        self.stop = threading.Event()
        self.start()

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            return None
        if not head.endswith("(postgres"):
            return None
        fields = rest.split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _role(self, pid: int) -> str | None:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            return None
        port = self.walsender_port()
        if "walsender" in title:
            return None if port is None else "walsender" if f"({port})" in title else "other"
        if "(" in title:  # a backend: "user database host(port) activity"
            return "writer" if f" {DB} " in title else "other"
        return "background"

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for name in os.listdir("/proc"):
                if name.isdigit() and (cpu := self._cpu(int(name))) is not None:
                    pid = int(name)
                    if pid not in self.role and (role := self._role(pid)) is not None:
                        self.role[pid] = role
                    first = self.seen.get(pid, (cpu, cpu))[0]
                    self.seen[pid] = (first, cpu)

    def used(self) -> dict[str, float]:
        """CPU seconds by role."""
        self.stop.set()
        self.join()
        out = dict.fromkeys(("walsender", "writer", "background", "other"), 0.0)
        for pid, (first, last) in self.seen.items():
            out[self.role.get(pid, "other")] += last - first
        return out


def _client_port(task: PgLogicalTask) -> int | None:
    stream = task.stream
    if stream is None:
        return None
    return socket.socket(fileno=os.dup(stream.pgconn.socket)).getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=25000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--tx-rows", type=int, default=500)
    ap.add_argument("--max-changes", type=int, default=20000, help="decoded messages per poll (the task's default)")
    ap.add_argument(
        "--linger", type=float, default=0.05, help="a poll's wait for more after its first change (default)"
    )
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("HUILIU_TEST_PORT_BASE", "42500")))
    args = ap.parse_args()
    ensure_pg_logical()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (DB,))
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench (id bigint PRIMARY KEY, ver int NOT NULL, payload text, "
            "amount numeric(14, 2), changed timestamp)"
        )

    base = args.port_base
    state = Path(tempfile.mkdtemp(prefix="bench-cdc-"))
    settings = Settings(
        state_dir=state,
        kafka_bootstrap=f"127.0.0.1:{base + 92}",
        schema_registry_url=f"http://127.0.0.1:{base + 81}",
        clickhouse_url=f"clickhouse://default:@127.0.0.1:{base}/default",
        clickhouse_http_port=base + 123,
        api_port=base + 100,
    )
    stack = Stack(settings)
    stack.up(progress=False, only=["broker", "registry"])
    task = PgLogicalTask(
        PgLogicalConfig(
            name="bench",
            url=PG.replace("postgresql://", "postgresql+psycopg://"),
            system="bench",
            tables=["bench"],
            max_changes=args.max_changes,
            linger_seconds=args.linger,
        )
    )
    runtime = SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=f"sqlite:///{state}/control.db",
        topic_prefix="bench",
    )
    try:
        runtime.start()
        runtime.publish(task.poll())  # the (empty) snapshot and the hand-over offset
        done = mp.Value("q", 0)
        proc = mp.Process(target=writer, args=(args.rate, args.seconds, args.tx_rows, done))
        stored_ms: list[np.ndarray] = []  # latency of each change, per batch (numpy: cheap next to the capture)
        waiting: dict[str, np.ndarray] = {}  # offset LSN -> commit times of that batch's changes
        stored = task.committed

        def committed(offsets):  # on the runtime's acks thread, once the batch is acked and stored
            now = time.time() * 1000
            for offset in offsets.values():
                if offset["lsn"] in waiting:
                    stored_ms.append(now - waiting.pop(offset["lsn"]))
            stored(offsets)

        task.committed = committed
        port: list[int] = []  # the capture's client port, once it streams
        server_cpu = ServerCpu(lambda: port[0] if port else None)
        captured, t0, cpu0 = 0, time.time(), time.process_time()
        proc.start()
        idle_since = None
        while True:
            batch = task.poll()
            if not port and (p := _client_port(task)) is not None:
                port.append(p)
            if batch.size or batch.offsets:
                for offset in batch.offsets.values():  # commit times: events', and frames' per row
                    waiting[offset["lsn"]] = np.concatenate(
                        [np.array([ev.ts_ms for ev in batch.events], np.float64)]
                        + [frame.ts_ms.cast(pa.int64()).to_numpy().astype(np.float64) for frame in batch.frames]
                    )
                runtime.publish(batch)
                captured += batch.size
                idle_since = None
            elif not proc.is_alive() and captured >= done.value:
                break
            else:
                idle_since = idle_since or time.time()
                if not proc.is_alive() and time.time() - idle_since > 10:
                    break
                time.sleep(0.02)
        runtime.settle()
        secs, capture_cpu = time.time() - t0, time.process_time() - cpu0
        by_role = server_cpu.used()
        database_cpu = by_role["walsender"] + by_role["writer"] + by_role["background"]
        proc.join()
        latencies = np.sort(np.concatenate(stored_ms)) if stored_ms else np.zeros(1)
        pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1000  # noqa: E731
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"written {done.value} changes at target {args.rate}/s for {args.seconds:.0f}s; captured {captured} "
            f"in {secs:.1f}s -> {captured / secs:,.0f} changes/s; latency p50 {pct(0.5):.3f}s p99 {pct(0.99):.3f}s "
            f"max {latencies[-1] / 1000:.3f}s (load avg {load}, {os.cpu_count()} cores)\n"
            f"CPU: capture process {capture_cpu:.1f} s = {1e6 * capture_cpu / max(captured, 1):.1f} us a change "
            f"({capture_cpu / secs:.2f} of a core); PostgreSQL {database_cpu:.1f} s "
            f"({database_cpu / secs:.2f} of a core, {database_cpu / secs / os.cpu_count():.0%} of the machine): "
            f"walsender decoding {by_role['walsender'] / secs:.2f}, the writer's backend {by_role['writer'] / secs:.2f}, "
            f"background processes {by_role['background'] / secs:.2f} of a core; other sessions on the server "
            f"{by_role['other'] / secs:.2f} (not counted)"
        )
        return 0 if captured == done.value else 1
    finally:
        task.drop_slot()
        task.close()
        stack.down(only=["broker", "registry"])


if __name__ == "__main__":
    raise SystemExit(main())
