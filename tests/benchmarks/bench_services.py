"""Data-service calls through real HTTP over a 10M-row ClickHouse table filtered by its key (issue 17).

    HUILIU_STATE_DIR=/tmp/bench-svc PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_services.py \
        --rows 10000000 --seconds 15 --concurrency 32 [--load wrk|python] [--py-spy DIR]

Uses the local stack of the HUILIU_* settings (started if needed) and starts the API as its own
process (`python -m api.cli api`, `HUILIU_API_WORKERS` of them). Loads `rows` rows into a
ReplacingMergeTree table ordered by `id` (INSERT ... SELECT from numbers(), once: kept between
runs), publishes two services over it, one without masking and one masking name, phone and
citizen_id, approves an application for each (rate limit high enough not to refuse), then for each
service drives `--seconds` of calls `GET /services/{name}/v1?id=<random>` from `--concurrency`
connections and prints calls/s and the latency p50/p99 seen by the client; the same load on
`GET /livez` first gives the API process's floor on this machine.

The load generator is `wrk` (C, one Lua script setting the X-App-Key header, a random id per call
and counting the answers that are not 200 with one row) when it is installed (`apt-get install
wrk`), else `--load python`: asyncio httpx clients in a separate process, which on 2 cores take
as much CPU as the API and so measure themselves as much as the server.

Also printed: the ClickHouse query's own time, from the server's log ("Read 1 rows ... in T sec."
of every query it ran during the load: its time, not the client's); the bare query as the service
runs it (the same `read_rows` call, in-process, one connection) p50/p99 seen by the client; the
API's RSS after each load (every worker process); `serve()` called in-process on one thread
(every check and the query, no HTTP, no audit row). `--layer N` measures only what the API layer
adds to serve(), per request, with serve() stubbed (no stack; N batches). `--py-spy DIR` records a py-spy profile of
the API process during each load (DIR/<what>.txt, collapsed stacks, and DIR/<what>-top.txt, the
functions by own samples).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

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


WRK_SCRIPT = """
local path, rows, key = "%(path)s", %(rows)d, "%(key)s"
local threads, n = {}, 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
  ok, bad = 0, 0
  if key ~= "-" then wrk.headers["X-App-Key"] = key end
end
function request()
  if key == "-" then return wrk.format("GET", path) end
  return wrk.format("GET", path .. "?id=" .. math.random(0, rows - 1))
end
function response(status, headers, body)
  -- a call counts when it answered 200 with exactly one row
  if status == 200 and (key == "-" or string.find(body, '"count":%%s*1[,}]')) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local good, wrong = 0, 0
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    wrong = wrong + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_s": %%.3f, "ok": %%d, "bad": %%d, "socket_errors": %%d, '
    .. '"p50_ms": %%.2f, "p90_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f}\\n',
    summary.requests, summary.duration / 1e6, good, wrong, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def wrk_drive(base: str, service: str, key: str, rows: int, seconds: float, concurrency: int) -> dict:
    """`seconds` of calls from wrk (2 threads, `concurrency` keep-alive connections)."""
    path = "/livez" if service == "-" else f"/services/{service}/v1"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % {"path": path, "rows": rows, "key": key})
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{seconds:g}s", "--timeout", "10s", "-s", f.name, base],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "calls_per_s": round(result["ok"] / result["duration_s"], 1),
        "p50_ms": round(result["p50_ms"], 1),
        "p90_ms": round(result["p90_ms"], 1),
        "p99_ms": round(result["p99_ms"], 1),
        "calls": result["ok"],
        "errors": result["bad"] + result["socket_errors"],
    }


def python_drive(base: str, service: str, key: str, rows: int, seconds: float, concurrency: int) -> dict:
    """The same load from asyncio httpx clients in a process of their own (`--load python`)."""
    out = subprocess.run(
        [sys.executable, __file__, "--drive", base, service, key, "--rows", str(rows),
         "--seconds", str(seconds), "--concurrency", str(concurrency)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# ClickHouse logs every query's own time at level information: "Read 1 rows, 60.00 B in 0.003 sec., ..."
_READ = re.compile(rb"Read (\d+) rows, .*? in ([0-9.]+) sec\.")


def clickhouse_times(log: Path, start: int) -> tuple[int, float, float, float]:
    """The queries the ClickHouse server logged after byte `start` of its log (during a load: the
    service's queries; the call log's inserts read nothing): how many, and their own time p50 /
    p99 / max in ms (the server's time, without the network and the client)."""
    with open(log, "rb") as f:
        f.seek(start)
        times = sorted(float(m.group(2)) * 1000 for m in _READ.finditer(f.read()))
    if not times:
        return 0, float("nan"), float("nan"), float("nan")
    return len(times), times[len(times) // 2], times[int(len(times) * 0.99)], times[-1]


def rss_mb(pid: int) -> float:
    """RSS of a process and its children (uvicorn's workers), in MB."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_s(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) a process, and its child processes (uvicorn's workers), used so far."""
    pids = [pid]
    if children:
        try:
            pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy recording the API process (and its workers) for `seconds`, collapsed stacks to `out`."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy is not installed (pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [exe, "record", "-p", str(pid), "-d", str(max(1, int(seconds) - 1)), "-r", "200", "-s", "--nonblocking",
         "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def top_of(collapsed: Path, n: int = 40) -> str:
    """The functions of a collapsed-stacks profile by own samples and by samples under them."""
    own, under = Counter(), Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        own[frames[-1]] += c
        for fr in set(frames):
            under[fr] += c
    lines = [f"{total} samples", "", "own %  function"]
    lines += [f"{100 * c / total:5.1f}  {fr}" for fr, c in own.most_common(n)]
    lines += ["", "under %  function"]
    lines += [f"{100 * c / total:5.1f}  {fr}" for fr, c in under.most_common(n)]
    return "\n".join(lines)


async def asgi_calls(app, path: str, key: str, rows: int, calls: int, concurrency: int) -> list[float]:
    """`calls` calls of the call route straight into the ASGI app (no sockets, no HTTP parsing, no
    load generator), `concurrency` at a time; the process CPU ms per call of each batch of
    `concurrency` x 25 calls (all threads: the event loop, the worker threads, the audit batcher)."""
    import asyncio as aio

    async def one():
        body = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": f"id={random.randrange(rows)}".encode() if key != "-" else b"",
            "headers": [(b"host", b"bench"), (b"x-app-key", key.encode())], "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }  # fmt: skip

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            body.append(message)

        await app(scope, receive, send)
        if body[0]["status"] != 200:
            raise SystemExit(f"the call answered {body[0]['status']}: {body[-1].get('body', b'')[:300]!r}")

    per_batch = []
    batch = concurrency * 25
    for _ in range(max(1, calls // batch)):
        t = time.process_time()
        for _ in range(25):
            await aio.gather(*(one() for _ in range(concurrency)))
        per_batch.append((time.process_time() - t) * 1000 / batch)
    return per_batch


def in_process_asgi(settings, service: str, key: str, rows: int, calls: int, profile: str | None) -> str:
    """The API's own CPU per call, in this process: the app of api/app.py called through ASGI."""
    from api.app import create_app

    app = create_app(settings)
    path = "/livez" if service == "-" else f"/services/{service}/v1"
    asyncio.run(asgi_calls(app, path, key, rows, 200, 4))  # warm: caches, connections, the thread pool
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    batches = asyncio.run(asgi_calls(app, path, key, rows, calls, 4))
    if profile:
        import pstats

        prof.disable()
        with open(profile, "w") as out:
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(60)
    batches.sort()
    return (
        f"CPU per call, min {batches[0]:.2f} ms, median {batches[len(batches) // 2]:.2f} ms of {len(batches)} batches"
    )


def api_layer(settings, rounds: int) -> str:
    """The API layer's own CPU per request (issue 17), without ClickHouse or Redis: the app of
    api/app.py called in this process through ASGI, the call route's serve() replaced by a constant
    one-row answer (so what is measured is what the app adds to serve(): middleware, routing,
    dependencies, the thread hop, the audit entry, the access log line, the call log), and
    `GET /livez`; `rounds` batches of 100 each, min and median."""
    import api.routers.services as services
    from api.app import create_app
    from deploy.logs import configure_logging

    configure_logging(settings, stderr_level="WARNING")  # as `huiliu api`: the access lines go to the file
    answer = {"items": [{"id": 1, "name": "张三", "phone": "138****0000"}], "count": 1, "application": "bench"}
    services.serve = lambda *args, **kwargs: dict(answer)
    services._clickhouse = lambda url: None
    app = create_app(settings)
    figures = []
    for what, path, key in (("call route", "/services/bench_layer/v1", "hls_bench_layer"), ("/livez", "/livez", "-")):
        asyncio.run(asgi_calls(app, path, key, 1000, 400, 4))  # warm
        batches = sorted(b for _ in range(rounds) for b in asyncio.run(asgi_calls(app, path, key, 1000, 100, 4)))
        figures.append(f"{what} min {batches[0] * 1000:.0f} / median {batches[len(batches) // 2] * 1000:.0f} us")
    return f"the API layer's CPU per request, serve() stubbed ({rounds} batches of 100): " + ", ".join(figures)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--load", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    ap.add_argument("--profile", action="store_true", help="cProfile of serve() in-process (printed)")
    ap.add_argument("--py-spy", metavar="DIR", help="py-spy profiles of the API process during each load")
    ap.add_argument("--skip-in-process", action="store_true", help="no serve() in-process figures")
    ap.add_argument(
        "--asgi", type=int, default=0, metavar="CALLS",
        help="also CALLS calls into the API app in this process (no HTTP): its CPU per call",
    )  # fmt: skip
    ap.add_argument("--asgi-profile", metavar="DIR", help="cProfile of those ASGI calls (DIR/<what>-asgi.txt)")
    ap.add_argument(
        "--layer", type=int, default=0, metavar="ROUNDS",
        help="only the API layer's CPU per request (serve() stubbed, no stack), ROUNDS batches of 100",
    )  # fmt: skip
    ap.add_argument("--drive", nargs=3, metavar=("BASE", "SERVICE", "KEY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:  # the python load generator, in its own process (its own core's share)
        out = asyncio.run(drive(*args.drive, args.rows, args.seconds, args.concurrency))
        print(json.dumps(out))
        return
    from deploy.components.clickhouse import ClickHouse
    from sinks.clickhouse import client_from_url

    settings = get_settings()
    if args.layer:  # no stack needed
        print(f"{api_layer(settings, args.layer)} (load average {os.getloadavg()[0]:.1f})")
        return
    Stack(settings).up(progress=False)
    client = client_from_url(settings.clickhouse_url)
    load(client, args.rows)
    p50, p99 = bare_query(client, args.rows)
    print(f"bare ClickHouse query (read_rows, id = ?, FINAL, one connection): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    clickhouse = ClickHouse(settings)
    clickhouse_log = Path(clickhouse.log_path)
    try:
        clickhouse_pid = int(Path(clickhouse.pid_path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        clickhouse_pid = None
    port = args.port or settings.api_port + 7
    proc = start_api(settings, port)
    base = f"http://127.0.0.1:{port}"
    op = {"X-API-Key": (settings.state_dir / "api_key").read_text().strip()}
    print(
        f"load generator: {args.load}, {args.concurrency} connections, {args.seconds:g} s each; "
        f"API workers: {settings.api_workers}; API RSS after start {rss_mb(proc.pid):.0f} MB",
        flush=True,
    )
    spy_dir = Path(args.py_spy) if args.py_spy else None
    if spy_dir:
        spy_dir.mkdir(parents=True, exist_ok=True)
    try:
        for masked in (None, False, True):
            svc = json.loads(publish(base, op, masked)) if masked is not None else {"service": "-", "key": "-"}
            what = {None: "GET /livez (floor)", False: "plain", True: "masked"}[masked]
            if masked is not None:  # warm: the worker's ClickHouse connection, the caches
                for _ in range(20):
                    httpx.get(
                        f"{base}/services/{svc['service']}/v1", params={"id": "1"}, headers={"X-App-Key": svc["key"]}
                    )
            name = what.split()[0].strip("/")
            if args.seconds > 0:
                load_avg = os.getloadavg()[0]
                log_start = clickhouse_log.stat().st_size if clickhouse_log.exists() else 0
                spy = py_spy(proc.pid, args.seconds, spy_dir / f"{name}.txt") if spy_dir else None
                driver = wrk_drive if args.load == "wrk" else python_drive
                api_cpu, ch_cpu = cpu_s(proc.pid), cpu_s(clickhouse_pid, False) if clickhouse_pid else 0.0
                result = driver(base, svc["service"], svc["key"], args.rows, args.seconds, args.concurrency)
                calls = max(1, result["calls"] + result["errors"])
                result["api_cpu_ms_per_call"] = round((cpu_s(proc.pid) - api_cpu) * 1000 / calls, 2)
                if clickhouse_pid:
                    ch_ms = (cpu_s(clickhouse_pid, False) - ch_cpu) * 1000 / calls
                    result["clickhouse_cpu_ms_per_call"] = round(ch_ms, 2)
                rss = rss_mb(proc.pid)
                print(f"{what}: {result} (load average before: {load_avg:.1f}; API RSS {rss:.0f} MB)", flush=True)
                if spy is not None:
                    spy.wait(60)
                    out = spy_dir / f"{name}.txt"
                    if out.exists():
                        out.with_name(out.stem + "-top.txt").write_text(top_of(out))
                if masked is not None and clickhouse_log.exists():
                    n, q50, q99, qmax = clickhouse_times(clickhouse_log, log_start)
                    print(
                        f"{what}, the ClickHouse query's own time (server log, {n} queries during the load): "
                        f"p50 {q50:.1f} ms, p99 {q99:.1f} ms, max {qmax:.1f} ms",
                        flush=True,
                    )
            if args.asgi:
                out = None
                if args.asgi_profile:
                    Path(args.asgi_profile).mkdir(parents=True, exist_ok=True)
                    out = str(Path(args.asgi_profile) / f"{name}-asgi.txt")
                figure = in_process_asgi(settings, svc["service"], svc["key"], args.rows, args.asgi, out)
                print(
                    f"{what}, the API app called in-process through ASGI (no HTTP), 4 at a time: {figure}", flush=True
                )
            if masked is not None and not args.skip_in_process:
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
