"""The PyFlink job: windowed dedupe, windowed rule metrics and stream-stream interval joins.

    .venv-flink/bin/python -m streams.flink.job --config job.yaml      (repo root on PYTHONPATH)

Input topics carry Confluent-framed Avro change-event envelopes (schemas/envelope.py). Each
input is read with the Flink Kafka connector (Table API source, `raw` key and value, turned into
a DataStream), decoded with fastavro, stamped with event time `ts_ms`, then:

1. dedupe (optional per input): keyed by the configured fields, the first event of a key is kept
   and any other with the same key within `window_seconds` of it (event time) is dropped; the
   keyed state has a TTL so idle keys are cleaned; kept events go (original key and value bytes)
   to `output` (default `<topic>.dedup`);
2. metrics: the (deduped) events are checked with `quality_stream` (same rule definitions as the
   quality_stream runner) and counted in tumbling event-time windows: valid/invalid per table
   (`rule: null`) and per rule; one JSON object per window, table and rule to `metrics.topic`;
3. joins: two inputs joined by key when their event times are within [lower, upper] of each
   other (interval join); each pair is written as JSON to the join's `output`.

Config (YAML):

    kafka: {bootstrap: host:port, group_id: huiliu-flink, properties: {session.timeout.ms: "6000"},
            bounded: false}            # true: stop at the end offsets seen at start
                                       # properties go to every source and sink; a secured Kafka's
                                       # (TLS, SASL) are deploy.kafka_security.java_properties()
    schema_registry_url: http://host:port
    parallelism: 1
    checkpoint_interval_seconds: 0     # 0: no checkpoints (bounded runs)
    watermark: {out_of_orderness_seconds: 5, idle_seconds: 0}
    jars: []                           # default: $HUILIU_FLINK_JARS or ~/.cache/huiliu/flink-jars
    flink_config: {}                   # extra Flink options, e.g. {python.execution-mode: process}
    inputs:
      - topic: t1
        end_offsets: {0: 30}           # optional, bounded runs: stop here instead of at ListOffsets'
                                       # latest (tansu reports a short high watermark, see api/lag.py)
        dedupe: {key: [after.id, source.sequence], window_seconds: 60, output: t1.dedup}
        rules: [{id: name_required, kind: required, fields: [name]}]    # quality_stream format
    metrics: {topic: huiliu.metrics, window_seconds: 60}
    joins:
      - {name: orders_customers, left: {topic: t1, key: after.customer_id},
         right: {topic: t2, key: after.id}, lower_seconds: -60, upper_seconds: 60, output: t3}

Key paths are dotted paths into the decoded envelope (`after.id`, `source.sequence`); `row.x`
reads `after.x`, falling back to `before.x` for deletes.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import decimal
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers (pure)
def resolve(event: dict, path: str) -> Any:
    if path.startswith("row."):
        row = event.get("after") or event.get("before") or {}
        return row.get(path[4:])
    cur: Any = event
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def key_string(event: dict, paths: list[str]) -> str:
    return json.dumps([resolve(event, p) for p in paths], default=json_default, separators=(",", ":"))


def json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def table_of(event: dict | None, topic: str) -> str:
    src = (event or {}).get("source") or {}
    if not src.get("table"):
        return topic
    return ".".join(p for p in (src.get("schema"), src["table"]) if p)


# ----------------------------------------------------------------------------- config
def load_config(path: str | Path) -> dict:
    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not cfg.get("inputs"):
        raise SystemExit("config: `inputs` must list at least one topic")
    if not (cfg.get("kafka") or {}).get("bootstrap"):
        raise SystemExit("config: kafka.bootstrap is required")
    if not cfg.get("schema_registry_url"):
        raise SystemExit("config: schema_registry_url is required")
    topics = {i["topic"] for i in cfg["inputs"]}
    for j in cfg.get("joins") or []:
        for side in ("left", "right"):
            if j[side]["topic"] not in topics:
                raise SystemExit(f"config: join {j.get('name')!r}: {side} topic {j[side]['topic']!r} is not an input")
    # Compile the rules here too, so a bad definition fails before the JVM starts.
    from quality_stream import RuleSet

    for inp in cfg["inputs"]:
        RuleSet.from_config(inp.get("rules") or [])
    return cfg


def default_jars() -> list[str]:
    d = Path(os.environ.get("HUILIU_FLINK_JARS") or Path.home() / ".cache" / "huiliu" / "flink-jars")
    return [str(d / "flink-connector-kafka.jar"), str(d / "kafka-clients.jar")]


def kafka_properties(cfg: dict) -> dict:
    """Client properties for every Kafka source and sink (a secured Kafka's among them)."""
    return {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", **(cfg["kafka"].get("properties") or {})}


def environment(cfg: dict, execution_mode: str = "thread"):
    """The StreamExecutionEnvironment of a job config: connector jars, this venv's Python for the
    workers, parallelism, checkpointing and the config's extra `flink_config` options."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    jars = cfg.get("jars") or default_jars()
    for j in jars:
        if not Path(j).exists():
            raise SystemExit(f"connector jar {j} is missing: run deploy/flink/setup.py")
    conf = Configuration()
    conf.set_string("pipeline.jars", ";".join(Path(j).resolve().as_uri() for j in jars))
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    # thread mode: Python functions run in an interpreter embedded in the JVM (pemja) instead of
    # Beam worker processes; starts faster and uses less memory (both modes pass the test).
    conf.set_string("python.execution-mode", execution_mode)
    for k, v in (cfg.get("flink_config") or {}).items():  # e.g. python.execution-mode: process
        conf.set_string(str(k), str(v))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(int(cfg.get("parallelism", 1)))
    if cfg.get("checkpoint_interval_seconds"):
        env.enable_checkpointing(int(float(cfg["checkpoint_interval_seconds"]) * 1000))
    return env


def export_worker_path() -> None:
    """Python workers are started by the JVM from this process's environment: make the repo
    importable. In thread mode the interpreter embedded in the JVM does not know it belongs to a
    venv: list this interpreter's site-packages too."""
    import site

    paths = (
        [str(REPO)]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        + list(site.getsitepackages())
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


# ----------------------------------------------------------------------------- operators
def _operators():
    """Python functions for the job (defined lazily so this module imports without pyflink)."""
    from pyflink.common import Row
    from pyflink.common.time import Time
    from pyflink.common.typeinfo import Types
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream.functions import (
        FlatMapFunction,
        KeyedCoProcessFunction,
        KeyedProcessFunction,
        MapFunction,
        ProcessWindowFunction,
    )
    from pyflink.datastream.state import ListStateDescriptor, StateTtlConfig, ValueStateDescriptor

    class Decode(MapFunction):
        """Row(key, value) -> (topic, table, ts_ms, event | None, key, value, error)."""

        def __init__(self, topic: str, registry_url: str):
            self.topic, self.registry_url = topic, registry_url

        def open(self, runtime_context):
            from streams.flink.avro import ConfluentAvroDecoder

            self.decoder = ConfluentAvroDecoder(self.registry_url)

        def map(self, row):
            key, value = row[0], row[1]
            try:
                _, event = self.decoder.decode(value)
                return (self.topic, table_of(event, self.topic), int(event.get("ts_ms") or 0), event, key, value, None)
            except Exception as exc:  # counted as invalid under the pseudo-rule "_undecodable"
                return (self.topic, self.topic, 0, None, key, value, str(exc))

    class EventTime(TimestampAssigner):
        def extract_timestamp(self, value, record_timestamp):
            return value[2] or record_timestamp

    class Dedupe(KeyedProcessFunction):
        """Keep the first event of a key; drop others within window_ms of it (event time)."""

        def __init__(self, window_ms: int, ttl_ms: int):
            self.window_ms, self.ttl_ms = window_ms, ttl_ms

        def open(self, runtime_context):
            desc = ValueStateDescriptor("first_seen_ms", Types.LONG())
            desc.enable_time_to_live(
                StateTtlConfig.new_builder(Time.milliseconds(self.ttl_ms))
                .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
                .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                .build()
            )
            self.first_seen = runtime_context.get_state(desc)

        def process_element(self, value, ctx):
            ts = value[2]
            seen = self.first_seen.value()
            if seen is not None and abs(ts - seen) <= self.window_ms:
                return
            self.first_seen.update(ts)
            yield value

    class ToBytesRow(MapFunction):
        def map(self, value):
            return Row(value[4] or b"", value[5] or b"")

    class Check(FlatMapFunction):
        """Evaluate the rules on the row image; emit (topic, table, rule|None, valid, invalid)."""

        def __init__(self, rules: list[dict]):
            self.rules = rules

        def open(self, runtime_context):
            from quality_stream import RuleSet

            self.ruleset = RuleSet.from_config(self.rules)

        def flat_map(self, value):
            topic, table, _, event, _, _, error = value
            if event is None:
                yield (topic, table, None, 0, 1)
                yield (topic, table, "_undecodable", 0, 1)
                return
            row = event.get("after") or event.get("before") or {}
            verdict = self.ruleset.evaluate([row])
            failed = {v.rule_id for v in verdict.rejected.get(0, [])} | {v.rule_id for v in verdict.warnings.get(0, [])}
            ok = 1 if verdict.valid_rows else 0
            yield (topic, table, None, ok, 1 - ok)
            for rule in self.ruleset:
                bad = 1 if rule.id in failed else 0
                yield (topic, table, rule.id, 1 - bad, bad)

    class EmitWindow(ProcessWindowFunction):
        def process(self, key, context, elements):
            for topic, table, rule, valid, invalid in elements:
                w = context.window()
                yield json.dumps(
                    {
                        "window_start": w.start,
                        "window_end": w.end,
                        "topic": topic,
                        "table": table,
                        "rule": rule,
                        "valid": valid,
                        "invalid": invalid,
                    },
                    sort_keys=True,
                )

    class IntervalJoin(KeyedCoProcessFunction):
        """Left l and right r with equal keys join when l.ts + lower <= r.ts <= l.ts + upper.

        Both sides are buffered in keyed list state; an event-time timer drops buffered events
        that can no longer match once the watermark passed them (as Flink's IntervalJoinOperator).
        """

        def __init__(self, name: str, lower_ms: int, upper_ms: int):
            self.name, self.lower, self.upper = name, lower_ms, upper_ms

        def open(self, runtime_context):
            self.left = runtime_context.get_list_state(ListStateDescriptor("left", Types.PICKLED_BYTE_ARRAY()))
            self.right = runtime_context.get_list_state(ListStateDescriptor("right", Types.PICKLED_BYTE_ARRAY()))

        def _out(self, key, l, r):
            return json.dumps(
                {
                    "join": self.name,
                    "key": json.loads(key),
                    "left_ts": l[2],
                    "right_ts": r[2],
                    "left": l[3].get("after") or l[3].get("before"),
                    "right": r[3].get("after") or r[3].get("before"),
                },
                default=json_default,
                sort_keys=True,
            )

        def process_element1(self, value, ctx):
            self.left.add(value)
            for r in self.right.get() or []:
                if value[2] + self.lower <= r[2] <= value[2] + self.upper:
                    yield self._out(ctx.get_current_key(), value, r)
            ctx.timer_service().register_event_time_timer(value[2] + max(self.upper, 0))

        def process_element2(self, value, ctx):
            self.right.add(value)
            for l in self.left.get() or []:
                if l[2] + self.lower <= value[2] <= l[2] + self.upper:
                    yield self._out(ctx.get_current_key(), l, value)
            ctx.timer_service().register_event_time_timer(value[2] - min(self.lower, 0))

        def on_timer(self, timestamp, ctx):
            wm = ctx.timer_service().current_watermark()
            self.left.update([l for l in self.left.get() or [] if l[2] + self.upper >= wm])
            self.right.update([r for r in self.right.get() or [] if r[2] - self.lower >= wm])
            return iter(())

    return dict(
        Decode=Decode,
        EventTime=EventTime,
        Dedupe=Dedupe,
        ToBytesRow=ToBytesRow,
        Check=Check,
        EmitWindow=EmitWindow,
        IntervalJoin=IntervalJoin,
    )


# ----------------------------------------------------------------------------- job graph
def build(cfg: dict):
    from pyflink.common import Duration, WatermarkStrategy
    from pyflink.common.serialization import RowFieldExtractorSchema, SimpleStringSchema
    from pyflink.common.time import Time
    from pyflink.common.typeinfo import Types
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
    from pyflink.datastream.window import TumblingEventTimeWindows
    from pyflink.table import StreamTableEnvironment

    ops = _operators()
    kafka = cfg["kafka"]
    bootstrap = kafka["bootstrap"]
    group = kafka.get("group_id", "huiliu-flink")
    props = kafka_properties(cfg)
    registry = cfg["schema_registry_url"]
    env = environment(cfg)
    t_env = StreamTableEnvironment.create(env)

    wm_cfg = cfg.get("watermark") or {}
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(int(float(wm_cfg.get("out_of_orderness_seconds", 5)) * 1000))
    ).with_timestamp_assigner(ops["EventTime"]())
    if wm_cfg.get("idle_seconds"):
        strategy = strategy.with_idleness(Duration.of_millis(int(float(wm_cfg["idle_seconds"]) * 1000)))

    def sink(topic: str, raw: bool) -> KafkaSink:
        ser = KafkaRecordSerializationSchema.builder().set_topic(topic)
        if raw:
            ser = ser.set_key_serialization_schema(RowFieldExtractorSchema(0)).set_value_serialization_schema(
                RowFieldExtractorSchema(1)
            )
        else:
            ser = ser.set_value_serialization_schema(SimpleStringSchema())
        # tansu has no transactions: at-least-once (flush on checkpoint and at end of input).
        builder = KafkaSink.builder().set_bootstrap_servers(bootstrap)
        for key, value in props.items():  # the same client properties as the sources (security among them)
            builder = builder.set_property(key, str(value))
        return (
            builder.set_record_serializer(ser.build()).set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE).build()
        )

    def with_props(extra: dict) -> str:
        return ", ".join(f"'{k}' = '{v}'" for k, v in extra.items())

    bytes_row = Types.ROW([Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    streams: dict[str, Any] = {}
    checked = []
    for n, inp in enumerate(cfg["inputs"]):
        topic = inp["topic"]
        options = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": bootstrap,
            "properties.group.id": f"{group}.{topic}",
            # bounded runs read the topic from the start; unbounded ones resume from the group's
            # offsets (committed on checkpoints), the first time from the earliest offset.
            "scan.startup.mode": inp.get("startup") or ("earliest-offset" if kafka.get("bounded") else "group-offsets"),
            "properties.auto.offset.reset": "earliest",
            "key.format": "raw",
            "key.fields": "k",
            "value.format": "raw",
            "value.fields-include": "EXCEPT_KEY",
            **{f"properties.{k}": v for k, v in props.items()},
        }
        if inp.get("end_offsets"):  # bounded at offsets the caller read off the log itself
            ends = ";".join(f"partition:{p},offset:{o}" for p, o in sorted(inp["end_offsets"].items()))
            options["scan.bounded.mode"] = "specific-offsets"
            options["scan.bounded.specific-offsets"] = ends
        elif kafka.get("bounded"):
            options["scan.bounded.mode"] = "latest-offset"
        t_env.execute_sql(f"CREATE TEMPORARY TABLE src_{n} (k BYTES, v BYTES) WITH ({with_props(options)})")
        raw = t_env.to_data_stream(t_env.from_path(f"src_{n}"))
        events = (
            raw.map(ops["Decode"](topic, registry)).name(f"decode {topic}").assign_timestamps_and_watermarks(strategy)
        )
        dd = inp.get("dedupe")
        if dd:
            paths = list(dd.get("key") or ["row.id", "source.sequence"])
            window_ms = int(float(dd.get("window_seconds", 60)) * 1000)
            ttl_ms = int(float(dd.get("ttl_seconds", 0)) * 1000) or 2 * window_ms
            events = (
                events.key_by(
                    lambda e, paths=paths: key_string(e[3] or {}, paths) if e[3] else e[5].hex(),
                    key_type=Types.STRING(),
                )
                .process(ops["Dedupe"](window_ms, ttl_ms))
                .name(f"dedupe {topic}")
            )
            (
                events.map(ops["ToBytesRow"](), output_type=bytes_row)
                .sink_to(sink(dd.get("output") or f"{topic}.dedup", raw=True))
                .name(f"dedupe sink {topic}")
            )
        streams[topic] = events
        if cfg.get("metrics"):
            checked.append(events.flat_map(ops["Check"](inp.get("rules") or [])).name(f"check {topic}"))

    metrics = cfg.get("metrics")
    if metrics and checked:
        allc = checked[0].union(*checked[1:]) if len(checked) > 1 else checked[0]
        size = Time.milliseconds(int(float(metrics.get("window_seconds", 60)) * 1000))
        (
            allc.key_by(lambda c: json.dumps([c[0], c[1], c[2]]), key_type=Types.STRING())
            .window(TumblingEventTimeWindows.of(size))
            .reduce(
                lambda a, b: (a[0], a[1], a[2], a[3] + b[3], a[4] + b[4]),
                window_function=ops["EmitWindow"](),
                output_type=Types.STRING(),
            )
            .name("metrics window")
            .sink_to(sink(metrics["topic"], raw=False))
            .name("metrics sink")
        )

    for j in cfg.get("joins") or []:
        name = j.get("name", f"{j['left']['topic']}+{j['right']['topic']}")
        lk, rk = j["left"]["key"], j["right"]["key"]
        left = (
            streams[j["left"]["topic"]]
            .filter(lambda e: e[3] is not None)
            .key_by(lambda e, p=lk: key_string(e[3], [p]), key_type=Types.STRING())
        )
        right = (
            streams[j["right"]["topic"]]
            .filter(lambda e: e[3] is not None)
            .key_by(lambda e, p=rk: key_string(e[3], [p]), key_type=Types.STRING())
        )
        lower = int(float(j.get("lower_seconds", -60)) * 1000)
        upper = int(float(j.get("upper_seconds", 60)) * 1000)
        (
            left.connect(right)
            .process(ops["IntervalJoin"](name, lower, upper), output_type=Types.STRING())
            .name(f"join {name}")
            .sink_to(sink(j["output"], raw=False))
            .name(f"join sink {name}")
        )
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Huiliu PyFlink job (dedupe, rule metrics, interval joins)")
    ap.add_argument("--config", required=True, help="job YAML")
    ap.add_argument("--name", default=None, help="job name (default: config's `name` or huiliu-flink)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    export_worker_path()
    env = build(cfg)
    env.execute(args.name or cfg.get("name") or "huiliu-flink")
    return 0


if __name__ == "__main__":
    # Run through the importable module (not __main__) so the Python workers unpickle the
    # operators by reference to streams.flink.job.
    from streams.flink import job as _job

    raise SystemExit(_job.main())
