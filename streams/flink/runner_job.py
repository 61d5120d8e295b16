"""The Flink runner: a pipeline's runner stage (transforms, rules, clean/quarantine split) as a Flink job.

    .venv-flink/bin/python -m streams.flink.runner_job --config runner.json     (repo root on PYTHONPATH)
    .venv-flink/bin/python -m streams.flink.runner_job --config-json '{...}'

The same code as the lean runner, not a port of it: each Arrow batch Flink hands a vectorised
(pandas) UDF becomes a list of `streams.processor.RawMessage` for `BatchProcessor.process`, which
decodes, transforms, checks and splits exactly as in the lean runner and returns one output per
input (clean: the input bytes or the re-encoded row; quarantine: the quarantine record). The plan
is three Table API nodes, chained in one task per parallel slot:

    raw topic (Kafka source: key, value, topic/partition/offset metadata)
      -> runner(topic, partition, offset, key, value)   pandas UDF -> ROW<topic, key, value>
      -> Kafka sink writing each row to the topic it names (`.clean` or `.quarantine`), at-least-once

Checkpoints flush the UDF's bundle and the sink before the source offsets are committed (tansu has
no transactions: at-least-once, as the lean runner; sinks keep the newest `source.sequence`).

Config (JSON or YAML):

    {"name": "huiliu-runner-orders", "pipeline": "orders", "topics": ["raw topic"],
     "transforms": [...], "rules": [...],                      # the pipeline document's
     "kafka": {"bootstrap": "host:port", "group_id": "...", "properties": {}},
     "schema_registry_url": "http://...", "parallelism": 1, "batch_size": 1000,
     "checkpoint_interval_seconds": 10,                       # 0: none (bounded runs)
     "end_offsets": {"topic": {"0": 120}},                    # optional: a bounded run stops there
     "jars": [], "flink_config": {}}
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from streams.flink.job import environment, export_worker_path, kafka_properties


def load_runner_config(text: str) -> dict:
    cfg = yaml.safe_load(text) or {}  # YAML reads JSON too
    if not cfg.get("topics"):
        raise SystemExit("config: `topics` must name the raw topic")
    if not (cfg.get("kafka") or {}).get("bootstrap"):
        raise SystemExit("config: kafka.bootstrap is required")
    if not cfg.get("schema_registry_url"):
        raise SystemExit("config: schema_registry_url is required")
    build_processor(cfg).close()  # transforms and rules compile here, before the JVM starts
    return cfg


def build_processor(cfg: dict):
    """The lean runner's BatchProcessor for this config (stage label as the lean runner task's)."""
    from schemas.serde import WireCodec
    from streams.processor import BatchProcessor

    return BatchProcessor(
        WireCodec(cfg["schema_registry_url"]),
        cfg.get("transforms") or [],
        cfg.get("rules") or [],
        stage=f"runner:{cfg.get('pipeline') or cfg.get('name') or 'runner'}",
    )


def process_columns(processor, topics, partitions, offsets, keys, values) -> dict[str, list]:
    """One Arrow batch through the processor: columns in, one (topic, key, value) per input row out."""
    from streams.processor import RawBatch

    partitions, offsets = list(partitions), list(offsets)
    batch = RawBatch(
        list(topics),
        [_bytes(k) for k in keys],
        [_bytes(v) for v in values],
        lambda i: (int(partitions[i]), int(offsets[i])),
    )
    result = processor.process(batch)
    if len(result.values) != len(batch):  # Flink's scalar UDF maps row to row; the processor does too
        raise RuntimeError(f"the processor returned {len(result.values)} outputs for {len(batch)} messages")
    return {"topic": result.topics, "key": result.keys, "value": result.values}


def _bytes(value: Any) -> bytes | None:
    """Arrow binary -> pandas gives bytes, or None/NaN for a null key."""
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _runner_udf(cfg: dict):
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    class Runner(ScalarFunction):
        def __init__(self, cfg: dict):
            self.cfg = cfg

        def open(self, function_context):
            self.processor = build_processor(self.cfg)

        def eval(self, topic, partition, offset, key, value):
            import pandas as pd

            return pd.DataFrame(process_columns(self.processor, topic, partition, offset, key, value))

        def close(self):
            self.processor.close()

        def is_deterministic(self) -> bool:
            return False  # registers schemas; never evaluated twice for one row by the planner

    result = DataTypes.ROW(
        [
            DataTypes.FIELD("topic", DataTypes.STRING()),
            DataTypes.FIELD("key", DataTypes.BYTES()),
            DataTypes.FIELD("value", DataTypes.BYTES()),
        ]
    )
    return udf(Runner(cfg), result_type=result, func_type="pandas")


def _with(options: dict) -> str:
    return ", ".join(f"'{k}' = '{v}'" for k, v in options.items())


def build(cfg: dict):
    """The job's table environment with the runner's statement ready to execute."""
    from pyflink.table import StreamTableEnvironment

    batch = int(cfg.get("batch_size") or 1000)
    # Pandas UDFs run in Beam worker processes (thread mode has no Arrow path); an Arrow batch is
    # at most a bundle, and a bundle is flushed at least every bundle.time ms (latency bound).
    flink_config = {
        "python.fn-execution.arrow.batch.size": batch,
        "python.fn-execution.bundle.size": batch,
        "python.fn-execution.bundle.time": 500,
        **(cfg.get("flink_config") or {}),
    }
    env = environment({**cfg, "flink_config": flink_config}, execution_mode="process")
    t_env = StreamTableEnvironment.create(env)
    kafka = cfg["kafka"]
    props = {f"properties.{k}": v for k, v in kafka_properties(cfg).items()}
    topics = list(cfg["topics"])
    source = {
        "connector": "kafka",
        "topic": ";".join(topics),
        "properties.bootstrap.servers": kafka["bootstrap"],
        "properties.group.id": kafka.get("group_id") or f"huiliu-runner-{cfg.get('pipeline', 'runner')}",
        # offsets are committed on checkpoints; the first start reads the topic from its beginning
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "key.format": "raw",
        "key.fields": "k",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        **props,
    }
    ends = cfg.get("end_offsets") or {}
    if ends:  # a bounded run (tests, benchmarks) reads from the start up to offsets read off the log
        source["scan.startup.mode"] = "earliest-offset"
        source["scan.bounded.mode"] = "specific-offsets"
        source["scan.bounded.specific-offsets"] = ";".join(
            f"partition:{p},offset:{o}" for p, o in sorted((ends[topics[0]] or {}).items(), key=lambda x: int(x[0]))
        )
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE raw_in (k BYTES, v BYTES, `topic` STRING METADATA VIRTUAL, "
        f"`partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL) WITH ({_with(source)})"
    )
    from schemas.naming import clean_topic, quarantine_topic

    sink = {
        "connector": "kafka",
        # a topic list: each row goes to the one of them its `topic` metadata column names
        "topic": ";".join(out(t) for t in topics for out in (clean_topic, quarantine_topic)),
        "properties.bootstrap.servers": kafka["bootstrap"],
        "key.format": "raw",
        "key.fields": "k",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": "at-least-once",  # tansu has no transactions
        **props,
    }
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE runner_out (`topic` STRING METADATA, k BYTES, v BYTES) WITH ({_with(sink)})"
    )
    t_env.create_temporary_function("huiliu_runner", _runner_udf(cfg))
    statement = (
        "INSERT INTO runner_out SELECT r.`topic`, r.`key`, r.`value` FROM "
        "(SELECT huiliu_runner(`topic`, `partition`, `offset`, k, v) AS r FROM raw_in)"
    )
    return t_env, statement


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Huiliu Flink runner (a pipeline's transforms and rules)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="runner config file (JSON or YAML)")
    group.add_argument("--config-json", help="the runner config itself (REST submission: no shared file)")
    ap.add_argument(
        "--detached", action="store_true", help="submit and return (a REST submission may not wait for the result)"
    )
    args = ap.parse_args(argv)
    cfg = load_runner_config(Path(args.config).read_text(encoding="utf-8") if args.config else args.config_json)
    export_worker_path()
    t_env, statement = build(cfg)
    t_env.get_config().set("pipeline.name", cfg.get("name") or f"huiliu-runner-{cfg.get('pipeline', 'runner')}")
    result = t_env.execute_sql(statement)
    if not args.detached:
        result.wait()
    return 0


if __name__ == "__main__":
    # Run through the importable module (not __main__) so the Python workers unpickle the UDF by
    # reference to streams.flink.runner_job.
    from streams.flink import runner_job as _job

    raise SystemExit(_job.main())
