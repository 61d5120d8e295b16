"""The ClickHouse sink's column writer (sinks.clickhouse.native): every type it writes itself is
byte for byte what clickhouse-driver writes from the Python values the sink used to hand it, and
a block of them (with a column the driver still writes) lands in the real server as those values."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from types import SimpleNamespace

import polars as pl
import pytest
from clickhouse_driver import Client
from clickhouse_driver.columns.service import write_column

from sinks.clickhouse import client_from_url
from sinks.clickhouse.columns import python_values
from sinks.clickhouse.native import column_bytes, insert_block

LONG = "长" * 50  # 150 bytes: a two-byte length
LONGER = "x" * 20_000  # a three-byte length

CASES = [
    (pl.Series([1, None, -5, 2**62], dtype=pl.Int64), "Nullable(Int64)"),
    (pl.Series([1, 2, -3], dtype=pl.Int32), "Int64"),  # a narrower schema into a widened column
    (pl.Series([7, 8], dtype=pl.Int64), "UInt64"),
    (pl.Series([1.5, None, -2.25], dtype=pl.Float64), "Nullable(Float64)"),
    (pl.Series([0.5, 3.0], dtype=pl.Float32), "Float32"),
    (pl.Series(["a", "张三", None, "", LONG, LONGER]), "Nullable(String)"),
    (pl.Series(["a", "bb"]), "String"),
    (pl.Series(["c", "d", "c"], dtype=pl.Categorical), "String"),
    (pl.Series([date(1990, 5, 17), None, date(1960, 1, 1), date(2149, 6, 6), date(2200, 1, 1)]), "Nullable(Date)"),
    (pl.Series([datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC), None]), "Nullable(DateTime)"),
    (pl.Series([Decimal("12.50"), None, Decimal("-3.01")], dtype=pl.Decimal(12, 2)), "Nullable(Decimal(12, 2))"),
    (pl.Series([Decimal("1.5"), Decimal("-3.01")], dtype=pl.Decimal(8, 2)), "Decimal(9, 3)"),
    (pl.Series([Decimal("12345678901234567890.5"), Decimal("-3.01")], dtype=pl.Decimal(30, 2)), "Decimal(30, 2)"),
    (pl.Series([True, False, None]), "Nullable(UInt8)"),
    (pl.Series([clock(1, 2, 3, 4), clock(0, 0)]), "Int64"),
]


class _Out:
    """The driver's writer interface, collected into bytes."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data):
        self.parts.append(bytes(data))

    def write_strings(self, items, encoding="utf-8"):
        for item in items:
            data = item.encode(encoding) if isinstance(item, str) else item
            size, head = len(data), bytearray()
            while True:
                byte, size = size & 0x7F, size >> 7
                head.append(byte | (0x80 if size else 0))
                if not size:
                    break
            self.parts.append(bytes(head) + data)


def _driver_bytes(series: pl.Series, ch_type: str) -> bytes:
    client = Client("localhost")
    context = client.connection.context
    context.client_settings = client.client_settings
    context.server_info = SimpleNamespace(get_timezone=lambda: "UTC", used_revision=54413, session_timezone=None)
    out = _Out()
    write_column(context, "c", ch_type, python_values(series, ch_type), out)
    return b"".join(out.parts)


@pytest.mark.parametrize(("series", "ch_type"), CASES, ids=[t for _, t in CASES])
def test_bytes_equal_what_the_driver_writes(series, ch_type):
    assert column_bytes(series, ch_type) == _driver_bytes(series, ch_type)


def test_types_it_does_not_write_are_left_to_the_driver():
    assert column_bytes(pl.Series(["ab"]), "FixedString(2)") is None
    assert column_bytes(pl.Series([b"\xff"]), "String") is None  # bytes: the driver's text path
    assert column_bytes(pl.Series([2**40]), "Int32") is None  # out of range: the driver's checks decide
    assert column_bytes(pl.Series([1]), "Nullable(Enum8('a' = 1))") is None


def test_a_block_lands_in_clickhouse_with_its_values(stack_settings):
    table = f"native_{uuid.uuid4().hex[:8]}"
    client = client_from_url(stack_settings.clickhouse_url)
    client.execute(
        f"CREATE TABLE {table} (id Int64, name Nullable(String), born Nullable(Date), seen DateTime, "
        "amount Nullable(Decimal(12, 2)), code FixedString(2), flag UInt8) ENGINE = MergeTree ORDER BY id"
    )
    columns = [
        ("id", pl.Series([1, 2, 3], dtype=pl.Int32)),
        ("name", pl.Series(["张三", None, LONGER])),
        ("born", pl.Series([date(1990, 5, 17), None, date(1960, 1, 1)])),
        ("seen", pl.Series([datetime(2026, 11, 25, 8, 0, tzinfo=UTC)] * 2 + [datetime(1969, 1, 1, tzinfo=UTC)])),
        ("amount", pl.Series([Decimal("12.50"), None, Decimal("-3.01")], dtype=pl.Decimal(12, 2))),
        ("code", pl.Series(["37", "11", "44"])),  # FixedString: written by the driver in the same block
        ("flag", pl.Series([True, False, True])),
    ]
    announced = insert_block(client, table, columns, python_values)
    assert [t for _, t in announced] == [
        "Int64",
        "Nullable(String)",
        "Nullable(Date)",
        "DateTime",
        "Nullable(Decimal(12, 2))",
        "FixedString(2)",
        "UInt8",
    ]
    rows = client.execute(
        f"SELECT id, name, born, toUnixTimestamp(seen), amount, code, flag FROM {table} ORDER BY id",
    )
    assert rows == [
        (1, "张三", date(1990, 5, 17), 1795593600, Decimal("12.50"), "37", 1),
        (2, None, None, 1795593600, None, "11", 0),
        (3, LONGER, date(1970, 1, 1), 0, Decimal("-3.01"), "44", 1),  # out of range: 0, as the driver does for Date
    ]
    # the connection stays usable after a block, and a refused insert leaves it usable too
    with pytest.raises(Exception, match="nope|exist"):
        insert_block(client, "nope_" + table, columns, python_values)
    assert client.execute(f"SELECT count() FROM {table}") == [(3,)]
    client.execute(f"DROP TABLE {table}")
    client.disconnect()
