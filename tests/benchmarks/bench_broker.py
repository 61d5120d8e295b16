"""The price of a durable local broker: tansu on SeaweedFS (s3://) against tansu in memory, same run.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_broker.py --messages 200000 --size 300

For each storage it starts its own stack (object store + broker only, ports --port-base + 0/1000)
and measures with confluent-kafka: produce (acks=all, lz4, as the sources publish), consume from
the start by a fresh group, and one pipeline hop (consume -> produce to a second topic, what a
runner does per event, commits included). Prints msgs/s and MB/s per step and the ratio
durable / memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.settings import Settings
from deploy.stack import Stack

PRODUCER = {"acks": "all", "compression.type": "lz4", "linger.ms": 20, "batch.size": 1_000_000}


def produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    payload = b"x" * size
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=payload)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "not every message was acknowledged"
    return time.perf_counter() - start


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


def consume(bootstrap: str, topic: str, n: int, relay_to: str | None = None) -> float:
    """Seconds from the first message to the n-th (the group join is not counted)."""
    c = consumer(bootstrap, f"bench-{uuid.uuid4().hex[:6]}")
    out = Producer({"bootstrap.servers": bootstrap, **PRODUCER}) if relay_to else None
    c.subscribe([topic])
    got, first = 0, None
    deadline = time.monotonic() + 300
    while got < n and time.monotonic() < deadline:
        batch = [m for m in c.consume(10_000, 1.0) if m.error() is None]
        if batch and first is None:
            first = time.perf_counter()
        if out is not None and batch:
            for m in batch:
                out.produce(relay_to, key=m.key(), value=m.value())
            out.flush(60)
            c.commit(asynchronous=False)
        got += len(batch)
    c.close()
    assert got >= n, f"consumed {got} of {n}"
    return time.perf_counter() - first


def measure(storage: str, port_base: int, n: int, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-broker-{storage}-") as state:
        settings = Settings(
            state_dir=Path(state), kafka_bootstrap=f"127.0.0.1:{port_base + 92}", broker_storage=storage
        )
        stack = Stack(settings)
        only = ["objectstore", "broker"] if storage == "s3" else ["broker"]
        stack.up(progress=False, only=only)
        try:
            bootstrap = settings.kafka_bootstrap
            topics = [f"bench-{storage}-{k}-{uuid.uuid4().hex[:6]}" for k in ("in", "out")]
            admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
            for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
                future.result(30)
            return {
                "produce": n / produce(bootstrap, topics[0], n, size),
                "consume": n / consume(bootstrap, topics[0], n),
                "hop": n / consume(bootstrap, topics[0], n, relay_to=topics[1]),
            }
        finally:
            stack.down(only=only)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=300, help="value bytes (a change event is ~200-400)")
    ap.add_argument("--port-base", type=int, default=21500)
    args = ap.parse_args(argv)
    results = {
        "memory": measure("memory", args.port_base, args.messages, args.size),
        "s3": measure("s3", args.port_base + 1000, args.messages, args.size),
    }
    mb = args.size / 1e6
    print(f"{args.messages} messages of {args.size} B, one partition")
    print(f"{'step':<8} {'memory msg/s':>14} {'durable msg/s':>14} {'durable MB/s':>13} {'ratio':>6}")
    for step in ("produce", "consume", "hop"):
        m, d = results["memory"][step], results["s3"][step]
        print(f"{step:<8} {m:>14,.0f} {d:>14,.0f} {d * mb:>13.1f} {d / m:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
