"""In-process benchmark of BatchProcessor.process: Avro in -> 10 rules + 3 transforms -> Avro out.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_processor.py [--events 100000] [--batch 5000]
        [--repeat 3] [--profile]

No broker and no registry process: the codec talks to confluent-kafka's in-memory mock registry
("mock://"), the population-register events (deploy/demo/seed.py person(), a few percent bad) are
encoded once up front, then every batch of `--batch` messages goes through the same processor.
Reported: events/s (best of --repeat passes; the machine may be shared, so compare runs made
back to back rather than absolute figures), the split, and peak RSS. --profile prints the top of
a cProfile of one pass instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.bench_runner import RULES, TRANSFORMS  # noqa: E402
from tests.benchmarks.profiling import peak_rss_mb  # noqa: E402


def make_messages(n: int, seed: int = 1, now: datetime | None = None):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from connectors.base import CapturedTable
    from deploy.demo.seed import person, population
    from schemas.envelope import envelope_schema, make_event
    from schemas.naming import topic_name, value_subject
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from streams.processor import RawMessage

    cols = tuple(ColumnSpec(c.name, c.type, bool(c.nullable), bool(c.primary_key)) for c in population.columns)
    table = CapturedTable("bench", "people", cols, "bench", "public")
    topic = topic_name("huiliu", table.system, table.schema, table.table)
    codec = WireCodec(SchemaRegistryClient.new_client({"url": "mock://bench-processor"}))
    value_id = codec.register(value_subject(topic), envelope_schema("bench", "public", "people", list(cols)))
    rng = random.Random(seed)
    now = now or datetime.now().replace(microsecond=0)
    messages = []
    for i in range(1, n + 1):
        source = {
            "system": "bench",
            "database": "bench",
            "schema": "public",
            "table": "people",
            "connector": "bench",
            "position": json.dumps({"i": i}),
            "sequence": i,
            "snapshot": True,
        }
        event = make_event("r", None, person(i, rng, now), 1_764_000_000_000, source)
        messages.append(RawMessage(topic, i % 2, i // 2, str(i).encode(), codec.encode(value_id, event)))
    return codec, messages


def one_pass(processor, messages, batch: int) -> tuple[float, dict, float]:
    """(wall seconds, split counts, CPU seconds of this process: all threads, polars' included)."""
    totals: dict[str, int] = {}
    c0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(messages), batch):
        for k, v in processor.process(messages[start : start + batch]).counts().items():
            totals[k] = totals.get(k, 0) + v
    return time.perf_counter() - t0, totals, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()

    from streams.processor import BatchProcessor

    t0 = time.perf_counter()
    codec, messages = make_messages(args.events)
    print(f"encoded {len(messages)} events in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    processor = BatchProcessor(codec, TRANSFORMS, RULES, stage="bench")
    one_pass(processor, messages[: args.batch], args.batch)  # warm-up: schema look-ups, polars init

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        seconds, totals, _ = one_pass(processor, messages, args.batch)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        print(json.dumps({"profiled_seconds": round(seconds, 2), **totals}))
        return

    runs, cpu = [], []
    for _ in range(args.repeat):
        seconds, totals, cpu_seconds = one_pass(processor, messages, args.batch)
        runs.append(seconds)
        cpu.append(cpu_seconds)
    best = min(runs)
    print(
        json.dumps(
            {
                "events": len(messages),
                "batch": args.batch,
                "events_per_s_best": round(len(messages) / best),
                "events_per_s_median": round(len(messages) / sorted(runs)[len(runs) // 2]),
                "events_per_cpu_s_best": round(len(messages) / min(cpu)),
                "seconds": [round(s, 2) for s in runs],
                "cpu_seconds": [round(s, 2) for s in cpu],
                "split": totals,
                "peak_rss_mb": round(peak_rss_mb()),
            }
        )
    )


if __name__ == "__main__":
    main()
