"""Real-time subscriptions as server-sent events through real HTTP (issue 17): `--subscribers` SSE
streams of one service's clean topic, each receiving only its application's granted fields, masked.

    HUILIU_STATE_DIR=/tmp/bench-sse PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_service_sse.py \
        --subscribers 20 --rate 1000 --seconds 20

The issue's figure: 20 SSE subscribers at 20,000 events/s in total, p99 delivery under 1 s. Every
subscriber reads the whole topic (an SSE stream is a reader of its own on the API), so 20,000
events/s in total is 1,000 events/s produced to the topic, delivered to each of the 20.

`--views N` gives the subscribers N different grants (fields left out, a row filter), each its own
event text: the API shares one reader per topic and renders each distinct grant once per record
(streams/dataservices/fanout.py), so N=1 (every application granted the same) is its cheapest case
and N=16 is near its dearest here.

Uses the local stack of the HUILIU_* settings (started if needed) and starts the API as its own
process (`python -m api.cli api`). Registers the topic's envelope schema (the clean topics' shape:
{before, after, op}), publishes a service over a table and that topic, masking name, id_number and
phone, and approves `--subscribers` applications, each granted id, name, phone, division_code and
sent_ms (id_number never). The subscribers (asyncio httpx streams in a process of their own) open
their streams (`start=latest`); then `--rate` changes/s are produced for `--seconds`, each carrying
its send time (`sent_ms`). Printed: events delivered per second in total, delivery latency p50 /
p99 / max (receipt minus send time, same clock), events missing per subscriber, events whose
fields are not exactly the granted ones or whose masked fields arrived clear (must be 0), and the
API's CPU and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_services import PASSWORD, cpu_s, rss_mb, start_api  # noqa: E402

from deploy.settings import get_settings  # noqa: E402
from deploy.stack import Stack  # noqa: E402

GRANTED = ["id", "name", "phone", "division_code", "sent_ms"]
OPTIONAL = ["name", "phone", "division_code"]


def grant_of(i: int, views: int) -> tuple[list[str], dict]:
    """Subscriber i's fields and row filter: `views` distinct grants (at most 16) over the subscribers."""
    v = i % views
    left_out = {f for bit, f in enumerate(OPTIONAL) if v & (1 << bit)}
    row_filter = {"division_code": "370102"} if v & 8 else {}
    return [f for f in GRANTED if f not in left_out], row_filter


ROW = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "id_number", "type": "string"},
        {"name": "phone", "type": "string"},
        {"name": "division_code", "type": "string"},
        {"name": "sent_ms", "type": "double"},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "fields": [
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Row"], "default": None},
        {"name": "op", "type": "string"},
    ],
}
NAME, PHONE, ID_NUMBER = "欧阳娜娜", "13712345678", "370102199001011234"


def setup(
    base: str, op: dict, clickhouse_url: str, topic: str, subscribers: int, views: int = 1
) -> tuple[str, list[str]]:
    """The table, the service over it and the topic, published; `subscribers` approved keys."""
    from sinks.clickhouse import client_from_url

    run = uuid.uuid4().hex[:6]
    table = f"bench_sse_{run}"
    client = client_from_url(clickhouse_url)
    client.execute(
        f"CREATE TABLE {table} (id Int64, name String, id_number String, phone String, division_code String, "
        "sent_ms Float64, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    client.disconnect()
    tenant = f"bsse{run}"
    people = {}
    for who in ("author", "reviewer"):
        name = f"bench-sse-{who}-{run}"
        body = {"username": name, "password": PASSWORD, "tenant": tenant, "roles": ["admin"]}
        assert httpx.post(base + "/users", headers=op, json=body).status_code == 201
        token = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
        people[who] = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    service = f"residents_live_{run}"
    doc = {
        "name": service,
        "resource": {"kind": "clickhouse", "table": table, "topic": topic},
        "fields": ["id", "name", "id_number", "phone", "division_code", "sent_ms"],
        "filters": [{"field": "id", "ops": ["eq"]}],
        "sort": ["id"],
        "masking": {"name": "name", "id_number": "id_number", "phone": "phone"},
        "rate_limit": {"rate": 100000, "burst": 100000},
    }
    author = people["author"]
    assert author.post("/services", json=doc).status_code == 201
    assert author.post(f"/services/{service}/submit").status_code == 200
    assert people["reviewer"].post(f"/services/{service}/review", json={"approve": True}).status_code == 200
    keys = []
    for i in range(subscribers):
        r = author.post(
            f"/services/{service}/applications",
            json={"application": f"live_{run}_{i}", "version": 1, "purpose": "bench", "fields": doc["fields"]},
        )
        fields, row_filter = grant_of(i, views)
        decision = {"approve": True, "fields": fields, "row_filter": row_filter}
        r = author.post(f"/services/applications/{r.json()['id']}/decision", json=decision)
        assert r.status_code == 200, r.text
        keys.append(r.json()["key"])
    return service, keys


async def subscribe(
    base: str, service: str, keys: list[str], expect: int, wait_s: float, ready: Path, views: int = 1
) -> dict:
    """Every key's stream until it has `expect` events or `wait_s` passed after the first event."""
    latencies: list[float] = []
    counts = [0] * len(keys)
    wrong = 0
    connected = 0
    first: list[float] = []
    last = [0.0]

    async def one(i: int, client: httpx.AsyncClient):
        nonlocal wrong, connected
        url = f"{base}/services/{service}/v1/stream"
        async with client.stream("GET", url, headers={"X-App-Key": keys[i]}, params={"start": "latest"}) as r:
            assert r.status_code == 200, await r.aread()
            pending = b""
            announced = False
            async for chunk in r.aiter_raw():
                if not announced:
                    connected += 1
                    announced = True
                    if connected == len(keys):
                        ready.write_text("ready")
                now = time.time() * 1000
                pending += chunk
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if not line.startswith(b"data: "):
                            continue
                        body = json.loads(line[6:])
                        row = body.get("row") or {}
                        if (
                            sorted(row) != sorted(grant_of(i, views)[0])
                            or NAME in row.values()
                            or PHONE in row.values()
                        ):
                            wrong += 1
                        latencies.append(now - row.get("sent_ms", now))
                        counts[i] += 1
                        if not first:
                            first.append(now)
                        last[0] = now
                if counts[i] >= expect:
                    return
                if first and now - first[0] > wait_s * 1000:
                    return

    limits = httpx.Limits(max_connections=len(keys) + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=120), limits=limits) as client:
        tasks = [asyncio.create_task(one(i, client)) for i in range(len(keys))]
        done, pending = await asyncio.wait(tasks, timeout=wait_s + 120)
        for t in pending:
            t.cancel()
    latencies.sort()
    n = len(latencies)
    return {
        "events": n,
        "seconds": round((last[0] - first[0]) / 1000, 2) if first else 0,
        "per_subscriber_min": min(counts),
        "per_subscriber_max": max(counts),
        "wrong_fields_or_clear": wrong,
        "p50_ms": round(latencies[n // 2], 1) if n else None,
        "p99_ms": round(latencies[int(n * 0.99)], 1) if n else None,
        "max_ms": round(latencies[-1], 1) if n else None,
    }


def producer_for(bootstrap: str, registry: str, topic: str):
    from confluent_kafka import Producer

    from schemas.naming import value_subject
    from schemas.serde import WireCodec

    codec = WireCodec(registry)
    schema_id = codec.register(value_subject(topic), ENVELOPE)
    return codec, schema_id, Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})


def produce(codec, schema_id, producer, topic: str, rate: int, seconds: float) -> int:
    """`rate` changes per second for `seconds`, paced every 10 ms, each with its send time."""
    sent = 0
    started = time.time()
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.time() - started) * rate) + 1)
        while sent < due:
            row = {
                "id": sent,
                "name": NAME,
                "id_number": ID_NUMBER,
                "phone": PHONE,
                "division_code": "370102",
                "sent_ms": time.time() * 1000,
            }
            value = codec.encode(schema_id, {"before": None, "after": row, "op": "c"})
            producer.produce(topic, key=str(sent).encode(), value=value)
            sent += 1
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(60)
    return sent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=20)
    ap.add_argument("--rate", type=int, default=1000, help="changes per second produced to the topic")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--views", type=int, default=1, choices=range(1, 17), help="distinct grants among the subscribers")
    ap.add_argument(
        "--subscribe", nargs=5, metavar=("BASE", "SERVICE", "KEYS", "EXPECT", "READY"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.subscribe:  # the subscribers, in a process of their own
        base, service, keys, expect, ready = args.subscribe
        out = asyncio.run(
            subscribe(base, service, keys.split(","), int(expect), args.seconds + 30, Path(ready), args.views)
        )
        print(json.dumps(out))
        return
    settings = get_settings()
    Stack(settings).up(progress=False)
    port = args.port or settings.api_port + 8
    proc = start_api(settings, port)
    base = f"http://127.0.0.1:{port}"
    op = {"X-API-Key": (settings.state_dir / "api_key").read_text().strip()}
    topic = f"clean.bench_sse_{uuid.uuid4().hex[:6]}"
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        service, keys = setup(base, op, settings.clickhouse_url, topic, args.subscribers, args.views)
        expect = int(args.rate * args.seconds)
        ready = settings.state_dir / f"sse-ready-{uuid.uuid4().hex[:6]}"
        subscribers = subprocess.Popen(
            [sys.executable, __file__, "--subscribe", base, service, ",".join(keys), str(expect), str(ready),
             "--seconds", str(args.seconds), "--views", str(args.views)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "."},
        )  # fmt: skip
        deadline = time.time() + 120
        while not ready.exists() and time.time() < deadline and subscribers.poll() is None:
            time.sleep(0.2)
        if not ready.exists():
            raise SystemExit("the subscribers did not all connect")
        codec, schema_id, producer = producer_for(settings.kafka_bootstrap, settings.schema_registry_url, topic)
        producer.produce(topic, key=b"-", value=b"not avro: skipped by the streams")  # metadata, a first batch
        producer.flush(30)
        time.sleep(2.0)
        load_avg = os.getloadavg()[0]
        cpu = cpu_s(proc.pid)
        started = time.time()
        sent = produce(codec, schema_id, producer, topic, args.rate, args.seconds)
        produced_s = time.time() - started
        out, _ = subscribers.communicate(timeout=args.seconds + 300)
        result = json.loads(out.strip().splitlines()[-1])
        api_cpu = cpu_s(proc.pid) - cpu
        result["events_per_s_total"] = round(result["events"] / max(result["seconds"], produced_s), 1)
        result["api_cpu_s_per_s"] = round(api_cpu / max(result["seconds"], produced_s), 2)
        result["api_cpu_us_per_event"] = round(api_cpu / max(result["events"], 1) * 1e6, 1)
        print(
            f"produced {sent:,} changes in {produced_s:.1f} s ({sent / produced_s:,.0f}/s) to one partition; "
            f"{args.subscribers} subscribers, each expecting {expect:,}",
            flush=True,
        )
        print(
            f"SSE delivery: {result} (load average before: {load_avg:.1f}, after: {os.getloadavg()[0]:.1f}; "
            f"API RSS {rss_mb(proc.pid):.0f} MB; {args.views} distinct grant(s))"
        )
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
