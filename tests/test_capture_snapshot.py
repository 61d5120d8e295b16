"""Snapshot mode (AGG-01): chunked, consistent, resumable reads through SourceRuntime into Kafka."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from connectors.relational.selection import TableSelection, UnsupportedDatabase
from connectors.relational.snapshot_mode import SnapshotSourceConfig, SnapshotSourceTask
from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec
from tests.sources import CrashAfter, consume, raw_messages


def runtime_for(task, settings, tmp_path) -> SourceRuntime:
    return SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=f"sqlite:///{tmp_path / 'control.db'}",
    )


def _make_tables(url: str, schema_sql: str, n: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for t in ("people", "orders", "skipped"):
            conn.execute(text(f"DROP TABLE IF EXISTS {t}"))
        conn.execute(
            text(
                f"CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(40), amount NUMERIC(12,2), "
                f"born DATE, seen_at {schema_sql}, secret VARCHAR(20))"
            )
        )
        conn.execute(
            text("CREATE TABLE orders (region VARCHAR(10), no INTEGER, total NUMERIC(10,2), PRIMARY KEY (region, no))")
        )
        conn.execute(text("CREATE TABLE skipped (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text("INSERT INTO people VALUES (:id, :name, :amount, :born, :seen, 'x')"),
            [
                {
                    "id": i,
                    "name": f"名字{i}",
                    "amount": i / 4,
                    "born": date(1990, 1, 1 + i % 28),
                    "seen": datetime(2026, 1, 1, 8, 0, i % 60, 123000),
                }
                for i in range(1, n + 1)
            ],
        )
        conn.execute(
            text("INSERT INTO orders VALUES (:r, :no, :t)"),
            [{"r": r, "no": no, "t": no} for r in ("east", "west") for no in range(1, 8)],
        )
    engine.dispose()


DATABASES = {
    "postgresql": ("pg_url", "TIMESTAMP"),
    "sqlite": (None, "TIMESTAMP"),
    "mariadb": ("mysql_url", "DATETIME(6)"),
}


@pytest.mark.parametrize("db", list(DATABASES))
def test_snapshot_interrupted_and_resumed_reads_every_row_once(db, request, stack_settings, tmp_path):
    fixture, ts_type = DATABASES[db]
    url = request.getfixturevalue(fixture) if fixture else f"sqlite:///{tmp_path / 'src.db'}"
    _make_tables(url, ts_type, 95)
    system = f"snap_{db}_{uuid.uuid4().hex[:6]}"
    config = SnapshotSourceConfig(
        name=f"snap-{system}",
        url=url,
        system=system,
        chunk_size=10,
        tables=TableSelection(include=["*.people", "*.orders"], exclude_columns=["secret"]),
    )

    # First run: orders (2 chunks) and two chunks of people are published, the fifth poll crashes.
    first = runtime_for(CrashAfter(SnapshotSourceTask(config), 4), stack_settings, tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.drain()
    first.task.close()
    stored = first.offsets.load_all()
    people_partition = next(p for p in stored if p.endswith(".people"))
    orders_partition = next(p for p in stored if p.endswith(".orders"))
    assert stored[people_partition]["chunk_last_key"] == [20] and not stored[people_partition]["done"]
    assert stored[orders_partition] == {**stored[orders_partition], "chunk_last_key": ["west", 7], "done": True}

    # Second run: a new task resumes after the last finished chunk of each table.
    task = SnapshotSourceTask(config)
    second = runtime_for(task, stack_settings, tmp_path)
    second.drain()
    assert task.finished
    second.task.close()

    people = consume(stack_settings, second.topic_of(task.units[1].captured), 95)
    assert sorted(e["after"]["id"] for e in people) == list(range(1, 96))  # every row, none twice
    assert {e["op"] for e in people} == {"r"} and all(e["source"]["snapshot"] for e in people)
    assert [e["after"]["id"] for e in people] == list(range(1, 96))  # key order
    row = next(e["after"] for e in people if e["after"]["id"] == 42)
    assert row == {
        "id": 42,
        "name": "名字42",
        "amount": Decimal("10.50"),
        "born": date(1990, 1, 15),
        "seen_at": datetime(2026, 1, 1, 8, 0, 42, 123000, tzinfo=row["seen_at"].tzinfo),
    }  # `secret` excluded
    position = json.loads(next(e for e in people if e["after"]["id"] == 42)["source"]["position"])
    assert position == {"chunk_last_key": [50], "key": [42]}
    assert len({e["source"]["sequence"] for e in people}) == 1  # one row version per snapshot pass

    orders = consume(stack_settings, second.topic_of(task.units[0].captured), 14)
    assert [(e["after"]["region"], e["after"]["no"]) for e in orders] == [
        (r, n) for r in ("east", "west") for n in range(1, 8)
    ]
    assert not any(p.endswith(".skipped") for p in second.offsets.load_all())


def test_snapshot_is_consistent_and_reads_custom_queries(pg_url, stack_settings, tmp_path):
    _make_tables(pg_url, "TIMESTAMP", 30)
    system = f"snapq_{uuid.uuid4().hex[:6]}"
    config = SnapshotSourceConfig(
        name=f"snap-{system}",
        url=pg_url,
        system=system,
        chunk_size=10,
        tables=None,
        queries=[
            {
                "name": "rich",
                "key": ["id"],
                "columns": {"id": "int", "name": "text", "doubled": "numeric(14,2)"},
                "sql": "SELECT id, name, amount * 2 AS doubled FROM people WHERE id > 5",
            }
        ],
    )
    task = SnapshotSourceTask(config)
    rt = runtime_for(task, stack_settings, tmp_path)
    rt.run_once()  # the first chunk opens the snapshot
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # changes after the snapshot began are not seen by it
        conn.execute(text("DELETE FROM people WHERE id = 29"))
        conn.execute(text("INSERT INTO people (id, name) VALUES (31, 'late')"))
    engine.dispose()
    rt.drain()
    task.close()
    events = consume(stack_settings, rt.topic_of(task.units[0].captured), 25)
    assert [e["after"]["id"] for e in events] == list(range(6, 31))
    assert events[0]["after"] == {"id": 6, "name": "名字6", "doubled": Decimal("3.00")}


def test_unsupported_combinations_name_the_field(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ValueError, match="tables/queries"):
        SnapshotSourceTask(SnapshotSourceConfig(name="x", url=url, system="s"))
    with pytest.raises(Exception, match="extra"):
        SnapshotSourceConfig(name="x", url=url, system="s", chunk=5)
    from connectors.relational.selection import require_dialect

    with pytest.raises(UnsupportedDatabase, match=r"^consistency: snapshot mode supports postgresql"):
        require_dialect(create_engine("sqlite://"), "snapshot", ("postgresql",), field="consistency")


def _drained(pg_url, settings, control_db, system: str, include: str, chunk_size: int, reader: str):
    """(events published, runtime, task) of one snapshot of the tables matching `include`, drained."""
    task = SnapshotSourceTask(
        SnapshotSourceConfig(
            name=f"snap-{system}",
            url=pg_url,
            system=system,
            chunk_size=chunk_size,
            tables={"include": [include]},
            reader=reader,
        )
    )
    rt = SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=f"sqlite:///{control_db}",
    )
    n = rt.drain()
    task.close()
    return n, rt, task


class _FrozenClock:
    """Stands in for snapshot_mode's `time` module: both runs below stamp the same ts and sequence."""

    @staticmethod
    def time() -> float:
        return 1_760_000_000.5


def test_chunks_in_columns_publish_the_same_bytes_as_row_by_row(pg_url, stack_settings, tmp_path, monkeypatch):
    """A chunk goes to Kafka as one RowFrame, read straight into Arrow through ADBC (PostgreSQL's
    binary COPY) or from Python rows (connectors.columns); the bytes are those of the row-by-row
    path, type by type; a column whose values do not convert exactly (UUID) sends its chunk row by
    row, and a string key makes per-row positions."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS typed_all, typed_odd"))
        conn.execute(
            text(
                "CREATE TABLE typed_all (id BIGINT PRIMARY KEY, small SMALLINT, n INTEGER, name TEXT, code VARCHAR(8), "
                "amount NUMERIC(12,2), wide NUMERIC(30,4), score DOUBLE PRECISION, ok BOOLEAN, born DATE, "
                "seen TIMESTAMP, seen_tz TIMESTAMPTZ, at TIME, blob BYTEA)"
            )
        )
        conn.execute(text("CREATE TABLE typed_odd (region VARCHAR(8), no INTEGER, uid UUID, PRIMARY KEY (region, no))"))
        conn.execute(
            text(
                "INSERT INTO typed_all SELECT i, (i % 300) - 150, i * 1000003 - 2000000000, '名字' || i, "
                "CASE WHEN i % 5 = 0 THEN NULL ELSE 'c' || i END, (i * 37.25) - 999, i * 123456789.1234, "
                "CASE WHEN i % 7 = 0 THEN NULL ELSE i / 3.0 END, i % 2 = 0, DATE '1960-01-01' + i * 97, "
                "TIMESTAMP '1969-12-31 23:59:59.5' + i * INTERVAL '3 days 1.000001 seconds', "
                "TIMESTAMPTZ '2026-01-01 08:00:00+08' + i * INTERVAL '1 minute', TIME '00:00:01' + i * INTERVAL '1 second', "
                "decode(lpad(to_hex(i), 6, '0'), 'hex') FROM generate_series(1, 45) i"
            )
        )
        conn.execute(
            text(
                "INSERT INTO typed_odd SELECT CASE WHEN i % 2 = 0 THEN 'east' ELSE 'west' END, i, "
                "md5(i::text)::uuid FROM generate_series(1, 12) i"
            )
        )
    engine.dispose()
    system = f"snapb_{uuid.uuid4().hex[:6]}"
    monkeypatch.setattr("connectors.relational.snapshot_mode.time", _FrozenClock)

    def run(control: str, reader: str = "rows") -> tuple[int, SourceRuntime, SnapshotSourceTask]:
        return _drained(pg_url, stack_settings, tmp_path / control, system, "*.typed_*", 20, reader)

    framed = []
    with monkeypatch.context() as m:  # count the chunks that went as frames
        from connectors.relational import snapshot_mode

        original = snapshot_mode.frame_of
        m.setattr(snapshot_mode, "frame_of", lambda *a, **k: framed.append(r := original(*a, **k)) or r)
        assert run("columns.db")[0] == 57
    assert sum(f is not None for f in framed) == 3 and sum(f is None for f in framed) == 1
    with monkeypatch.context() as m:  # the same tables, row by row
        m.setattr("connectors.relational.snapshot_mode.frame_of", lambda *a, **k: None)
        n, rt, task = run("rows.db")
    assert n == 57
    arrow = []
    with monkeypatch.context() as m:  # the same tables through ADBC into Arrow
        original_arrow = snapshot_mode.SnapshotSourceTask._arrow_frame
        m.setattr(
            snapshot_mode.SnapshotSourceTask,
            "_arrow_frame",
            staticmethod(lambda *a, **k: arrow.append(r := original_arrow(*a, **k)) or r),
        )
        n, rt, task = run("arrow.db", reader="arrow")
    assert n == 57 and len(arrow) == 3, "the UUID table's chunk must fall back to rows, the others go as Arrow"
    for unit, rows in zip(task.units, (45, 12)):
        topic = rt.topic_of(unit.captured)
        messages = raw_messages(stack_settings, topic, 3 * rows)
        assert len(messages) == 3 * rows, topic
        assert messages[:rows] == messages[rows : 2 * rows] == messages[2 * rows :], topic
    typed = consume(stack_settings, rt.topic_of(task.units[0].captured), 45)
    assert typed[4]["after"]["code"] is None and typed[4]["after"]["name"] == "名字5"
    assert json.loads(typed[0]["source"]["position"]) == {"chunk_last_key": [20], "key": [1]}


def test_numeric_columns_read_as_text_publish_the_same_bytes(pg_url, stack_settings, tmp_path, monkeypatch):
    """Through ADBC the numeric columns the row wants as decimals are read as PostgreSQL's text
    (the driver's own numeric conversion cost more than the rest of a row); a numeric key stays
    numeric, since its values cut the chunks. The messages are those of the row-by-row reader."""
    table = f"money_{uuid.uuid4().hex[:6]}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {table} (code NUMERIC(10,2) PRIMARY KEY, amount NUMERIC(12,2), "
                "wide NUMERIC(30,4), rate DOUBLE PRECISION)"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {table} SELECT i * 1.25, CASE WHEN i % 4 = 0 THEN NULL ELSE i * -7.5 END, "
                "i * 123456789012.3456, i / 3.0 FROM generate_series(1, 25) i"
            )
        )
    engine.dispose()
    monkeypatch.setattr("connectors.relational.snapshot_mode.time", _FrozenClock)
    from connectors.relational import pg_arrow

    statements: list[str] = []
    original_read = pg_arrow.PgArrowReader.read
    monkeypatch.setattr(
        pg_arrow.PgArrowReader, "read", lambda self, stmt: statements.append(str(stmt)) or original_read(self, stmt)
    )

    assert _drained(pg_url, stack_settings, tmp_path / "rows.db", table, f"*.{table}", 10, "rows")[0] == 25
    n, rt, _ = _drained(pg_url, stack_settings, tmp_path / "arrow.db", table, f"*.{table}", 10, "arrow")
    assert n == 25
    assert len(statements) == 3  # three chunks through ADBC, none fell back to rows
    assert "CAST(" in statements[0] and statements[0].count("AS TEXT)") == 2  # amount and wide, not code or rate
    topic = rt.topic_of(rt.task.units[0].captured)
    messages = raw_messages(stack_settings, topic, 50)
    assert len(messages) == 50 and messages[:25] == messages[25:]
    typed = consume(stack_settings, topic, 25)
    assert typed[1]["after"] == {
        "code": Decimal("2.50"),
        "amount": Decimal("-15.00"),
        "wide": Decimal("246913578024.6912"),
        "rate": 2 / 3,
    }
