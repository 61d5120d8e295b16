"""Runner throughput through the local broker: Avro in -> 10 rules + 3 transforms -> Avro out.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_runner.py --events 200000

Publishes population-register change events (a few percent bad) to a 2-partition topic, then
runs, one after another, each in fresh worker processes with their own consumer group:
  bare x1               the ceiling: the same consume -> produce -> flush -> commit loop with no
                        processing (confluent-kafka alone, the same batch size and settings)
  lean x1, lean x2      the confluent-kafka runner (streams/lean_runner.py), 1 and 2 processes
  faust-batch x1        the Faust runner (take_events micro-batches, streams/faust_runner.py)
  faust-event x1        a per-event Faust agent doing the same work (the baseline)
Each worker stops after IDLE (10) s without input and reports its count, first/last processing time
and peak RSS; the rate is events / (last - first) over all workers of a run.
BENCH_METRICS=1: the lean workers also write per-window quality metrics to ClickHouse (the cost of
quality_stream/metrics/writer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid

IDLE = 10.0  # seconds without input after which a worker reports and exits
BATCH = int(os.environ.get("BENCH_RUNNER_BATCH", "10000"))  # events a batch, bare and runners alike

RULES = [
    {"id": "name_required", "kind": "required", "fields": ["name"]},
    {"id": "name_length", "kind": "length", "fields": ["name"], "min": 2, "max": 20},
    {"id": "cid", "kind": "citizen_id", "fields": ["citizen_id"]},
    {"id": "cid_div", "kind": "id_division_known", "id_field": "citizen_id", "severity": "warn"},
    {"id": "cid_gender", "kind": "id_matches_birth_gender", "id_field": "citizen_id", "gender_field": "gender_code"},
    {"id": "gender", "kind": "gender_code", "fields": ["gender_code"]},
    {"id": "phone", "kind": "mobile", "fields": ["phone"]},
    {"id": "division", "kind": "division_code", "fields": ["division_code"]},
    {"id": "phone_regex", "kind": "regex", "fields": ["phone"], "pattern": r"^1[3-9]\d{9}$"},
    {"id": "gender_set", "kind": "in_set", "fields": ["gender_code"], "values": ["1", "2"], "severity": "warn"},
]
TRANSFORMS = [
    {"kind": "trim", "fields": ["name", "phone"]},
    {"kind": "normalise", "fields": ["name", "phone"]},
    {"kind": "standardise", "field": "gender_code", "mapping": {"男": "1", "女": "2"}},
]


def publish(settings, topic_table: str, n: int, row=None) -> str:
    """N population-register change events on a 2-partition raw topic; `row(i, rng, now)` makes
    each row (default: `deploy.demo.seed.person`)."""
    from connectors.base import CapturedTable, ChangeEvent
    from connectors.runtime import SourceRuntime
    from deploy.demo.seed import person, population
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from tests.sources import ListSourceTask

    cols = tuple(ColumnSpec(c.name, c.type, bool(c.nullable), bool(c.primary_key)) for c in population.columns)
    table = CapturedTable("bench", topic_table, cols, "bench", "public")
    rng = random.Random(1)
    from datetime import datetime

    now = datetime.now().replace(microsecond=0)
    row = row or person
    events = [
        ChangeEvent(table, "r", None, row(i, rng, now), 1_764_000_000_000, {"i": i}, i, True) for i in range(1, n + 1)
    ]
    runtime = SourceRuntime(
        ListSourceTask(f"bench-{topic_table}", events, 20000),
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
        partitions=2,
    )
    runtime.drain()
    return runtime.topic_of(table)


def report(count: int, first: float, last: float, cpu: float | None = None) -> None:
    """`cpu`: CPU seconds of the worker (all its threads) between its first and last batch."""
    from tests.benchmarks.profiling import peak_rss_mb

    rss = peak_rss_mb()
    # Faust redirects sys.stdout into its logger; the real stdout is where the parent reads.
    out = {"count": count, "first": first, "last": last, "rss_mb": rss, "cpu_s": cpu}
    sys.__stdout__.write(json.dumps(out) + "\n")
    sys.__stdout__.flush()


def worker_lean(settings, topic: str, group: str) -> None:
    from schemas.serde import WireCodec
    from streams.lean_runner import LeanRunner
    from streams.processor import BatchProcessor

    processor = BatchProcessor(WireCodec(settings.schema_registry_url), TRANSFORMS, RULES)
    metrics = None
    if os.environ.get("BENCH_METRICS") == "1":  # the per-window quality metrics writer (quality_stream/metrics)
        from quality_stream.metrics.writer import MetricsWriter

        metrics = MetricsWriter(settings.clickhouse_url, "bench", "bench-runner", topic, processor.rules)
    runner = LeanRunner(
        settings.kafka_bootstrap,
        group,
        [topic],
        processor,
        batch_size=BATCH,
        batch_seconds=0.2,
        consumer_extra={"session.timeout.ms": 6000},
        metrics=metrics,
    )
    runner.consumer.subscribe([topic])
    first = last = cpu_first = cpu_last = None
    idle_since = time.time()
    in_flight = False
    while time.time() - idle_since < IDLE or first is None and time.time() - idle_since < 90:
        if runner.step(commit_asynchronously=True):  # as run() does: the next batch is processed while one travels
            first, cpu_first = first or time.time(), cpu_first or time.process_time()
            idle_since, in_flight = time.time(), True
        elif in_flight:  # an empty poll (batch_seconds of waiting, not counted) settled the last batch
            last, in_flight, cpu_last = time.time() - runner.batch_seconds, False, time.process_time()
    runner.settle()
    runner.consumer.close()
    if metrics:
        metrics.close()
    report(runner.processed, first or 0, last or 0, cpu_last - cpu_first if cpu_last else None)


def worker_bare(settings, topic: str, group: str) -> None:
    """The lean runner's loop without the processor: every value produced unchanged to one topic."""
    from deploy.kafka import AckedProducer, batch_consumer, bounded_prefetch

    consumer = batch_consumer(settings.kafka_bootstrap, group, {**bounded_prefetch(BATCH), "session.timeout.ms": 6000})
    producer = AckedProducer(settings.kafka_bootstrap)
    consumer.subscribe([topic])
    out, count, first, last, idle_since = f"{topic}.bare", 0, None, None, time.time()
    cpu_first = cpu_last = None
    while time.time() - idle_since < IDLE or first is None and time.time() - idle_since < 90:
        messages = [m for m in consumer.consume(BATCH, 0.2) if not m.error()]
        if not messages:
            continue
        producer.produce_columns([out] * len(messages), [m.value() for m in messages], [m.key() for m in messages])
        producer.flush_acked()
        consumer.commit(asynchronous=False)
        count += len(messages)
        first, cpu_first = first or time.time(), cpu_first or time.process_time()
        last = idle_since = time.time()
        cpu_last = time.process_time()
    consumer.close()
    report(count, first or 0, last or 0, cpu_last - cpu_first if cpu_last else None)


def versions() -> dict:
    import confluent_kafka
    import polars

    return {
        "python": sys.version.split()[0],
        "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "polars": polars.__version__,
    }


def worker_faust(settings, topic: str, group: str, per_event: bool) -> None:
    import faust

    from schemas.naming import clean_topic, quarantine_topic
    from schemas.serde import WireCodec
    from streams.faust_runner import build_app
    from streams.processor import BatchProcessor, RawMessage

    state = {"count": 0, "first": None, "last": time.time()}
    if per_event:
        app = faust.App(
            group,
            broker=f"kafka://{settings.kafka_bootstrap}",
            store="memory://",
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=6,
            topic_partitions=2,
            datadir=f"/tmp/{group}",
        )
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        src = app.topic(topic, **raw)
        outs = {t: app.topic(t, **raw) for t in (clean_topic(topic), quarantine_topic(topic))}
        processor = BatchProcessor(WireCodec(settings.schema_registry_url), TRANSFORMS, RULES)

        @app.agent(src)
        async def one_by_one(stream):
            async for event in stream.events():
                m = event.message
                result = processor.process([RawMessage(m.topic, m.partition, m.offset, m.key, m.value)])
                for o in result.outputs:
                    await (await outs[o.topic].send(key=o.key, value=o.value, force=True))
                state["count"] += 1
                state["first"] = state["first"] or time.time()
                state["last"] = time.time()
    else:

        class Counting:
            def add(self, stage, counts):
                state["count"] += counts.get("read", 0)
                state["first"] = state["first"] or time.time()
                state["last"] = time.time()

        app = build_app(
            group,
            [topic],
            TRANSFORMS,
            RULES,
            bootstrap=settings.kafka_bootstrap,
            registry_url=settings.schema_registry_url,
            data_dir=f"/tmp/{group}",
            batch_size=BATCH,
            within_seconds=0.2,
            session_timeout=6,
            counters=Counting(),
            partitions=2,
        )
        app.conf.id = group

    @app.timer(1.0)
    async def stop_when_idle():
        started = state["first"] is not None
        if (started and time.time() - state["last"] > IDLE) or time.time() - state["last"] > 90:
            report(state["count"], state["first"] or 0, state["last"])
            if profile is not None:  # BENCH_FAUST_PROFILE=<file>: where the event loop's time went
                import pstats

                profile.disable()
                with open(os.environ["BENCH_FAUST_PROFILE"], "w") as out:  # Faust redirects stderr
                    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
            os._exit(0)

    profile = None
    if os.environ.get("BENCH_FAUST_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    sys.argv = [sys.argv[0], "worker", "-l", os.environ.get("BENCH_FAUST_LOG", "error")]
    app.main()


def run(mode: str, processes: int, topic: str, events: int) -> dict:
    group = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", mode, "--topic", topic, "--group", group],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ,
        )
        for _ in range(processes)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=1200)
        line = [ln for ln in out.splitlines() if ln.startswith("{")]
        results.append(json.loads(line[-1]) if line else {"count": 0, "first": 0, "last": 0, "rss_mb": 0})
    active = [r for r in results if r["count"]]
    total = sum(r["count"] for r in results)
    span = max(r["last"] for r in active) - min(r["first"] for r in active) if active else float("inf")
    cpu = [r.get("cpu_s") for r in active]
    return {
        "mode": mode,
        "processes": processes,
        "events": total,
        "seconds": round(span, 2),
        "events_per_s": round(total / span) if span else None,
        "peak_rss_mb_per_worker": max(r["rss_mb"] for r in results),
        # CPU of the workers' processes (librdkafka's and polars' threads too) per event: steadier
        # than events/s on shared cores (the first batch of each worker is not counted)
        "cpu_us_per_event": round(sum(cpu) / total * 1e6, 2) if cpu and None not in cpu and total else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--worker", choices=["bare", "lean", "faust-batch", "faust-event"])
    ap.add_argument("--topic")
    ap.add_argument("--group")
    ap.add_argument("--modes", default="bare:1,lean:1,lean:2,faust-batch:1,faust-event:1")
    ap.add_argument(
        "--batch", type=int, help=f"events a batch, every mode (default {BATCH}: a pipeline's runner default)"
    )
    args = ap.parse_args()
    if args.batch:
        os.environ["BENCH_RUNNER_BATCH"] = str(args.batch)  # the workers' processes read it
    from deploy.settings import get_settings

    settings = get_settings()
    if args.worker:  # a worker process as `huiliu worker` starts one: pandas kept from pyarrow's probes
        from deploy.pandas_probes import skip_pandas_probes

        skip_pandas_probes()
    if args.worker == "lean":
        return worker_lean(settings, args.topic, args.group)
    if args.worker == "bare":
        return worker_bare(settings, args.topic, args.group)
    if args.worker:
        return worker_faust(settings, args.topic, args.group, per_event=args.worker == "faust-event")

    from deploy.stack import Stack

    Stack(settings).up(progress=False)
    t0 = time.time()
    topic = publish(settings, f"people_{uuid.uuid4().hex[:6]}", args.events)
    print(f"published {args.events} events to {topic} in {time.time() - t0:.1f}s", flush=True)
    ceiling = ceiling_cpu = None
    for spec in args.modes.split(","):
        mode, n = spec.split(":")
        result = run(mode, int(n), topic, args.events)
        if mode == "bare" and n == "1":
            ceiling, ceiling_cpu = result["events_per_s"], result["cpu_us_per_event"]
        elif ceiling and result["events_per_s"]:
            result["ratio_to_bare_1"] = round(result["events_per_s"] / ceiling, 3)
            if ceiling_cpu and result["cpu_us_per_event"]:  # the bare loop's CPU an event over this mode's
                result["cpu_ratio_to_bare_1"] = round(ceiling_cpu / result["cpu_us_per_event"], 3)
        print(json.dumps(result), flush=True)
    print(json.dumps({"versions": versions(), "load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
