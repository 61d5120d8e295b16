"""Data-service calls through real HTTP over a 10M-row ClickHouse table filtered by its key (issue 17).

    HUILIU_STATE_DIR=/tmp/bench-svc PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_services.py \
        --rows 10000000 --seconds 15 --concurrency 32

Uses the local stack of the HUILIU_* settings (started if needed) and starts the API as its own
process (`python -m api.cli api`). Loads `rows` rows into a ReplacingMergeTree table ordered by
`id` (INSERT ... SELECT from numbers(), once: kept between runs), publishes two services over it,
one without masking and one masking name, phone and citizen_id, approves an application for each
(rate limit high enough not to refuse), then for each service drives `--seconds` of calls
`GET /services/{name}/v1?id=<random>` from `--concurrency` asyncio clients in a separate process
and prints calls/s and the latency p50/p99 seen by the client; the same load on `GET /livez`
first gives the API process's floor on this machine. Also prints the bare ClickHouse
query the service runs (the same `read_rows` call, in-process, one connection) p50/p99, and
`serve()` called in-process on one thread (every check and the query, no HTTP, no audit row), so
the platform's own cost is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid

import httpx

from deploy.settings import get_settings, settings_env
from deploy.stack import Stack

TABLE = "bench_services_people"
PASSWORD = "Bench-Services-Pass-42"


def load(client, rows: int) -> None:
    have = client.execute(f"EXISTS TABLE {TABLE}")[0][0]
    if have and client.execute(f"SELECT count() FROM {TABLE}")[0][0] == rows:
        return
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.execute(
        f"CREATE TABLE {TABLE} (id UInt64, citizen_id String, name String, phone String, division String, "
        "amount Float64, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    started = time.perf_counter()
    client.execute(
        f"INSERT INTO {TABLE} SELECT number, concat('3701021990', toString(100000000 + number % 100000000)), "
        "'张三丰', concat('138', toString(10000000 + number % 90000000)), "
        "concat('3701', toString(10 + number % 90)), number / 100, 1, 0 "
        f"FROM system.numbers LIMIT {rows}"
    )
    client.execute(f"OPTIMIZE TABLE {TABLE} FINAL")
    print(f"loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)


def bare_query(client, rows: int, n: int = 2000) -> tuple[float, float]:
    from sinks.clickhouse.reader import read_rows, table_columns, table_engine

    columns, engine = table_columns(client, TABLE), table_engine(client, TABLE)
    fields = ["id", "citizen_id", "name", "phone", "division", "amount"]
    times = []
    for _ in range(n):
        key = random.randrange(rows)
        t = time.perf_counter()
        out = read_rows(
            client, TABLE, columns, select=fields, where=[("id", "eq", key)], order_by=["id"],
            limit=50, offset=0, timeout_s=10, max_rows=1000, engine=engine,
        )  # fmt: skip
        times.append((time.perf_counter() - t) * 1000)
        assert len(out) == 1
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def in_process(
    settings, client, service: str, key: str, rows: int, seconds: float = 5.0, profile: bool = False
) -> tuple[float, float, float]:
    """serve() alone in this process, one thread (no HTTP, no audit row), wired as the API wires it
    (api/service_access.py: the caching store, the classifier): calls/s, p50, p99 ms. `profile`:
    under cProfile, printing the functions of most cumulative time."""
    from api.service_access import buckets_for, classifier, store_for
    from streams.dataservices.serving import serve

    store = store_for(settings.resolved_control_db_url, str(settings.state_dir), settings.redis_url)
    buckets = buckets_for(settings.redis_url)
    classify = classifier(settings.resolved_control_db_url)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        out = serve(store, client, buckets, key, service, 1, [("id", str(random.randrange(rows)))], classify)
        times.append((time.perf_counter() - t) * 1000)
        assert out["count"] == 1
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    times.sort()
    return len(times) / seconds, times[len(times) // 2], times[int(len(times) * 0.99)]


def start_api(settings, port: int) -> subprocess.Popen:
    env = {**os.environ, **settings_env(settings), "HUILIU_API_PORT": str(port)}
    log = open(settings.state_dir / f"bench-api-{port}.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log)
    deadline = time.time() + 300  # a loaded shared machine took 100 s to start it
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("API did not start")


def publish(base: str, op: dict, masked: bool) -> str:
    run = uuid.uuid4().hex[:6]
    tenant = f"bench{run}"
    clients = {}
    for who in ("author", "reviewer"):
        name = f"bench-{who}-{run}"
        r = httpx.post(
            base + "/users",
            headers=op,
            json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": ["admin"]},
        )
        assert r.status_code == 201, r.text
        token = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
        clients[who] = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    service = f"people_{'masked' if masked else 'plain'}_{run}"
    doc = {
        "name": service,
        "resource": {"table": TABLE},
        "fields": ["id", "citizen_id", "name", "phone", "division", "amount"],
        "filters": [{"field": "id", "ops": ["eq"], "required": True}],
        "sort": ["id"],
        "masking": {"citizen_id": "id_number", "name": "name", "phone": "phone"} if masked else {},
        "rate_limit": {"rate": 100000, "burst": 100000},
    }
    author, reviewer = clients["author"], clients["reviewer"]
    assert author.post("/services", json=doc).status_code == 201
    assert author.post(f"/services/{service}/submit").status_code == 200
    assert reviewer.post(f"/services/{service}/review", json={"approve": True}).status_code == 200
    r = author.post(
        f"/services/{service}/applications",
        json={"application": f"bench_{run}", "version": 1, "purpose": "bench", "fields": doc["fields"]},
    )
    r = author.post(f"/services/applications/{r.json()['id']}/decision", json={"approve": True})
    assert r.status_code == 200, r.text
    return json.dumps({"service": service, "key": r.json()["key"]})


async def drive(base: str, service: str, key: str, rows: int, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"X-App-Key": key}, limits=limits, timeout=30) as c:

        async def worker():
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                if service == "-":  # the API's floor: a route that does nothing (no auth, no audit)
                    r = await c.get("/livez")
                    ok = r.status_code == 200
                else:
                    r = await c.get(f"/services/{service}/v1", params={"id": str(random.randrange(rows))})
                    ok = r.status_code == 200 and r.json()["count"] == 1
                if ok:
                    latencies.append((time.perf_counter() - t) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1),
        "calls": len(latencies),
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="cProfile of serve() in-process (printed)")
    ap.add_argument("--drive", nargs=3, metavar=("BASE", "SERVICE", "KEY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:  # the load generator, in its own process (its own core's share)
        out = asyncio.run(drive(*args.drive, args.rows, args.seconds, args.concurrency))
        print(json.dumps(out))
        return
    from sinks.clickhouse import client_from_url

    settings = get_settings()
    Stack(settings).up(progress=False)
    client = client_from_url(settings.clickhouse_url)
    load(client, args.rows)
    p50, p99 = bare_query(client, args.rows)
    print(f"bare ClickHouse query (read_rows, id = ?, FINAL, one connection): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    port = args.port or settings.api_port + 7
    proc = start_api(settings, port)
    base = f"http://127.0.0.1:{port}"
    op = {"X-API-Key": (settings.state_dir / "api_key").read_text().strip()}
    try:
        for masked in (None, False, True):
            svc = json.loads(publish(base, op, masked)) if masked is not None else {"service": "-", "key": "-"}
            httpx.get(f"{base}/services/{svc['service']}/v1", params={"id": "1"}, headers={"X-App-Key": svc["key"]})
            load_avg = os.getloadavg()[0]
            out = subprocess.run(
                [sys.executable, __file__, "--drive", base, svc["service"], svc["key"], "--rows", str(args.rows),
                 "--seconds", str(args.seconds), "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."},
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            what = {None: "GET /livez (floor)", False: "plain", True: "masked"}[masked]
            print(f"{what}: {result} (load average before: {load_avg:.1f})", flush=True)
            if masked is not None:
                rate, p50, p99 = in_process(
                    settings, client, svc["service"], svc["key"], args.rows, profile=args.profile
                )
                print(f"{what}, serve() in-process, one thread: {rate:.1f} calls/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        proc.terminate()
        proc.wait(20)
        client.disconnect()


if __name__ == "__main__":
    main()
