"""What one point query costs ClickHouse itself: the floor under a data-service call (issue 17).

    .venv/bin/python tests/benchmarks/bench_clickhouse_point.py --rows 10000000 --queries 1000

Uses the local stack of the HUILIU_* settings (started if needed). Builds a 10M-row table like
bench_services' at three index granularities (8192, ClickHouse's default and the sink's; 1024;
256), then times `--queries` lookups of random keys on one connection, each way a service can read
it: `FINAL PREWHERE id = k` (what sinks/clickhouse/reader.py sends: the current row) and a plain
`WHERE id = k`, and `SELECT 1` (the server's cost of any query). Reports per query the server's CPU
(from /proc of the clickhouse-server process), the client's CPU and the wall time, with the load
average: a call can cost no less than this, so 2 cores serve at most 2,000 / (server + client ms)
calls/s before the API does anything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time

from deploy.clickhouse import client_from_url
from deploy.settings import get_settings
from deploy.stack import Stack

GRANULARITIES = (8192, 1024, 256)


def server_pid(port: int) -> int:
    listening = subprocess.check_output(["ss", "-ltnp"], text=True)
    return next(int(line.split("pid=")[1].split(",")[0]) for line in listening.splitlines() if f":{port} " in line)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_table(client, granularity: int, rows: int) -> str:
    table = f"bench_point_{granularity}_{rows}"
    if not client.execute(f"EXISTS TABLE {table}")[0][0]:
        client.execute(
            f"CREATE TABLE {table} (id UInt64, citizen_id String, name String, phone String, division String, "
            "amount Float64, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id "
            f"SETTINGS index_granularity = {granularity}"
        )
        client.execute(
            f"INSERT INTO {table} SELECT number, concat('3701021990', toString(100000000 + number % 100000000)), "
            "'张三丰', concat('138', toString(10000000 + number % 90000000)), '370102', number / 7, 1, 0 "
            f"FROM system.numbers LIMIT {rows}"
        )
    return table


def timed(client, pid: int, sql: str, queries: int, rows: int) -> dict:
    settings = {"max_threads": 1}
    for _ in range(50):  # warm: marks and the connection
        client.execute(sql, {"k": random.randrange(rows)}, settings=settings)
    server, own, wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
    for _ in range(queries):
        client.execute(sql, {"k": random.randrange(rows)}, settings=settings)
    return {
        "server_cpu_ms": round(1000 * (cpu_seconds(pid) - server) / queries, 3),
        "client_cpu_ms": round(1000 * (time.process_time() - own) / queries, 3),
        "wall_ms": round(1000 * (time.perf_counter() - wall) / queries, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    settings = get_settings()
    Stack(settings).up(progress=False)
    client = client_from_url(settings.clickhouse_url)
    pid = server_pid(settings.port_of(settings.clickhouse_url))
    print(json.dumps({"load_average": os.getloadavg(), "server": client.execute("SELECT version()")[0][0]}))
    print(json.dumps({"query": "SELECT 1", **timed(client, pid, "SELECT 1", args.queries, args.rows)}))
    for granularity in GRANULARITIES:
        table = ensure_table(client, granularity, args.rows)
        parts = client.execute(f"SELECT count() FROM system.parts WHERE active AND table = '{table}'")[0][0]
        for way, sql in (
            ("FINAL PREWHERE", f"SELECT id, name, phone, division FROM {table} FINAL PREWHERE id = %(k)s "
             "WHERE _deleted = 0 ORDER BY id LIMIT 10"),
            ("plain WHERE", f"SELECT id, name, phone, division FROM {table} WHERE id = %(k)s LIMIT 10"),
        ):  # fmt: skip
            result = timed(client, pid, sql, args.queries, args.rows)
            print(json.dumps({"granularity": granularity, "parts": parts, "query": way, **result}))
    print(json.dumps({"load_average": os.getloadavg()}))
    client.disconnect()


if __name__ == "__main__":
    main()
