"""Full-table comparison (AGG-02): hash diff rounds through SourceRuntime, crash safety, bounded memory."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from connectors.relational.diff_mode import ROUND_STRIDE, DiffSourceConfig, DiffSourceTask
from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec
from tests.sources import consume

DATABASES = {"postgresql": "pg_url", "sqlite": None, "mariadb": "mysql_url"}


class SkipCommitted:
    """A task whose committed() never runs: a crash between the offset store and the state swap."""

    def __init__(self, task):
        self.task, self.name = task, task.name

    def __getattr__(self, item):
        return getattr(self.task, item)

    def committed(self, offsets):
        pass


def _sql(engine, *statements):
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))


@pytest.mark.parametrize("db", list(DATABASES))
def test_diff_rounds_emit_creates_updates_deletes(db, request, stack_settings, tmp_path):
    url = request.getfixturevalue(DATABASES[db]) if DATABASES[db] else f"sqlite:///{tmp_path / 'src.db'}"
    engine = create_engine(url)
    _sql(
        engine,
        "DROP TABLE IF EXISTS stock",
        "CREATE TABLE stock (sku VARCHAR(20) PRIMARY KEY, qty INTEGER NOT NULL, price NUMERIC(10,2), note VARCHAR(50))",
    )
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO stock VALUES (:s, :q, :p, :n)"),
            [{"s": f"A{i:03d}", "q": i, "p": i + 0.25, "n": f"货品{i}"} for i in range(30)],
        )
    system = f"diff_{db}_{uuid.uuid4().hex[:6]}"
    # Only this table: the session's database also holds other tests' tables.
    config = DiffSourceConfig(
        name=f"diff-{system}",
        url=url,
        system=system,
        state_dir=str(tmp_path / "state"),
        fetch_size=10,
        tables={"include": ["*.stock"]},
    )
    control = f"sqlite:///{tmp_path / 'control.db'}"

    def runtime(task):
        return SourceRuntime(
            task,
            bootstrap=stack_settings.kafka_bootstrap,
            control_db_url=control,
            codec=WireCodec(stack_settings.schema_registry_url),
        )

    task = DiffSourceTask(config)
    rt = runtime(task)
    assert rt.drain() == 30  # round 1: everything is new
    topic = rt.topic_of(task.units[0].captured)

    _sql(
        engine,
        "INSERT INTO stock VALUES ('B001', 1, 9.99, 'new'), ('B002', 2, NULL, NULL)",
        "UPDATE stock SET qty = 100, note = '改' WHERE sku IN ('A003', 'A017')",
        "UPDATE stock SET price = 0.01 WHERE sku = 'A029'",
        "DELETE FROM stock WHERE sku IN ('A000', 'A020')",
    )
    assert rt.drain() == 7  # round 2
    assert rt.drain() == 0  # round 3: nothing changed, nothing emitted

    events = consume(stack_settings, topic, 37)
    first, second = events[:30], events[30:]
    assert {e["op"] for e in first} == {"c"} and len({e["after"]["sku"] for e in first}) == 30
    by_key = {(e["after"] or e["before"])["sku"]: e for e in second}
    assert {k: e["op"] for k, e in by_key.items()} == {
        "B001": "c",
        "B002": "c",
        "A003": "u",
        "A017": "u",
        "A029": "u",
        "A000": "d",
        "A020": "d",
    }
    assert by_key["A003"]["before"] == {"sku": "A003", "qty": 3, "price": Decimal("3.25"), "note": "货品3"}
    assert by_key["A003"]["after"] == {"sku": "A003", "qty": 100, "price": Decimal("3.25"), "note": "改"}
    assert by_key["A020"]["before"]["note"] == "货品20" and by_key["A020"]["after"] is None
    assert by_key["B002"]["after"] == {"sku": "B002", "qty": 2, "price": None, "note": None}
    assert min(e["source"]["sequence"] for e in second) > max(e["source"]["sequence"] for e in first)
    assert all(e["source"]["sequence"] // ROUND_STRIDE == 2 for e in second)
    pos = json.loads(by_key["A017"]["source"]["position"])
    assert pos["round"] == 2 and pos["key"] == ["A017"]

    # Crash in the middle of a round, after its first batch was published: the old state stays,
    # so the restarted task re-diffs and emits every change of that round again.
    _sql(engine, "UPDATE stock SET qty = -1 WHERE sku IN ('A001', 'A028')", "DELETE FROM stock WHERE sku = 'A010'")
    assert rt.run_once() == 1  # A001, in the first chunk
    task.close()
    task = DiffSourceTask(config)
    rt = runtime(task)
    assert rt.drain() == 3
    redo = consume(stack_settings, topic, 41)[37:]
    assert sorted((e["op"], (e["after"] or e["before"])["sku"]) for e in redo) == [
        ("d", "A010"),
        ("u", "A001"),
        ("u", "A001"),
        ("u", "A028"),
    ]

    # Crash after the offset was stored but before the state swap: the restart keeps the new state.
    _sql(engine, "UPDATE stock SET qty = -2 WHERE sku = 'A002'")
    task.close()
    skipping = runtime(SkipCommitted(DiffSourceTask(config)))
    assert skipping.drain() == 1
    skipping.task.close()
    task = DiffSourceTask(config)
    assert runtime(task).drain() == 0
    task.close()
    engine.dispose()


@pytest.mark.timeout(900)  # ~15 s of CPU; the shared 2-core machine can stretch that a lot
def test_diff_round_memory_is_bounded(pg_url, tmp_path):
    """A 200k-row comparison round against the previous round's state, with a small, fixed memory peak."""
    n = 200_000
    engine = create_engine(pg_url)
    _sql(
        engine,
        "DROP TABLE IF EXISTS big_diff",
        "CREATE TABLE big_diff (id BIGINT PRIMARY KEY, code VARCHAR(20), amount NUMERIC(12,2), body TEXT)",
        f"INSERT INTO big_diff SELECT g, 'C' || g, g / 100.0, repeat(md5(g::text), 3) FROM generate_series(1, {n}) g",
    )
    # What holding the table in memory would cost: 10k rows as dicts, scaled to the table.
    with engine.connect() as conn:
        tracemalloc.start()
        sample = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM big_diff ORDER BY id LIMIT 10000"))]
        whole_table = tracemalloc.get_traced_memory()[0] * n / len(sample)
        tracemalloc.stop()
    del sample
    task = DiffSourceTask(
        DiffSourceConfig(
            name="diff-mem",
            url=pg_url,
            system="mem",
            state_dir=str(tmp_path),
            fetch_size=2000,
            tables={"include": ["*.big_diff"]},
        )
    )
    task.start({})

    def run_round() -> int:
        changes = 0
        while (batch := task.poll()).events or batch.offsets:
            changes += len(batch.events)
            task.committed(batch.offsets)  # as the runtime would, once stored
        return changes

    assert run_round() == n  # round 1 builds the on-disk state
    _sql(engine, "UPDATE big_diff SET body = 'changed' WHERE id % 20000 = 0", "DELETE FROM big_diff WHERE id = 7")
    tracemalloc.start()  # round 2 compares all 200k rows against it
    try:
        assert run_round() == 11
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    task.close()
    engine.dispose()
    assert peak < min(whole_table / 10, 16 * 2**20), (
        f"peak {peak / 2**20:.1f} MiB; the table as dicts would take {whole_table / 2**20:.0f} MiB"
    )
