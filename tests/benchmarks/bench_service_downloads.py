"""A 5M-row CSV download of a data service through real HTTP, and the API process's memory (issue 17).

    HUILIU_STATE_DIR=/tmp/bench-dl HUILIU_CLICKHOUSE_URL=clickhouse://default:@127.0.0.1:27500/default \
    HUILIU_CLICKHOUSE_HTTP_PORT=27623 HUILIU_KAFKA_BOOTSTRAP=127.0.0.1:27592 \
    HUILIU_SCHEMA_REGISTRY_URL=http://127.0.0.1:27581 HUILIU_API_PORT=27600 \
    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_service_downloads.py --rows 5000000 [--format csv]

Uses the ClickHouse of the HUILIU_* settings (started if needed, stopped again after), loads `rows` rows into a
ReplacingMergeTree table (kept between runs), publishes a service masking name, phone and citizen
ID, approves an application, starts the API as its own process and downloads
`GET /services/{name}/v1/download?format=csv` streamed to /dev/null, sampling the API process's RSS
every 0.1 s (/proc/<pid>/status). Prints rows, bytes, seconds, rows/s, the API's RSS before and its
peak during the download (VmHWM: the whole life of the process, start-up included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

import httpx

from deploy.settings import get_settings, settings_env  # noqa: E402
from deploy.stack import Stack  # noqa: E402

TABLE = "bench_services_people"  # bench_services.py's table and columns
PASSWORD = "Bench-Services-Pass-42"
FIELDS = ["id", "citizen_id", "name", "phone", "division", "amount"]


def publish(base: str, op: dict) -> dict:
    """A service over the whole table (no required filter), masking citizen_id, name and phone, and
    an approved application's key."""
    run = uuid.uuid4().hex[:6]
    tenant, clients = f"benchdl{run}", {}
    for who in ("author", "reviewer"):
        name = f"benchdl-{who}-{run}"
        user = {"username": name, "password": PASSWORD, "tenant": tenant, "roles": ["admin"]}
        assert httpx.post(base + "/users", headers=op, json=user, timeout=60).status_code == 201
        token = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD}, timeout=60)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        clients[who] = httpx.Client(base_url=base, headers=headers, timeout=60)
    service = f"people_download_{run}"
    doc = {
        "name": service,
        "resource": {"table": TABLE},
        "fields": FIELDS,
        "filters": [{"field": "id", "ops": ["eq", "range"]}],
        "sort": ["id"],
        "masking": {"citizen_id": "id_number", "name": "name", "phone": "phone"},
        "rate_limit": {"rate": 1000, "burst": 1000},
    }
    author, reviewer = clients["author"], clients["reviewer"]
    assert author.post("/services", json=doc).status_code == 201
    assert author.post(f"/services/{service}/submit").status_code == 200
    assert reviewer.post(f"/services/{service}/review", json={"approve": True}).status_code == 200
    app = {"application": f"benchdl_{run}", "version": 1, "purpose": "bench", "fields": FIELDS}
    r = author.post(f"/services/{service}/applications", json=app)
    r = author.post(f"/services/applications/{r.json()['id']}/decision", json={"approve": True})
    assert r.status_code == 200, r.text
    return {"service": service, "key": r.json()["key"]}


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


def start_api(settings, port: int, wait_s: float = 300) -> subprocess.Popen:
    """The API as its own process (a loaded machine can take minutes to start it)."""
    env = {**os.environ, **settings_env(settings), "HUILIU_API_PORT": str(port)}
    log = open(settings.state_dir / f"bench-api-{port}.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("API did not start")


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args()
    from sinks.clickhouse import client_from_url

    settings = get_settings()
    stack = Stack(settings)
    started_here = not stack.components["clickhouse"].answering(timeout=1.0)[0]
    stack.up(progress=False, only=["clickhouse"])  # the download needs no broker
    client = client_from_url(settings.clickhouse_url)
    load(client, args.rows)
    client.disconnect()
    port = args.port or settings.api_port + 9
    proc = start_api(settings, port)
    base = f"http://127.0.0.1:{port}"
    op = {"X-API-Key": (settings.state_dir / "api_key").read_text().strip()}
    try:
        svc = publish(base, op)
        before = status_kb(proc.pid, "VmRSS")
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], status_kb(proc.pid, "VmRSS"))
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        load_avg = os.getloadavg()[0]
        started = time.perf_counter()
        size, lines = 0, 0
        with httpx.stream(
            "GET",
            f"{base}/services/{svc['service']}/v1/download",
            params={"format": args.format},
            headers={"X-App-Key": svc["key"]},
            timeout=httpx.Timeout(60, read=600),
        ) as r:
            assert r.status_code == 200, r.read()[:500]
            for chunk in r.iter_bytes():
                size += len(chunk)
                lines += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        done.set()
        rows = lines - 1 if args.format == "csv" else int(r.headers["x-row-count"])
        print(
            f"{args.format} download: {rows:,} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s "
            f"({rows / elapsed:,.0f} rows/s); API RSS before {before / 1024:.0f} MB, "
            f"peak during {peak[0] / 1024:.0f} MB, VmHWM {status_kb(proc.pid, 'VmHWM') / 1024:.0f} MB "
            f"(load average before: {load_avg:.1f}, {os.cpu_count()} cores)",
            flush=True,
        )
    finally:
        proc.terminate()
        proc.wait(20)
        if started_here:
            stack.down(only=["clickhouse"])


if __name__ == "__main__":
    main()
