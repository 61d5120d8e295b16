"""HBase sink end to end over the real Thrift wire protocol.

No HBase server exists here, so the store is tests/doubles/hbase_thrift_double.py (a TEST
DOUBLE speaking HBase Thrift v1), run as a subprocess on a free port in 29090-29099. The sink
writes through happybase; assertions read back with plain happybase, like any HBase client.
"""

from __future__ import annotations

import hashlib
import uuid

import happybase
import pytest

from sinks.base import FatalSinkError, SinkError, SinkRecord
from sinks.hbase import HBaseSinkSettings, HBaseSinkTask, row_key
from tests.doubles.hbase import PORTS, Double, _port_free, start_double

# -- the double ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def double():
    d = start_double()
    yield d
    d.stop()


@pytest.fixture
def table_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"  # fresh HBase table per test on the shared double


def make_task(double: Double, table: str, **overrides) -> HBaseSinkTask:
    settings = {
        "host": "127.0.0.1",
        "port": double.port,
        "table": table,
        "salt_buckets": 16,
        "batch_size": 3,
        "timeout_ms": 5000,
        **overrides,
    }
    return HBaseSinkTask(settings)


def read_all(double: Double, table: str) -> dict[bytes, dict[bytes, bytes]]:
    conn = happybase.Connection("127.0.0.1", double.port)
    try:
        return dict(conn.table(table).scan())
    finally:
        conn.close()


# -- change events ---------------------------------------------------------------------------


def event(
    table: str,
    op: str,
    key: dict,
    before: dict | None,
    after: dict | None,
    offset: int = 0,
    ts: int = 1_700_000_000_000,
):
    return SinkRecord(
        topic=f"clean.shop.{table}",
        partition=0,
        offset=offset,
        key=key,
        value={
            "before": before,
            "after": after,
            "op": op,
            "ts_ms": ts,
            "source": {
                "system": "postgres",
                "database": "shop",
                "schema": "public",
                "table": table,
                "connector": "pg",
                "position": {"lsn": 1000 + offset},
                "snapshot": False,
            },
            "transaction": None,
        },
    )


def expected_key(*pk, buckets: int = 16) -> bytes:
    """Independent re-statement of the documented row key: md5(joined)[0] % buckets as 2 hex."""
    body = "|".join(str(v) for v in pk)
    return f"{hashlib.md5(body.encode()).digest()[0] % buckets:02x}|{body}".encode()


ORDER_1 = {"id": 1, "customer": "ada", "amount": 12.5, "note": "first"}
ORDER_2 = {"id": 2, "customer": "bob", "amount": 7.0, "note": None}
ORDER_3 = {"id": 3, "customer": "cy", "amount": 1.25, "note": "gift"}
LINE_11 = {"order_id": 1, "line_no": 1, "sku": "A-1", "qty": 2}
LINE_12 = {"order_id": 1, "line_no": 2, "sku": "B|2", "qty": 1}


def scenario() -> list[SinkRecord]:
    """c/u/d over two source tables (orders: single pk, order_lines: composite pk).

    Same records (offsets, positions) on every call, as a redelivery would be.
    """
    changes = [
        ("orders", "c", {"id": 1}, None, ORDER_1),
        ("orders", "c", {"id": 2}, None, ORDER_2),
        ("orders", "c", {"id": 3}, None, ORDER_3),
        ("order_lines", "c", {"order_id": 1, "line_no": 1}, None, LINE_11),
        ("order_lines", "c", {"order_id": 1, "line_no": 2}, None, LINE_12),
        ("orders", "u", {"id": 1}, ORDER_1, {**ORDER_1, "amount": 15.0, "note": None}),
        ("orders", "d", {"id": 3}, ORDER_3, None),
        ("order_lines", "u", {"order_id": 1, "line_no": 1}, LINE_11, {**LINE_11, "qty": 5}),
    ]
    return [event(*change, offset=offset) for offset, change in enumerate(changes)]


# -- end-to-end through the double -----------------------------------------------------------


def test_writes_salted_rows_per_family_and_reads_back(double, table_name):
    task = make_task(double, table_name)
    task.put(scenario())
    task.flush()
    task.close()

    conn = happybase.Connection("127.0.0.1", double.port)
    table = conn.table(table_name)
    assert set(table.families()) == {b"orders", b"order_lines"}  # created with the families

    rows = dict(table.scan())
    assert set(rows) == {expected_key(1), expected_key(2), expected_key(1, 1), expected_key(1, 2)}
    assert all(k[:2] in {f"{i:02x}".encode() for i in range(16)} and k[2:3] == b"|" for k in rows)

    # point lookup straight from the key: updated values, NULL column omitted, metadata cells
    assert table.row(expected_key(1)) == {
        b"orders:id": b"1",
        b"orders:customer": b"ada",
        b"orders:amount": b"15.0",
        b"orders:_op": b"u",
        b"orders:_ts_ms": b"1700000000000",
        b"orders:_position": b'{"lsn":1005}',
    }
    assert b"orders:note" not in table.row(expected_key(2))
    assert table.row(expected_key(2), columns=[b"orders:customer"]) == {b"orders:customer": b"bob"}
    assert table.row(expected_key(1, 1))[b"order_lines:qty"] == b"5"
    # composite key joined in key order; the '|' inside a value only appears in cells
    assert table.row(expected_key(1, 2))[b"order_lines:sku"] == b"B|2"
    # deleted row is gone
    assert table.row(expected_key(3)) == {}
    conn.close()


def test_reput_of_same_records_is_idempotent(double, table_name):
    task = make_task(double, table_name)
    task.put(scenario())
    task.flush()
    first = read_all(double, table_name)
    # at-least-once delivery: the runtime may hand the same records again after a restart
    task.put(scenario())
    task.flush()
    task.put(scenario()[:4])
    task.put(scenario()[4:])
    task.flush()
    assert read_all(double, table_name) == first
    task.close()


def test_update_to_null_across_flushes_deletes_the_cell(double, table_name):
    task = make_task(double, table_name)
    task.put([event("orders", "c", {"id": 7}, None, ORDER_1 | {"id": 7})])
    task.flush()
    task.put([event("orders", "u", {"id": 7}, ORDER_1 | {"id": 7}, ORDER_1 | {"id": 7, "note": None})])
    task.flush()
    row = read_all(double, table_name)[expected_key(7)]
    assert b"orders:note" not in row and row[b"orders:customer"] == b"ada"
    task.close()


def test_delete_only_removes_that_source_tables_family(double, table_name):
    # customers and orders with the same pk value share a row key, in different families
    task = make_task(double, table_name)
    task.put(
        [
            event("orders", "c", {"id": 9}, None, ORDER_1 | {"id": 9}),
            event("customers", "c", {"id": 9}, None, {"id": 9, "name": "dee"}),
        ]
    )
    task.flush()
    task.put([event("orders", "d", {"id": 9}, ORDER_1 | {"id": 9}, None)])
    task.flush()
    row = read_all(double, table_name)[expected_key(9)]
    assert row == {
        b"customers:id": b"9",
        b"customers:name": b"dee",
        b"customers:_op": b"c",
        b"customers:_ts_ms": b"1700000000000",
        b"customers:_position": row[b"customers:_position"],
    }
    task.close()


def test_delete_then_reinsert_in_one_flush_keeps_the_new_row(double, table_name):
    task = make_task(double, table_name)
    old = {"id": 4, "customer": "eve", "amount": 3.0, "note": "old"}
    task.put([event("orders", "c", {"id": 4}, None, old)])
    task.flush()
    new = {"id": 4, "customer": "eve2", "amount": 4.0}  # 'note' column no longer in the image
    task.put([event("orders", "d", {"id": 4}, old, None), event("orders", "c", {"id": 4}, None, new)])
    task.flush()
    row = read_all(double, table_name)[expected_key(4)]
    assert row[b"orders:customer"] == b"eve2" and row[b"orders:_op"] == b"c"
    assert b"orders:note" not in row  # stale cell of the deleted version removed
    task.close()


def test_many_rows_in_small_batches(double, table_name):
    task = make_task(double, table_name, batch_size=2, salt_buckets=4)
    task.put([event("orders", "c", {"id": i}, None, {"id": i, "customer": f"c{i}"}) for i in range(50)])
    task.flush()
    rows = read_all(double, table_name)
    assert set(rows) == {expected_key(i, buckets=4) for i in range(50)}
    assert {k[:2] for k in rows} == {b"00", b"01", b"02", b"03"}  # spread over all buckets
    task.close()


def test_flush_without_records_does_not_connect():
    task = HBaseSinkTask({"host": "127.0.0.1", "port": 1, "table": "unused"})
    task.flush()  # nothing buffered: no store access, no error
    task.close()


def test_framed_compact_server_settings():
    # `hbase thrift start -hsha -c` style server: the settings must reach happybase
    d = start_double(None, "--transport", "framed", "--protocol", "compact")
    try:
        task = make_task(d, "t_framed", transport="framed", protocol="compact")
        task.put(scenario())
        task.flush()
        task.close()
        conn = happybase.Connection("127.0.0.1", d.port, transport="framed", protocol="compact")
        assert conn.table("t_framed").row(expected_key(2))[b"orders:customer"] == b"bob"
        conn.close()
    finally:
        d.stop()


# -- failures ----------------------------------------------------------------------------------


def test_double_down_raises_sink_error_and_retry_succeeds():
    d = start_double()
    table = "t_down"
    task = make_task(d, table)
    task.put(scenario()[:5])  # both families: the table check is cached from here on
    task.flush()
    d.stop()

    task.put(scenario()[5:])
    with pytest.raises(SinkError):
        task.flush()
    with pytest.raises(SinkError):  # still down: the retry fails the same way, nothing hangs
        task.flush()

    # the store comes back (an empty one here): the retried flush reconnects, recreates the
    # table and writes the buffer it kept
    d2 = start_double(d.port)
    try:
        task.flush()
        rows = read_all(d2, table)
        assert rows[expected_key(1)][b"orders:amount"] == b"15.0"
        assert rows[expected_key(1, 1)][b"order_lines:qty"] == b"5"
        assert expected_key(3) not in rows
    finally:
        task.close()
        d2.stop()


def test_unreachable_server_raises_sink_error():
    port = next(p for p in PORTS if _port_free(p))
    task = HBaseSinkTask({"host": "127.0.0.1", "port": port, "table": "t", "timeout_ms": 2000})
    task.put(scenario()[:1])
    with pytest.raises(SinkError):
        task.flush()


def test_existing_table_without_family_is_fatal(double, table_name):
    conn = happybase.Connection("127.0.0.1", double.port)
    conn.create_table(table_name, {"orders": {}})
    conn.close()
    task = make_task(double, table_name)
    task.put([event("order_lines", "c", {"order_id": 1, "line_no": 1}, None, LINE_11)])
    with pytest.raises(FatalSinkError, match="alter"):
        task.flush()
    task.close()


def test_keyless_record_is_fatal():
    task = HBaseSinkTask({"table": "t"})
    with pytest.raises(FatalSinkError):
        task.put([event("orders", "c", None, None, ORDER_1)])


# -- units -------------------------------------------------------------------------------------


def test_row_key_escapes_separator_and_null():
    assert row_key({"a": "x|y"}, 16) != row_key({"a": "x", "b": "y"}, 16)
    assert row_key({"a": None}, 16).endswith(b"|\\N")
    assert row_key({"a": 1, "b": "z"}, 1) == b"00|1|z"


def test_settings_table_name_and_family_map(double, table_name):
    s = HBaseSinkSettings(table="orders", namespace="huiliu", table_prefix="prod")
    assert s.table_name == "huiliu:prod_orders"
    with pytest.raises(ValueError):
        HBaseSinkSettings(table="a:b")
    # family_map renames a source table's family and pre-creates it with the table
    task = make_task(double, table_name, family_map={"orders": "o", "order_lines": "ol"})
    task.put(scenario()[:1])
    task.flush()
    conn = happybase.Connection("127.0.0.1", double.port)
    assert set(conn.table(table_name).families()) == {b"o", b"ol"}
    conn.close()
    task.close()
