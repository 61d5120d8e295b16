"""The Flink runner against the lean runner, same topic, same run (issue 19).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_flink_runner.py --events 100000

Publishes bench_runner.py's population-register change events (10 rules + 3 transforms, a few
percent bad) to a 2-partition topic, then runs one after another:
  lean x1         the lean runner in one worker process (bench_runner.run: events / (last - first batch))
  flink p=1, p=2  the Flink runner (streams/flink/runner_job.py) on a local mini-cluster, bounded at
                  the topic's end offsets; the outputs on the clean and quarantine topics are counted
                  every 0.5 s: events / (time the last output was seen - time the first was seen).
                  The JVM and Python workers' start is reported apart (`startup_s`: launch -> first output).
Every run reads the same input with its own consumer group; the outputs of all runs land on the same
clean and quarantine topics (each run's count is the growth of their end offsets).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_runner import RULES, TRANSFORMS, publish  # noqa: E402
from tests.benchmarks.bench_runner import run as run_lean  # noqa: E402


def output_count(bootstrap: str, topic: str) -> int:
    """Records on the clean and quarantine topics of `topic`, all partitions (end offsets read off the log)."""
    from confluent_kafka.admin import AdminClient

    from api.lag import end_offsets
    from schemas.naming import clean_topic, quarantine_topic

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    parts = [(t, p) for t in (clean_topic(topic), quarantine_topic(topic)) if t in meta for p in meta[t].partitions]
    return sum(mark[1] for mark in end_offsets(bootstrap, parts).values())


def run_flink(settings, python: str, jars: list[str], topic: str, events: int, parallelism: int) -> dict:
    from api.lag import end_offsets

    bootstrap = settings.kafka_bootstrap
    ends = end_offsets(bootstrap, [(topic, 0), (topic, 1)])
    config = {
        "name": f"bench-flink-p{parallelism}",
        "pipeline": "bench",
        "topics": [topic],
        "transforms": TRANSFORMS,
        "rules": RULES,
        "kafka": {"bootstrap": bootstrap, "group_id": f"bench-flink-{uuid.uuid4().hex[:6]}"},
        "schema_registry_url": settings.schema_registry_url,
        "parallelism": parallelism,
        "batch_size": 5000,
        "checkpoint_interval_seconds": 0,
        "end_offsets": {topic: {p: ends[(topic, p)][1] for p in (0, 1)}},  # (low, end, method)
        "jars": jars,
    }
    before = output_count(bootstrap, topic)
    log_dir = Path(os.environ.get("TMPDIR") or "/tmp")
    log = open(log_dir / f"bench-flink-p{parallelism}.log", "w")  # noqa: SIM115 (closed below)
    launched = time.time()
    proc = subprocess.Popen(
        [python, "-m", "streams.flink.runner_job", "--config-json", json.dumps(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    first = last = None
    seen = 0
    while True:
        done = proc.poll() is not None
        seen = output_count(bootstrap, topic) - before
        now = time.time()
        if seen and first is None:
            first = now
        if seen >= events:
            last = last or now
        if done or last:
            break
        time.sleep(0.5)
    rc = proc.wait(timeout=600)
    log.close()
    span = (last or time.time()) - (first or launched)
    return {
        "mode": "flink",
        "parallelism": parallelism,
        "events": seen,
        "rc": rc,
        "startup_s": round((first or launched) - launched, 1),
        "seconds": round(span, 2),
        "events_per_s": round(seen / span) if span > 0 else None,
        "wall_s": round(time.time() - launched, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--parallelism", default="1,2")
    args = ap.parse_args()
    from deploy.settings import get_settings
    from deploy.stack import Stack

    settings = get_settings()
    Stack(settings).up(progress=False, only=["objectstore", "broker", "registry"])
    setup = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "flink" / "setup.py"), "--json"], capture_output=True, text=True
    )
    flink = json.loads(setup.stdout.strip().splitlines()[-1])
    t0 = time.time()
    topic = publish(settings, f"people_{uuid.uuid4().hex[:6]}", args.events)
    print(f"published {args.events} events to {topic} in {time.time() - t0:.1f}s", flush=True)
    print(json.dumps(run_lean("lean", 1, topic, args.events)), flush=True)
    for p in args.parallelism.split(","):
        print(json.dumps(run_flink(settings, flink["python"], flink["jars"], topic, args.events, int(p))), flush=True)


if __name__ == "__main__":
    main()
