"""Sustained overload: the sink's store paused (ClickHouse stopped with SIGSTOP) under a steady load.

    .venv/bin/python tests/benchmarks/bench_overload.py --rate 8000 --warm 30 --stall 120 --catchup 120

Issue 19: a pipeline (raw topic -> lean runner, 10 rules + 3 transforms -> clean topic ->
ClickHouse sink), its runner and sink each a process of their own (`huiliu pipeline runner|sink`),
fed by a paced publisher at `--rate` population-register events/s for warm + stall + catchup
seconds. After `--warm` s ClickHouse is stopped (SIGSTOP, the process frozen: connections hang
rather than fail) for `--stall` s, then continued. Every second it samples the rows in ClickHouse
and the resident memory of the runner, the sink and the broker. Reports the backlog at the end of
the stall, each process's peak RSS before and during the stall (bounded queues: flat), the
catch-up rate (rows/s written from the continue until the sink is back at the offered rate), and
checks nothing was lost: ClickHouse FINAL rows + quarantined records = events published, each id
once. Prints one JSON line (`--json`) or a table; exit status 1 when the check fails.

Uses the local stack of the HUILIU_* settings (started if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import yaml

from connectors.base import CapturedTable, ChangeEvent, SourceBatch, SourceTask
from connectors.runtime import SourceRuntime
from deploy.clickhouse import client_from_url
from deploy.demo.seed import person, population
from deploy.settings import get_settings, settings_env
from deploy.stack import Stack
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from tests.benchmarks.bench_runner import RULES, TRANSFORMS


class PacedSourceTask(SourceTask):
    """Population-register rows at `rate` per second until `seconds` passed (ids 1, 2, ...)."""

    def __init__(self, table: CapturedTable, rate: int, seconds: float):
        self.name, self.table, self.rate, self.seconds = f"overload-{table.table}", table, rate, seconds
        self.rng, self.now, self.sent = random.Random(1), datetime.now().replace(microsecond=0), 0
        self.started = time.monotonic()

    def start(self, offsets):
        self.started = time.monotonic()

    def poll(self) -> SourceBatch:
        elapsed = time.monotonic() - self.started
        due = int(min(elapsed, self.seconds) * self.rate) - self.sent
        if due <= 0:
            return SourceBatch()
        ids = range(self.sent + 1, self.sent + min(due, 20_000) + 1)
        self.sent = ids[-1]
        events = [ChangeEvent(self.table, "r", None, person(i, self.rng, self.now), 0, {"i": i}, i, True) for i in ids]
        return SourceBatch(events, {"paced": {"sent": self.sent}})

    @property
    def done(self) -> bool:
        return time.monotonic() - self.started >= self.seconds and self.sent >= int(self.seconds * self.rate)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def ch_rows(url: str, table: str) -> int | None:
    """Rows in the table, or None while ClickHouse does not answer within a second."""
    client = client_from_url(url, connect_timeout=1, send_receive_timeout=1)
    try:
        return int(client.execute(f"SELECT count() FROM {table}")[0][0])
    except Exception:
        return None
    finally:
        client.disconnect()


def count_topic(bootstrap: str, topic: str, idle: float = 5.0) -> int:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    n, last = 0, time.monotonic()
    while time.monotonic() - last < idle or n == 0 and time.monotonic() - last < 60:
        batch = consumer.consume(10_000, 1.0)
        if batch:
            n += sum(1 for m in batch if not m.error())
            last = time.monotonic()
    consumer.close()
    return n


def pipeline_document(name: str, table: str) -> dict:
    return {
        "name": name,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": "sqlite://",
                "system": "bench",
                "db_schema": "public",
                "table": table,
                "timestamp_column": "u",
            },
        },
        "transforms": TRANSFORMS,
        "rules": RULES,
        "sink": {"kind": "clickhouse", "config": {"table": table}},
    }


def run(rate: int, warm: float, stall: float, catchup: float, workdir: Path) -> dict:
    settings = get_settings()
    stack = Stack(settings)
    stack.up(progress=False)
    name = f"overload_{uuid.uuid4().hex[:6]}"
    spec_path = workdir / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(pipeline_document(name, name), allow_unicode=True))

    cols = tuple(ColumnSpec(c.name, c.type, bool(c.nullable), bool(c.primary_key)) for c in population.columns)
    table = CapturedTable("bench", name, cols, "bench", "public")
    task = PacedSourceTask(table, rate, warm + stall + catchup)
    source = SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
    )
    raw = source.prepare_table(table)
    env = {**os.environ, **settings_env(settings)}
    logs = open(workdir / f"{name}.log", "ab")
    stages = {
        stage: subprocess.Popen(
            [sys.executable, "-m", "api.cli", "pipeline", stage, str(spec_path), "--log-level", "warning"],
            env=env,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        for stage in ("runner", "sink")
    }
    clickhouse_pid = int((settings.state_dir / "run" / "clickhouse.pid").read_text())
    broker_pid = int((settings.state_dir / "run" / "broker.pid").read_text())
    pids = {**{s: p.pid for s, p in stages.items()}, "broker": broker_pid}

    stop = threading.Event()
    publisher = threading.Thread(target=lambda: source.run(stop, idle_seconds=0.02), daemon=True)
    samples: list[dict] = []
    started = time.monotonic()
    publisher.start()
    phase, stalled_at, continued_at = "warm", None, None
    try:
        while True:
            t = time.monotonic() - started
            if phase == "warm" and t >= warm:
                os.kill(clickhouse_pid, signal.SIGSTOP)
                phase, stalled_at = "stall", t
            elif phase == "stall" and t >= warm + stall:
                os.kill(clickhouse_pid, signal.SIGCONT)
                phase, continued_at = "catchup", t
            rows = None if phase == "stall" else ch_rows(settings.clickhouse_url, name)
            samples.append(
                {"t": round(t, 1), "phase": phase, "sent": task.sent, "rows": rows}
                | {f"rss_{k}": rss_mb(p) for k, p in pids.items()}
            )
            if task.done and phase == "catchup" and _settled(samples):
                break
            if t > warm + stall + catchup + 600:
                raise RuntimeError("the sink never caught up within 10 minutes of the load's end")
            time.sleep(1.0)
    finally:
        os.kill(clickhouse_pid, signal.SIGCONT)
        stop.set()
        publisher.join(30)
        for proc in stages.values():
            proc.terminate()
        for proc in stages.values():
            proc.wait(60)

    client = client_from_url(settings.clickhouse_url)
    final, distinct = client.execute(f"SELECT count(), uniqExact(person_id) FROM {name} FINAL")[0]
    client.disconnect()
    quarantined = count_topic(settings.kafka_bootstrap, raw + ".quarantine")
    return _report(rate, warm, stall, samples, stalled_at, continued_at, task.sent, final, distinct, quarantined)


def _settled(samples: list[dict]) -> bool:
    """Rows stopped growing for 10 s after the load ended."""
    tail = [s["rows"] for s in samples[-11:]]
    return len(tail) == 11 and None not in tail and tail[0] == tail[-1]


def _report(rate, warm, stall, samples, stalled_at, continued_at, sent, final, distinct, quarantined) -> dict:
    before = [s for s in samples if s["phase"] == "warm" and s["t"] >= warm / 2]
    during = [s for s in samples if s["phase"] == "stall"]
    after = [s for s in samples if s["phase"] == "catchup"]
    kept = 1 - quarantined / sent if sent else 1.0  # share of events that reach ClickHouse

    def backlog(s: dict) -> int:
        return round(s["sent"] * kept - (s["rows"] or 0))

    rows_at_stall = max((s["rows"] or 0) for s in samples if s["phase"] == "warm")
    at_continue = round(during[-1]["sent"] * kept - rows_at_stall) if during else 0
    # caught up: the first sample after the continue with no more than 2 s of load waiting
    caught = next((s for s in after if s["rows"] is not None and backlog(s) <= 2 * rate * kept), None)
    start_rows = next((s["rows"] for s in after if s["rows"] is not None), rows_at_stall)
    catchup = None
    if caught and caught["t"] > continued_at:
        seconds = caught["t"] - continued_at
        catchup = {"seconds": round(seconds, 1), "rows_per_s": round((caught["rows"] - start_rows) / seconds)}
    peaks = {}
    for key in [k for k in samples[0] if k.startswith("rss_")]:
        peaks[key[4:]] = {
            phase: round(max((s[key] or 0) for s in rows), 1) if rows else None
            for phase, rows in (("before_mb", before), ("during_stall_mb", during), ("catchup_mb", after))
        }
    return {
        "rate": rate,
        "stall_s": stall,
        "sent": sent,
        "backlog_at_continue": at_continue,
        "catchup": catchup,
        "rss": peaks,
        "clickhouse_final": final,
        "distinct_ids": distinct,
        "quarantined": quarantined,
        "nothing_lost": final + quarantined == sent and distinct == final,
        "stalled_at_s": stalled_at,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=8000, help="events/s offered")
    ap.add_argument("--warm", type=float, default=30)
    ap.add_argument("--stall", type=float, default=120, help="seconds ClickHouse stays stopped")
    ap.add_argument("--catchup", type=float, default=120, help="seconds the load goes on after the continue")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="huiliu-overload-") as workdir:
        report = run(args.rate, args.warm, args.stall, args.catchup, Path(workdir))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>22}: {value}")
    return 0 if report["nothing_lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
