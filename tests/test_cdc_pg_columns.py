"""PostgreSQL log CDC decodes a table's changes in bulk into columns (ChangeFrame,
connectors.relational.cdc_pg_columns); its events must be byte for byte the ones the row-by-row
path gives (the frame's `events()`: each value loaded by psycopg, as before the bulk path), and a
table or batch the bulk path does not take must still come through, row by row."""

from __future__ import annotations

import psycopg
import pytest

from connectors.base import ChangeFrame
from connectors.relational.pg_logical import PgLogicalConfig, PgLogicalTask
from deploy.servers import ensure_pg_logical
from tests.support.cdc import libpq, make_runtime

KINDS = """CREATE TABLE kinds (
    id bigint PRIMARY KEY, i2 smallint, i4 int NOT NULL, t text, vc varchar(20), bc char(3), u uuid,
    b boolean, n numeric(12, 3), nf numeric, f4 real, f8 double precision, d date, ts timestamp,
    tz timestamptz, "名字" text, big text)"""
ROW = (
    "INSERT INTO kinds VALUES ({id}, -32768, 2147483647, 'tab\tnew\nline \"q\" ''s''', 'varchar', 'ab', "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, -123456789.125, 0.000000001, 1.1, -2.5e-300, "
    "'0001-01-01', '2026-12-07 19:46:45.123456', '2026-12-07 19:46:45.5+05:30', '汉字 ✓', {big})"
)
BIG = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)"  # ~12 kB: TOASTed


@pytest.fixture(scope="module")
def setup(stack_settings, pg_url, tmp_path_factory):
    ensure_pg_logical()
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kinds, other")
        conn.execute(KINDS)
        conn.execute("CREATE TABLE other (id int PRIMARY KEY, j jsonb)")
    config = PgLogicalConfig(
        name="pg-columns", url=pg_url, system="cols", tables=["kinds", "other"], unknown_types="string"
    )
    task = PgLogicalTask(config)  # unknown_types: jsonb as text
    runtime = make_runtime(stack_settings, task, f"sqlite:///{tmp_path_factory.mktemp('cols')}/control.db")
    runtime.start()
    runtime.publish(task.poll())  # the (empty) snapshot and the hand-over offset
    yield runtime, task
    task.drop_slot()
    task.close()


def _write(pg_url: str, *transactions: list[str]) -> None:
    with psycopg.connect(libpq(pg_url)) as conn:
        for statements in transactions:
            for statement in statements:
                conn.execute(statement)
            conn.commit()


def _poll_all(runtime, task, changes: int) -> tuple[list, list[ChangeFrame]]:
    """Poll (and publish) until `changes` came; the events and frames of those polls."""
    events, frames = [], []
    for _ in range(100):
        batch = task.poll()
        events += batch.events
        frames += batch.frames
        runtime.publish(batch)
        if len(events) + sum(len(f) for f in frames) >= changes:
            break
    return events, frames


def _same_bytes(runtime, frame: ChangeFrame) -> None:
    encoded = runtime._encode_frame(frame)
    assert encoded is not None, "the frame did not encode in columns"
    _, values, keys = encoded
    rows = runtime._encode_table(frame.events())
    assert [value for _, value in rows] == values
    assert [key for key, _ in rows] == keys


def test_bulk_decoded_changes_encode_byte_for_byte_as_row_by_row(setup, pg_url):
    runtime, task = setup
    _write(
        pg_url,
        [ROW.format(id=1, big=BIG), ROW.format(id=2, big="NULL"), "INSERT INTO other VALUES (1, '{\"a\": [1, 2]}')"],
        [
            "INSERT INTO kinds (id, i4) VALUES (3, 0)",  # nulls everywhere else
            "INSERT INTO kinds (id, i4, f4, f8) VALUES (5, 0, 'NaN', '-Infinity')",
            "UPDATE kinds SET i4 = i4 - 1, t = NULL WHERE id = 1",  # big not resent: unchanged TOAST
            "UPDATE other SET j = '{\"b\": null}'",
            "UPDATE kinds SET id = 4, b = false WHERE id = 2",  # key change: before and after keys differ
            "DELETE FROM kinds WHERE id = 3",
        ],
    )
    events, frames = _poll_all(runtime, task, 9)
    kinds = [f for f in frames if f.table.table == "kinds"]
    assert sum(len(f) for f in kinds) == 7
    assert [e.table.table for e in events] == ["other", "other"]  # jsonb: no bulk path, row by row
    for frame in kinds:
        _same_bytes(runtime, frame)
    by_op = {(e.op, (e.after or e.before)["id"]): e for f in kinds for e in f.events()}
    toasted = by_op[("u", 1)]
    assert toasted.after["big"] == toasted.before["big"] and len(toasted.after["big"]) == 12800
    assert toasted.after["名字"] == "汉字 ✓" and toasted.after["t"] is None
    assert by_op[("d", 3)].after is None and by_op[("d", 3)].before["i4"] == 0
    orders = [(e.transaction["total_order"], e.transaction["data_collection_order"]) for e in kinds[-1].events()]
    assert orders[-5:] == [(1, 1), (2, 2), (3, 3), (5, 4), (6, 5)]  # the update of `other` came fourth


def test_values_arrow_does_not_parse_go_row_by_row(setup, pg_url):
    runtime, task = setup
    _write(
        pg_url,
        ["INSERT INTO kinds (id, i4, nf) VALUES (10, 1, 'NaN')", "INSERT INTO kinds (id, i4) VALUES (11, 1)"],
    )
    events, frames = _poll_all(runtime, task, 2)
    assert not frames
    assert [e.after["id"] for e in events] == [10, 11]
    assert str(events[0].after["nf"]) == "NaN"
