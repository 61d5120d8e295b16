"""The PyFlink job (streams/flink/job.py) against the private local stack.

Avro change events go into two input topics; the real job runs as a subprocess in the PyFlink
virtualenv (created on first use by deploy/flink/setup.py: a few minutes once, then seconds),
reading bounded (up to the end offsets seen at start), and the test checks the dedupe output,
the windowed rule metrics and the interval-join output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from deploy.kafka import ensure_topics
from schemas.envelope import envelope_schema, make_event
from schemas.naming import value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec

REPO = Path(__file__).resolve().parents[1]


def _java_problem() -> str | None:
    """Why PyFlink 2.3 cannot run here (it needs Java 11+, 17 recommended), or None."""
    if shutil.which("java") is None:
        return "PyFlink needs Java 11+ (17 recommended) on PATH; `java` not found"
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60).stderr
    except Exception as exc:  # noqa: BLE001
        return f"`java -version` failed: {exc}"
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    return None if major >= 11 else f"PyFlink 2.3 needs Java 11+ (17 recommended); found: {out.strip()[:80]!r}"


JAVA_PROBLEM = _java_problem()
needs_flink = pytest.mark.skipif(JAVA_PROBLEM is not None, reason=JAVA_PROBLEM or "")

T0 = 1_700_000_040_000  # a multiple of 60 s, so 60-s windows start at T0
SEC = 1000


@pytest.fixture(scope="module")
def flink_env() -> dict:
    """The PyFlink venv and connector jars (deploy/flink/setup.py is idempotent)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "flink" / "setup.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        pytest.fail(f"deploy/flink/setup.py failed:\n{proc.stderr[-4000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["setup_seconds"] = round(time.monotonic() - started, 1)
    print(f"flink setup took {info['setup_seconds']} s", file=sys.stderr)
    return info


def _source(table: str, seq: int) -> dict:
    return {
        "system": "pg",
        "database": "shop",
        "schema": "public",
        "table": table,
        "connector": "test",
        "position": json.dumps({"seq": seq}),
        "sequence": seq,
        "snapshot": False,
    }


ORDERS = [  # (id, customer_id, amount, status, ts offset s, sequence)
    (1, 10, 5, "new", 1, 1),
    (1, 10, 5, "new", 2, 1),  # duplicate within 30 s -> dropped
    (2, 11, -3, "new", 3, 2),  # invalid: amount_range
    (2, 11, -3, "new", 4, 2),  # duplicate -> dropped
    (3, 10, 7, None, 5, 3),  # invalid: status_required
    (4, 12, 1, "x", 70, 4),  # second window, no customer 12
    (1, 10, 5, "new", 100, 1),  # same key 99 s after the first: outside the window -> kept
]
CUSTOMERS = [  # (id, name, ts offset s, sequence)
    (10, "Ann", 2, 1),
    (13, None, 10, 2),  # invalid: name_required
    (11, "Bob", 20, 3),
    (11, "Bob", 50, 4),  # an update of 11 (not a duplicate: new sequence)
]


def _produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer

    # One message per produce request: tansu reports the high watermark as the last batch's base
    # offset + 1, so a bounded (latest-offset) read only sees everything when batches hold one record.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": False})
    for key, value in values:
        producer.produce(topic, value=value, key=key)
        assert producer.flush(15) == 0
    producer.flush(15)


def _consume(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[tuple[bytes | None, bytes]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"flink-test-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join (slow on tansu)
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(out) >= expected:
                    quiet_until = quiet_until or time.monotonic() + 2  # catch extra (unexpected) records
                    if time.monotonic() > quiet_until:
                        break
                continue
            if msg.error():
                continue
            out.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def make_inputs(bootstrap: str, registry: str, run: str) -> tuple[dict[str, str], WireCodec]:
    """Create the topics, register the schemas and produce ORDERS and CUSTOMERS."""
    topics = {
        "orders": f"flinktest.{run}.orders",
        "customers": f"flinktest.{run}.customers",
        "dedup": f"flinktest.{run}.orders.dedup",
        "metrics": f"flinktest.{run}.metrics",
        "joined": f"flinktest.{run}.joined",
    }
    ensure_topics(bootstrap, list(topics.values()))
    codec = WireCodec(registry)
    order_cols = [
        ColumnSpec("id", sa.Integer(), False, True),
        ColumnSpec("customer_id", sa.Integer()),
        ColumnSpec("amount", sa.Integer()),
        ColumnSpec("status", sa.String()),
    ]
    cust_cols = [ColumnSpec("id", sa.Integer(), False, True), ColumnSpec("name", sa.String())]
    oid = codec.register(value_subject(topics["orders"]), envelope_schema("pg", "public", "orders", order_cols))
    cid = codec.register(value_subject(topics["customers"]), envelope_schema("pg", "public", "customers", cust_cols))
    orders = []
    for i, c, amount, status, ts, seq in ORDERS:
        row = {"id": i, "customer_id": c, "amount": amount, "status": status}
        orders.append(
            (
                json.dumps({"id": i}).encode(),
                codec.encode(oid, make_event("c", None, row, T0 + ts * SEC, _source("orders", seq))),
            )
        )
    customers = []
    for i, name, ts, seq in CUSTOMERS:
        row = {"id": i, "name": name}
        customers.append(
            (
                json.dumps({"id": i}).encode(),
                codec.encode(cid, make_event("u", None, row, T0 + ts * SEC, _source("customers", seq))),
            )
        )
    _produce(bootstrap, topics["orders"], orders)
    _produce(bootstrap, topics["customers"], customers)
    return topics, codec


def job_config(
    topics: dict[str, str], bootstrap: str, registry: str, jars: list[str], run: str, bounded: bool = True
) -> dict:
    config = {
        "name": f"flink-test-{run}",
        "kafka": {
            "bootstrap": bootstrap,
            "group_id": f"flink-test-{run}",
            "bounded": bounded,
            "properties": {"session.timeout.ms": "6000"},
        },
        "schema_registry_url": registry,
        "parallelism": 1,
        "jars": jars,
        "watermark": {"out_of_orderness_seconds": 5},
        "inputs": [
            {
                "topic": topics["orders"],
                "dedupe": {"key": ["after.id", "source.sequence"], "window_seconds": 30, "output": topics["dedup"]},
                "rules": [
                    {"id": "amount_range", "kind": "range", "fields": ["amount"], "min": 0},
                    {"id": "status_required", "kind": "required", "fields": ["status"]},
                ],
            },
            {"topic": topics["customers"], "rules": [{"id": "name_required", "kind": "required", "fields": ["name"]}]},
        ],
        "metrics": {"topic": topics["metrics"], "window_seconds": 60},
        "joins": [
            {
                "name": "orders_customers",
                "left": {"topic": topics["orders"], "key": "after.customer_id"},
                "right": {"topic": topics["customers"], "key": "after.id"},
                "lower_seconds": -30,
                "upper_seconds": 30,
                "output": topics["joined"],
            }
        ],
    }
    if bounded:
        # End offsets read off the log (a tail read): tansu's ListOffsets high watermark is short
        # (on its s3 engine it can be 1 for 30 records), so "latest-offset" would stop early.
        from api.lag import end_offsets

        for inp in config["inputs"]:
            inp["end_offsets"] = {0: end_offsets(bootstrap, [(inp["topic"], 0)])[(inp["topic"], 0)][1]}
    return config


def test_decoder_reads_wire_codec_bytes(stack_settings):
    """The job's tiny urllib/fastavro decoder reads what schemas.serde.WireCodec writes."""
    from streams.flink.avro import ConfluentAvroDecoder, Undecodable

    codec = WireCodec(stack_settings.schema_registry_url)
    cols = [ColumnSpec("id", sa.Integer(), False, True), ColumnSpec("name", sa.String())]
    sid = codec.register(
        value_subject(f"flinktest.{uuid.uuid4().hex[:8]}.decoder"), envelope_schema("pg", "public", "people", cols)
    )
    event = make_event("c", None, {"id": 7, "name": "Li"}, T0, _source("people", 1))
    decoder = ConfluentAvroDecoder(stack_settings.schema_registry_url)
    assert decoder.decode(codec.encode(sid, event)) == (sid, codec.decode(codec.encode(sid, event))[1])
    for bad in (b"\x00\x00", b"\x01" + codec.encode(sid, event)[1:], b"\x00\x7f\xff\xff\xf0xx"):
        with pytest.raises(Undecodable):
            decoder.decode(bad)


def test_job_config_checks_and_key_paths(tmp_path):
    from quality_stream import RuleConfigError
    from streams.flink.job import key_string, load_config, resolve

    event = {"before": {"id": 1, "x": "old"}, "after": None, "source": {"sequence": 9}}
    assert resolve(event, "row.id") == 1 and resolve(event, "source.sequence") == 9
    assert resolve(event, "after.id") is None
    assert key_string(event, ["row.id", "source.sequence"]) == "[1,9]"
    base = {"kafka": {"bootstrap": "h:1"}, "schema_registry_url": "http://h:2", "inputs": [{"topic": "a"}]}
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                **base,
                "joins": [
                    {
                        "left": {"topic": "a", "key": "after.id"},
                        "right": {"topic": "b", "key": "after.id"},
                        "output": "o",
                    }
                ],
            }
        )
    )
    with pytest.raises(SystemExit, match="right topic 'b' is not an input"):
        load_config(path)
    path.write_text(yaml.safe_dump({**base, "inputs": [{"topic": "a", "rules": [{"id": "r", "kind": "range"}]}]}))
    with pytest.raises(RuleConfigError, match="'r'"):
        load_config(path)


@pytest.mark.flink
@pytest.mark.timeout(1500)  # the first run creates the PyFlink venv (minutes); later runs take ~1-2 min
@needs_flink
def test_flink_job_dedupe_metrics_join(stack_settings, flink_env, tmp_path):
    bootstrap, registry = stack_settings.kafka_bootstrap, stack_settings.schema_registry_url
    run = uuid.uuid4().hex[:8]
    topics, codec = make_inputs(bootstrap, registry, run)
    dedup_t, metrics_t, join_t = topics["dedup"], topics["metrics"], topics["joined"]
    config = job_config(topics, bootstrap, registry, flink_env["jars"], run)
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    log_path = tmp_path / "flink-job.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [flink_env["python"], "-m", "streams.flink.job", "--config", str(cfg_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=480)  # bounded sources: the job finishes by itself
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"flink job did not finish in 480 s; log tail:\n{log_path.read_text()[-4000:]}")
    print(f"flink job ran {time.monotonic() - started:.1f} s", file=sys.stderr)
    assert rc == 0, f"flink job failed ({rc}); log tail:\n{log_path.read_text()[-6000:]}"

    # (1) dedupe: original key and value bytes, duplicates within 30 s gone, the late repeat kept
    dedup = _consume(bootstrap, dedup_t, expected=5)
    kept = [codec.decode(v)[1] for _, v in dedup]
    assert sorted((e["after"]["id"], e["ts_ms"] - T0) for e in kept) == [
        (1, 1 * SEC),
        (1, 100 * SEC),
        (2, 3 * SEC),
        (3, 5 * SEC),
        (4, 70 * SEC),
    ]
    assert {k for k, _ in dedup} == {json.dumps({"id": i}).encode() for i in (1, 2, 3, 4)}

    # (2) metrics: valid/invalid per table (rule null) and per rule, per 60-s window
    metrics = [json.loads(v) for _, v in _consume(bootstrap, metrics_t, expected=8)]
    got = {((m["window_start"] - T0) // SEC, m["table"], m["rule"]): (m["valid"], m["invalid"]) for m in metrics}
    assert len(metrics) == len(got), "one metrics record per window, table and rule"
    assert got == {
        (0, "public.orders", None): (1, 2),
        (0, "public.orders", "amount_range"): (2, 1),
        (0, "public.orders", "status_required"): (2, 1),
        (60, "public.orders", None): (2, 0),
        (60, "public.orders", "amount_range"): (2, 0),
        (60, "public.orders", "status_required"): (2, 0),
        (0, "public.customers", None): (3, 1),
        (0, "public.customers", "name_required"): (3, 1),
    }
    assert all(m["window_end"] - m["window_start"] == 60 * SEC for m in metrics)

    # (3) interval join: customer event within [-30 s, +30 s] of the (deduped) order event
    joined = [json.loads(v) for _, v in _consume(bootstrap, join_t, expected=3)]
    pairs = sorted(
        (j["left"]["id"], j["right"]["id"], (j["left_ts"] - T0) // SEC, (j["right_ts"] - T0) // SEC) for j in joined
    )
    assert pairs == [(1, 10, 1, 2), (2, 11, 3, 20), (3, 10, 5, 2)]
    assert all(j["join"] == "orders_customers" and j["key"] == [j["left"]["customer_id"]] for j in joined)
