"""Quarantine repair and replay throughput (issue 16: >= 50,000 records/s): N quarantined records
read back from a pipeline's quarantine topic, corrected and replayed to its raw topic.

    HUILIU_BROKER_STORAGE=memory HUILIU_STATE_DIR=/tmp/bench-replay PYTHONPATH=. \\
        .venv/bin/python tests/benchmarks/bench_replay.py --records 1000000

(Point HUILIU_KAFKA_BOOTSTRAP / HUILIU_SCHEMA_REGISTRY_URL / HUILIU_CLICKHOUSE_URL at a free port
block on a shared machine; the script starts the local stack there.)

Setup, not timed: N population-register change events whose phone is malformed are published to
a raw topic (2 partitions) and a lean runner with a `mobile` rule quarantines every one of them.
Timed (`--path job`, the default): `streams.quarantine_replay.replay_rule` on the rule's whole
quarantine after the fix, `--chunk` records at a time: `scan_rule_chunks` (a reader thread reads
and decodes the quarantine records' replay columns and keeps the rule's), `corrected_columns`
(the original events decoded into Arrow, the fixed column replaced, `source.sequence` + 1, encoded
from Arrow) and `replay_batch` (produced to the raw topic with the original key), every ack waited
for at the end. `--path columns`: what one `POST /quality/quarantine/replay {"rule", "set"}` does,
chunk after chunk (acks waited for per chunk); `--path rows`: the dict path it replaced. `cpu_s`
is the process's own CPU time, the figure that means something on a loaded machine. The raw topic
is counted before and after: N more. `--through-clickhouse`: the pipeline runs meanwhile (a runner
process, raw -> clean topic with the same rule, and a ClickHouse sink process into a fresh table,
both from the topics' current ends) and the clock stops when ClickHouse FINAL holds the N rows,
all corrected (issue 16's figure: back through the runner into ClickHouse). `--raw TOPIC` replays
an earlier run's quarantine again without the setup. `--profile FILE` writes a cProfile top list
of the timed part.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import resource
import time
import uuid

from tests.benchmarks.bench_runner import publish  # the same population events, malformed phones
from tests.benchmarks.profiling import peak_rss_mb

RULES = [{"id": "phone", "kind": "mobile", "fields": ["phone"]}]
FIX = {"phone": "13800138000"}


def malformed_phone(i: int, rng: random.Random, now) -> dict:
    """A population-register row whose phone the `mobile` rule rejects."""
    from deploy.demo.seed import person

    return {**person(i, rng, now), "phone": rng.choice(["12345", "0531-8888", "1381234567x"])}


def quarantine_all(settings, topic: str, n: int) -> None:
    from schemas.serde import WireCodec
    from streams.lean_runner import LeanRunner
    from streams.processor import BatchProcessor

    processor = BatchProcessor(WireCodec(settings.schema_registry_url), [], RULES, stage="runner:bench-replay")
    runner = LeanRunner(
        settings.kafka_bootstrap,
        f"bench-replay-{uuid.uuid4().hex[:6]}",
        [topic],
        processor,
        batch_size=20000,
        batch_seconds=0.2,
        consumer_extra={"session.timeout.ms": 6000},
    )
    runner.consumer.subscribe([topic])
    deadline = time.time() + 1800
    while runner.processed < n and time.time() < deadline:
        runner.run_once()
    runner.consumer.close()
    if runner.processed < n:
        raise SystemExit(f"the runner quarantined only {runner.processed} of {n}")


def end_offsets(settings, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    from deploy.kafka_security import client_config

    c = Consumer({**client_config(settings.kafka_bootstrap), "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def count_from(settings, topic: str, start: dict[int, int]) -> int:
    """Messages on `topic` from `start` (partition -> offset) to the end: the replayed events."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from deploy.kafka_security import client_config

    c = Consumer(
        {
            **client_config(settings.kafka_bootstrap),
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    pending, n = set(start), 0
    try:
        while pending:
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                    continue
                n += 1
    finally:
        c.close()
    return n


def replay_all(settings, quarantine: str, n: int, chunk: int, path: str = "job") -> dict:
    """A rule's whole quarantine corrected and replayed, `chunk` records at a time so memory stays
    bounded. path="job": streams.quarantine_replay.replay_rule (the next chunk read while this one
    is corrected and produced, one flush at the end); "columns": what one
    POST /quality/quarantine/replay {rule} does (scan_rule, corrected_columns, replay_batch and
    its acks), chunk after chunk (the API reads at most 100,000 at once); "rows": the record path
    that replaced (scan_quarantine -> dicts, corrected_many, replay), for comparison."""
    from schemas.serde import WireCodec
    from streams.quarantine_read import scan_quarantine, scan_rule
    from streams.quarantine_replay import corrected_columns, corrected_many, replay, replay_batch, replay_rule

    codec = WireCodec(settings.schema_registry_url)
    start = {p: 0 for p in end_offsets(settings, quarantine)}
    # What a running API has loaded before its first replay (and pyarrow's lazy pandas import,
    # seconds on a loaded machine): not part of a replay's time.
    import pyarrow

    pyarrow.array([0])
    phases = {"scan_s": 0.0, "correct_s": 0.0, "replay_s": 0.0}
    kept_total = 0
    cpu0, t_start = _cpu(), time.perf_counter()
    if path == "job":
        done = replay_rule(
            settings.kafka_bootstrap, settings.schema_registry_url, quarantine, "phone", FIX, chunk, start, codec
        )
        phases, kept_total = done.phases, done.replayed
    while path != "job":
        t0 = time.perf_counter()
        if path == "rows":
            kept, _, partial = scan_quarantine(
                settings.kafka_bootstrap,
                settings.schema_registry_url,
                quarantine,
                lambda m, rec: any(v.get("rule_id") == "phone" for v in rec.get("violations") or []),
                max_scan=chunk,
                budget=3600,
                start=start,
            )
            t1 = time.perf_counter()
            events = corrected_many(codec, [rec for _, rec in kept], FIX)
            t2 = time.perf_counter()
            replay(settings.kafka_bootstrap, events)
            count = len(events)
            for m, _ in kept:
                start[m.partition()] = max(start[m.partition()], m.offset() + 1)
            done = not kept
        else:
            scan = scan_rule(
                settings.kafka_bootstrap,
                settings.schema_registry_url,
                quarantine,
                "phone",
                max_scan=chunk,
                budget=3600,
                start=start,
                codec=codec,
            )
            t1 = time.perf_counter()
            batch = corrected_columns(codec, scan.topics, scan.keys, scan.values, FIX)
            t2 = time.perf_counter()
            replay_batch(settings.kafka_bootstrap, batch)
            count, start, done = len(batch), scan.next_start, not scan.partial
        t3 = time.perf_counter()
        phases["scan_s"] += t1 - t0
        phases["correct_s"] += t2 - t1
        phases["replay_s"] += t3 - t2
        kept_total += count
        if done:  # every partition read to its end
            break
    total = time.perf_counter() - t_start
    return {
        "path": path,
        "kept": kept_total,
        **{k: round(v, 2) for k, v in phases.items()},
        "total_s": round(total, 2),
        "cpu_s": round(_cpu() - cpu0, 2),
        "records_per_s": round(kept_total / total),
    }


def _cpu() -> float:
    """CPU seconds of this process so far (user + system): its own work, whatever the machine's load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_runner(settings, raw: str, group: str, stop) -> None:
    """The pipeline's runner (a lean runner with the `mobile` rule) from the raw topic to its clean
    topic, in its own process, from the group's committed offsets, until `stop` is set."""
    from schemas.serde import WireCodec
    from streams.lean_runner import LeanRunner
    from streams.processor import BatchProcessor

    processor = BatchProcessor(WireCodec(settings.schema_registry_url), [], RULES, stage="runner:bench-replay")
    runner = LeanRunner(
        settings.kafka_bootstrap, group, [raw], processor, batch_size=20000, batch_seconds=0.2,
        consumer_extra={"session.timeout.ms": 6000},
    )  # fmt: skip
    runner.consumer.subscribe([raw])
    while not stop.is_set():
        runner.run_once()
    runner.consumer.close()


def run_sink(settings, clean: str, group: str, table: str, stop) -> None:
    """The ClickHouse sink from the clean topic into `table`, in its own process, until `stop` is set."""
    from schemas.serde import WireCodec
    from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask
    from sinks.runtime import SinkRunner

    codec = WireCodec(settings.schema_registry_url)
    task = ClickHouseSinkTask(ClickHouseSinkConfig(url=settings.clickhouse_url, table=table), codec.schema_of)
    runner = SinkRunner(
        settings.kafka_bootstrap, group, [clean], codec, task, batch_size=50_000, batch_seconds=1.0,
        consumer_extra={"session.timeout.ms": 6000},
    )  # fmt: skip
    runner.run(stop)


def commit_at_end(settings, topic: str, group: str) -> None:
    """The group starts at the topic's current end: only what the replay adds is read."""
    from confluent_kafka import Consumer, TopicPartition

    from deploy.kafka_security import client_config

    ends = end_offsets(settings, topic)
    c = Consumer({**client_config(settings.kafka_bootstrap), "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False)
    finally:
        c.close()


def through_clickhouse(settings, raw: str, n: int, replay_fn) -> dict:
    """The replay with its pipeline running: a runner process (raw -> clean topic, the same rule)
    and a ClickHouse sink process (clean topic -> a fresh table) started first, at the topics'
    current ends; timed from the replay's start until ClickHouse FINAL holds all `n` corrected rows."""
    import multiprocessing

    from deploy.kafka import ensure_topics
    from schemas.naming import clean_topic
    from sinks.clickhouse import backend_for

    clean, run = clean_topic(raw), uuid.uuid4().hex[:6]
    table = f"replay_{run}"
    ensure_topics(settings.kafka_bootstrap, [clean], 2)
    commit_at_end(settings, raw, f"bench-replay-runner-{run}")
    commit_at_end(settings, clean, f"bench-replay-sink-{run}")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    workers = [
        ctx.Process(target=run_runner, args=(settings, raw, f"bench-replay-runner-{run}", stop)),
        ctx.Process(target=run_sink, args=(settings, clean, f"bench-replay-sink-{run}", table, stop)),
    ]
    for w in workers:
        w.start()
    backend = backend_for(settings.clickhouse_url)
    try:
        time.sleep(15)  # both joined their groups (not timed)
        t0 = time.perf_counter()
        result = replay_fn()
        replayed_at = time.perf_counter() - t0
        deadline, rows = time.time() + 1800, 0
        while time.time() < deadline:
            try:
                rows = backend.execute(f"SELECT count() FROM `{table}` FINAL")[0][0]
            except Exception:  # the sink has not created the table yet
                rows = 0
            if rows >= n:
                break
            time.sleep(0.5)
        total = time.perf_counter() - t0
        fixed = backend.execute(f"SELECT countIf(phone = '{FIX['phone']}') FROM `{table}` FINAL")[0][0]
    finally:
        stop.set()
        for w in workers:
            w.join(60)
            if w.is_alive():
                w.kill()
        backend.close()
    return {
        **result,
        "replay_done_s": round(replayed_at, 2),
        "in_clickhouse_s": round(total, 2),
        "clickhouse_final_rows": rows,
        "clickhouse_corrected_rows": fixed,
        "end_to_end_records_per_s": round(n / total),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--raw", help="replay again the quarantine of this raw topic (an earlier run's; no setup)")
    ap.add_argument("--chunk", type=int, default=50_000, help="records read, corrected and replayed at a time")
    ap.add_argument("--profile", help="write a cProfile top list of the timed part to this file")
    ap.add_argument("--path", choices=["job", "columns", "rows"], default="job", help="see replay_all")
    ap.add_argument(
        "--through-clickhouse", action="store_true", help="with the runner and a ClickHouse sink running (issue 16)"
    )
    args = ap.parse_args()

    from deploy.settings import get_settings
    from deploy.stack import Stack
    from schemas.naming import quarantine_topic

    settings = get_settings()
    Stack(settings).up(progress=False)
    raw = args.raw
    if raw is None:
        t0 = time.time()
        raw = publish(settings, f"replay_{uuid.uuid4().hex[:6]}", args.records, row=malformed_phone)
        t1 = time.time()
        quarantine_all(settings, raw, args.records)
        t2 = time.time()
        print(f"setup: published {args.records} to {raw} in {t1 - t0:.1f}s, quarantined in {t2 - t1:.1f}s", flush=True)
    already = count_from(settings, raw, dict.fromkeys(end_offsets(settings, raw), 0))
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    replay_fn = lambda: replay_all(settings, quarantine_topic(raw), args.records, args.chunk, args.path)  # noqa: E731
    if args.through_clickhouse:
        result = through_clickhouse(settings, raw, args.records, replay_fn)
    else:
        result = replay_fn()
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        with open(args.profile, "w") as f:
            f.write(out.getvalue())
    # tansu's high watermark lags behind the last batch, so the raw topic is counted whole, twice
    result["replayed_on_raw_topic"] = count_from(settings, raw, dict.fromkeys(end_offsets(settings, raw), 0)) - already
    result["peak_rss_mb"] = round(peak_rss_mb())
    print(json.dumps(result), flush=True)
    if args.through_clickhouse and result["clickhouse_corrected_rows"] != args.records:
        raise SystemExit("ClickHouse FINAL does not hold every corrected row")
    # The runner quarantines at least once: the setup's quarantine held 20,895 records for 20,000
    # events and 500,232 for 500,000 (cause not looked into); a record there twice is replayed twice
    # with the same version, one row in ClickHouse FINAL.
    if result["kept"] < args.records or result["replayed_on_raw_topic"] != result["kept"]:
        raise SystemExit("not every quarantined record was replayed")


if __name__ == "__main__":
    main()
