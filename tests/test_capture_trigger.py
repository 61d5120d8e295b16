"""Trigger mode (AGG-02): change-log table + row triggers on PostgreSQL and MariaDB, through SourceRuntime."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from connectors.relational.selection import TableSelection, UnsupportedDatabase
from connectors.relational.trigger_mode import TriggerSourceConfig, TriggerSourceTask
from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec
from tests.sources import consume

DATABASES = {
    "postgresql": ("pg_url", "TIMESTAMP", "DOUBLE PRECISION", "BYTEA"),
    "mariadb": ("mysql_url", "DATETIME(6)", "DOUBLE", "BLOB"),
}


def poll_until(task, want: int, timeout: float = 30.0):
    """Poll until a batch with `want` events arrives (gap waits take an extra poll or two)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        batch = task.poll()
        if batch.events:
            assert len(batch.events) == want, [e.op for e in batch.events]
            return batch
        time.sleep(0.2)
    pytest.fail(f"no batch of {want} events within {timeout}s")


@pytest.mark.parametrize("db", list(DATABASES))
def test_trigger_capture_insert_update_delete(db, request, stack_settings, tmp_path):
    fixture, ts, dbl, blob = DATABASES[db]
    url = request.getfixturevalue(fixture)
    engine = create_engine(url)
    cl = f"cl_{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS accounts"))
        conn.execute(
            text(
                f"CREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, "
                f"amount NUMERIC(12,2), born DATE, seen_at {ts}, score {dbl}, photo {blob}, secret VARCHAR(9))"
            )
        )
        conn.execute(text("INSERT INTO accounts (id, name, amount) VALUES (1, 'before install', 1.00)"))
    system = f"trg_{db}_{uuid.uuid4().hex[:6]}"
    config = TriggerSourceConfig(
        name=f"trg-{system}",
        url=url,
        system=system,
        changelog_table=cl,
        tables=TableSelection(include=["*.accounts"], exclude_columns=["secret"]),
    )
    task = TriggerSourceTask(config)
    rt = SourceRuntime(
        task,
        bootstrap=stack_settings.kafka_bootstrap,
        control_db_url=f"sqlite:///{tmp_path / 'c.db'}",
        codec=WireCodec(stack_settings.schema_registry_url),
    )
    rt.start()  # installs the change log and triggers
    assert [t for t, _ in task.changelog.triggers()] == [f"{task.units[0].captured.schema}.accounts"] * (
        1 if db == "postgresql" else 3
    )

    seen = datetime(2026, 3, 4, 5, 6, 7, 890000)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO accounts VALUES (2, '张三', 12.50, '1990-03-07', :s, 1.5, :p, 'x')"),
            {"s": seen, "p": b"\x00\x01\xff"},
        )
        conn.execute(text("INSERT INTO accounts (id, name) VALUES (3, 'gone soon')"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET name = '李四', amount = 99999.99 WHERE id = 2"))
        conn.execute(text("DELETE FROM accounts WHERE id = 3"))
        conn.execute(text("UPDATE accounts SET amount = 2.00 WHERE id = 1"))

    def logged() -> int:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {cl}")).scalar()

    batch = poll_until(task, 5)
    assert logged() == 5  # read but not yet durable in Kafka: nothing purged
    rt.publish(batch)
    assert logged() == 0  # purged once the runtime stored the offset

    topic = rt.topic_of(task.units[0].captured)
    events = consume(stack_settings, topic, 5)
    assert [(e["op"], (e["after"] or e["before"])["id"]) for e in events] == [
        ("c", 2),
        ("c", 3),
        ("u", 2),
        ("d", 3),
        ("u", 1),
    ]
    full = {
        "id": 2,
        "name": "张三",
        "amount": Decimal("12.50"),
        "born": date(1990, 3, 7),
        "score": 1.5,
        "photo": b"\x00\x01\xff",
    }
    created = events[0]["after"]
    assert {k: created[k] for k in full} == full and created["seen_at"].replace(tzinfo=None) == seen
    assert "secret" not in created and events[0]["before"] is None
    assert events[2]["before"]["name"] == "张三" and events[2]["after"]["name"] == "李四"
    assert events[2]["after"]["amount"] == Decimal("99999.99")
    assert events[3]["before"]["name"] == "gone soon" and events[3]["after"] is None
    assert events[4]["before"]["name"] == "before install" and events[4]["after"]["amount"] == Decimal("2.00")
    ids = [json.loads(e["source"]["position"])["changelog_id"] for e in events]
    assert ids == sorted(ids) and [e["source"]["sequence"] for e in events] == ids

    # A transaction still open when a later one committed: its earlier id is not skipped.
    task.close()
    task = TriggerSourceTask(config)
    rt = SourceRuntime(
        task,
        bootstrap=stack_settings.kafka_bootstrap,
        control_db_url=f"sqlite:///{tmp_path / 'c.db'}",
        codec=WireCodec(stack_settings.schema_registry_url),
    )
    rt.start()
    slow = engine.connect()
    slow.execute(text("INSERT INTO accounts (id, name) VALUES (10, 'slow')"))  # takes the next id, uncommitted
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name) VALUES (11, 'fast')"))
    for _ in range(3):
        assert rt.run_once() == 0  # id 11 is visible, the hole before it is not passed
    slow.commit()
    slow.close()
    rt.publish(poll_until(task, 2))
    more = consume(stack_settings, topic, 7)[5:]
    assert [e["after"]["id"] for e in more] == [10, 11]

    task.uninstall()
    assert task.changelog.triggers() == [] and not task.changelog.exists()
    with engine.begin() as conn:  # the table works without the triggers
        conn.execute(text("INSERT INTO accounts (id, name) VALUES (12, 'after uninstall')"))
    task.close()
    engine.dispose()


def test_trigger_mode_refuses_sqlite_naming_the_field(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(UnsupportedDatabase, match=r"^url: trigger mode supports postgresql, mysql"):
        TriggerSourceTask(TriggerSourceConfig(name="x", url=url, system="s"))
    with pytest.raises(ValueError, match="changelog_table"):
        TriggerSourceTask(
            TriggerSourceConfig(
                name="x",
                url="postgresql+psycopg://postgres@127.0.0.1/postgres",
                system="s",
                changelog_table="bad name; drop",
            )
        )
