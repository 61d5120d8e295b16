"""One pipeline end to end: PostgreSQL (timestamp increments) -> Avro on Kafka -> Faust runner
(trim + two rules) -> clean / quarantine topics -> ClickHouse ReplacingMergeTree.

Includes a kill -9 of the runner and a stop of the sink in the middle, source changes while they
are down, and a restart: ClickHouse (FINAL) must then equal the valid source rows exactly.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer
from sqlalchemy import create_engine, text

from connectors.local_run import LocalPipelineRun
from deploy.demo.seed import seed
from schemas.serde import WireCodec
from sinks.clickhouse import client_from_url

TEMPLATE = Path(__file__).parents[1] / "deploy" / "demo" / "population.yaml"
PHONE = re.compile(r"^1[3-9]\d{9}$")


def _expected_rows(pg_url: str) -> dict[int, tuple[str, str]]:
    """What ClickHouse must hold: rows whose trimmed name is present and trimmed phone is a mobile number."""
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT person_id, name, phone FROM population")).all()
    engine.dispose()
    expected = {}
    for pid, name, phone in rows:
        name, phone = (name or "").strip(), (phone or "").strip()
        if name and PHONE.match(phone):
            expected[pid] = (name, phone)
    return expected


def _clickhouse_rows(settings, table: str) -> dict[int, tuple[str, str]]:
    client = client_from_url(settings.clickhouse_url)
    try:
        if not client.execute("EXISTS TABLE " + table)[0][0]:
            return {}
        return {
            pid: (name, phone)
            for pid, name, phone in client.execute(
                f"SELECT person_id, name, phone FROM {table} FINAL WHERE _deleted = 0"
            )
        }
    finally:
        client.disconnect()


def _wait_for(settings, table: str, expected: dict, timeout: float = 150.0) -> dict:
    deadline = time.time() + timeout
    got = {}
    while time.time() < deadline:
        got = _clickhouse_rows(settings, table)
        if got == expected:
            return got
        time.sleep(1)
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    wrong = [k for k in set(got) & set(expected) if got[k] != expected[k]]
    pytest.fail(f"ClickHouse never matched the source: {len(missing)} missing, {len(extra)} extra, {len(wrong)} differ")


@pytest.fixture
def pipeline_file(tmp_path, pg_url) -> Path:
    doc = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    doc["name"] = "e2e"
    doc["source"]["config"].update(url=pg_url, system="civil_e2e", db_schema="public")
    doc["sink"]["config"]["table"] = "e2e_population"
    doc["runner"]["kind"] = os.environ.get("E2E_RUNNER", doc["runner"]["kind"])
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.long  # a runner killed and a sink restarted mid-stream: `make test-long`
def test_pipeline_survives_runner_kill_and_sink_restart(stack_settings, pg_url, pipeline_file):
    seed(pg_url, 3000)
    run = LocalPipelineRun(pipeline_file, stack_settings)
    try:
        run.start_sink(batch_size=500, batch_seconds=0.5)
        run.start_runner()
        assert run.capture() == 3000

        # Let part of the stream through, then kill -9 the runner and stop the sink mid-flight.
        deadline = time.time() + 90
        while run.stats().get("runner", {}).get("read", 0) < 500 and time.time() < deadline:
            time.sleep(0.2)
        assert run.stats().get("runner", {}).get("read", 0) >= 500, f"runner made no progress: {run.runner_log}"
        run.stop_runner(kill=True)
        run.stop_sink()

        # The source moves on while the pipeline is down: updates, fixes of bad rows, new rows.
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            now = datetime.now()
            conn.execute(
                text(
                    "UPDATE population SET phone = '13900000000', updated_at = :now WHERE person_id BETWEEN 100 AND 149"
                ),
                {"now": now},
            )
            conn.execute(
                text("UPDATE population SET name = '补录', updated_at = :now WHERE name IS NULL OR trim(name) = ''"),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO population (person_id, citizen_id, name, gender_code, birth_date, division_code, phone, "
                    "updated_at) SELECT 10000 + g, '370102199001011234', '新增' || g, '1', DATE '1990-01-01', '370102', "
                    "'13800000000', :now FROM generate_series(1, 100) g"
                ),
                {"now": now},
            )
        engine.dispose()

        run.start_sink(batch_size=500, batch_seconds=0.5)
        run.start_runner()
        assert run.capture() == 50 + 100 + _count_fixed(run)
        expected = _expected_rows(pg_url)
        got = _wait_for(stack_settings, "e2e_population", expected)
        assert got[120] == (got[120][0], "13900000000")
        assert got[10050] == ("新增50", "13800000000")

        client = client_from_url(stack_settings.clickhouse_url)
        total, distinct = client.execute(
            "SELECT count(), uniqExact(person_id) FROM e2e_population FINAL WHERE _deleted = 0"
        )[0]
        client.disconnect()
        assert total == distinct == len(expected)
        stats = run.stats()
        assert stats["runner"]["quarantined"] >= 1 and stats["sink"]["written"] >= len(expected)
    finally:
        run.stop()

    _assert_bad_rows_are_quarantined_with_reasons(stack_settings, run.spec.topics(stack_settings)["quarantine"])


def _count_fixed(run) -> int:
    """Rows whose blank name the test filled in (they were quarantined before, now they pass)."""
    engine = create_engine(run.spec.source.config["url"])
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM population WHERE name = '补录'")).scalar()
    engine.dispose()
    return n


def _assert_bad_rows_are_quarantined_with_reasons(settings, topic: str) -> None:
    codec = WireCodec(settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "e2e-quarantine-reader",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    records = []
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            msg = consumer.poll(1)
            if msg is None:
                if records:
                    break
                continue
            if not msg.error():
                records.append(codec.decode(msg.value())[1])
    finally:
        consumer.close()
    assert records, "nothing in the quarantine topic"
    rules = {v["rule_id"] for r in records for v in r["violations"]}
    assert rules == {"name_required", "phone_format"}
    phone_bad = next(r for r in records if r["violations"][0]["rule_id"] == "phone_format")
    assert "11-digit mobile" in phone_bad["reason"]
    assert phone_bad["original_topic"].endswith("civil_e2e.public.population")
    assert phone_bad["original_value"][0] == 0 and '"person_id"' in phone_bad["original_json"]
