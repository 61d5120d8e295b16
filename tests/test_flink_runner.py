"""The Flink runner (streams/flink/runner_job.py) gives the lean runner's outputs, byte for byte.

One input topic (valid rows, rows the transforms change, rows the rules reject, a delete, an
undecodable record) goes through the lean runner (in this process) and then through the Flink
runner (PyFlink local mini-cluster, parallelism 1, bounded at the input's end offsets). Both
write the same `.clean` and `.quarantine` topics; the lean block comes first in each, so the test
splits them by count and compares keys and payloads: clean values byte for byte, quarantine
records decoded with only `ts_ms` (the wall-clock time of quarantining) left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa

from deploy.kafka import ensure_topics
from schemas.envelope import envelope_schema, make_event
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.lean_runner import LeanRunner
from streams.processor import BatchProcessor
from tests import test_flink_job
from tests.test_flink_job import REPO, _consume, _produce, needs_flink

flink_env = test_flink_job.flink_env  # the fixture (module scope): the PyFlink venv and connector jars

TRANSFORMS = [{"kind": "trim", "fields": ["name"]}, {"kind": "default", "values": {"status": "new"}}]
RULES = [
    {"id": "amount_range", "kind": "range", "fields": ["amount"], "min": 0},
    {"id": "name_required", "kind": "required", "fields": ["name"]},
]
T0 = 1_700_000_000_000


def rows() -> list[dict | None]:
    """40 row images: None is a delete (no after-image)."""
    out: list[dict | None] = []
    for i in range(40):
        name = ["Ann", "  Bob  ", None, "Cai"][i % 4]  # "  Bob  " is trimmed; None is rejected
        amount = -i if i % 7 == 3 else i  # negative: amount_range rejects
        status = None if i % 5 == 0 else "paid"  # filled by `default`
        out.append(None if i == 17 else {"id": i, "name": name, "amount": amount, "status": status})
    return out


def accounts_schema(codec: WireCodec, topic: str) -> int:
    """The input's writer schema (pg public.accounts: id, name, amount, status), registered for `topic`."""
    cols = [
        ColumnSpec("id", sa.Integer(), False, True),
        ColumnSpec("name", sa.String()),
        ColumnSpec("amount", sa.Integer()),
        ColumnSpec("status", sa.String()),
    ]
    return codec.register(value_subject(topic), envelope_schema("pg", "public", "accounts", cols))


def produce_input(bootstrap: str, registry: str, topic: str) -> int:
    codec = WireCodec(registry)
    sid = accounts_schema(codec, topic)
    values = []
    for seq, row in enumerate(rows(), start=1):
        source = {"system": "pg", "database": "db", "schema": "public", "table": "accounts", "connector": "t"}
        source.update(position=json.dumps({"seq": seq}), sequence=seq, snapshot=False)
        before = {"id": 17, "name": "x", "amount": 1, "status": "paid"} if row is None else None
        event = make_event("d" if row is None else "u", before, row, T0 + seq, source)
        values.append((json.dumps({"id": seq}).encode(), codec.encode(sid, event)))
    values.insert(9, (b'{"id":"junk"}', b"\x00\x00\x00\xff\xffnot avro"))  # undecodable: quarantined
    _produce(bootstrap, topic, values)
    return len(values)


def run_lean(bootstrap: str, registry: str, topic: str, count: int, stage: str) -> None:
    processor = BatchProcessor(WireCodec(registry), TRANSFORMS, RULES, stage=stage)
    runner = LeanRunner(bootstrap, f"lean-eq-{uuid.uuid4().hex[:6]}", [topic], processor, batch_size=25)
    runner.consumer.subscribe([topic])
    deadline = time.monotonic() + 90
    try:
        while runner.processed < count and time.monotonic() < deadline:
            runner.run_once()
    finally:
        runner.consumer.close()
    assert runner.processed == count, f"the lean runner read {runner.processed} of {count}"


def flink_config(bootstrap, registry, topic, jars, pipeline, end: int, parallelism: int = 1) -> dict:
    return {
        "name": f"huiliu-runner-{pipeline}",
        "pipeline": pipeline,
        "topics": [topic],
        "transforms": TRANSFORMS,
        "rules": RULES,
        "kafka": {"bootstrap": bootstrap, "group_id": f"flink-eq-{uuid.uuid4().hex[:6]}"},
        "schema_registry_url": registry,
        "parallelism": parallelism,
        "batch_size": 16,
        "checkpoint_interval_seconds": 0,
        "end_offsets": {topic: {0: end}},
        "jars": jars,
    }


def run_flink(python: str, config: dict, log_path, timeout: float = 480) -> float:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [python, "-m", "streams.flink.runner_job", "--config-json", json.dumps(config)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)  # bounded source: the job ends by itself
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"the Flink runner did not finish in {timeout} s; log tail:\n{log_path.read_text()[-4000:]}")
    assert rc == 0, f"the Flink runner failed ({rc}); log tail:\n{log_path.read_text()[-6000:]}"
    return time.monotonic() - started


def decoded_quarantine(codec: WireCodec, records) -> Counter:
    out = Counter()
    for key, value in records:
        record = codec.decode(value)[1]
        record.pop("ts_ms")  # when it was quarantined: differs between any two runs
        out[(key, json.dumps(record, sort_keys=True, default=repr))] += 1
    return out


@pytest.mark.flink
@pytest.mark.timeout(1500)  # the first run creates the PyFlink venv (minutes)
@needs_flink
def test_flink_runner_matches_lean_runner(stack_settings, flink_env, tmp_path):
    bootstrap, registry = stack_settings.kafka_bootstrap, stack_settings.schema_registry_url
    pipeline = f"eq{uuid.uuid4().hex[:8]}"
    topic = f"flinkeq.{pipeline}.accounts"
    ensure_topics(bootstrap, [topic, clean_topic(topic), quarantine_topic(topic)])
    count = produce_input(bootstrap, registry, topic)
    stage = f"runner:{pipeline}"  # the label the deployed runner task gives both runners

    run_lean(bootstrap, registry, topic, count, stage)
    lean_clean = _consume(bootstrap, clean_topic(topic), expected=1)
    lean_quarantine = _consume(bootstrap, quarantine_topic(topic), expected=1)
    assert len(lean_clean) + len(lean_quarantine) == count

    from api.lag import end_offsets

    end = end_offsets(bootstrap, [(topic, 0)])[(topic, 0)][1]
    assert end == count
    config = flink_config(bootstrap, registry, topic, flink_env["jars"], pipeline, end)
    seconds = run_flink(flink_env["python"], config, tmp_path / "flink-runner.log")
    print(f"flink runner ran {seconds:.1f} s", file=sys.stderr)

    clean = _consume(bootstrap, clean_topic(topic), expected=2 * len(lean_clean))
    quarantine = _consume(bootstrap, quarantine_topic(topic), expected=2 * len(lean_quarantine))
    flink_clean, flink_quarantine = clean[len(lean_clean) :], quarantine[len(lean_quarantine) :]
    assert clean[: len(lean_clean)] == lean_clean and quarantine[: len(lean_quarantine)] == lean_quarantine

    # What the rules decided: 40 rows + 1 undecodable; 10 without a name, 5 more with a negative amount
    # (ids 3, 10, 24, 31, 38 minus the nameless 10 and 38 -> 3, 24, 31), the junk record.
    assert len(lean_quarantine) == 10 + 3 + 1 and len(lean_clean) == count - 14
    # byte for byte: the same clean records (keys and Avro values), whatever the order
    assert Counter(flink_clean) == Counter(lean_clean)
    # and the same quarantine records: rule ids, reasons, stage, original coordinates and bytes
    codec = WireCodec(registry)
    assert decoded_quarantine(codec, flink_quarantine) == decoded_quarantine(codec, lean_quarantine)
    # order within a key is kept (one partition, one event per key here: the topic order)
    assert [k for k, _ in flink_clean] == [k for k, _ in lean_clean]
