"""sinks/clickhouse/catalog.py against the session's ClickHouse 18.16, whose `system.columns` has no
`position`: the sink's tables are still described, columns in declaration order with their key,
type, comment and default, and a table not there yet reported rather than failing the others."""

from __future__ import annotations

import uuid

from deploy.clickhouse import client_from_url
from sinks.clickhouse.catalog import describe_tables


def test_tables_described_in_declaration_order_without_system_columns_position(stack_settings):
    client = client_from_url(stack_settings.clickhouse_url)
    table = f"catalog_{uuid.uuid4().hex[:6]}"
    client.execute(
        f"CREATE TABLE {table} (zid Int64, citizen_id Nullable(String) COMMENT '公民身份号码', "
        "age UInt8 DEFAULT 0, _version UInt64) ENGINE = ReplacingMergeTree(_version) ORDER BY zid"
    )
    try:
        client.execute(f"INSERT INTO {table} VALUES", [(1, "370102199001011234", 30, 1)])
        harvest = describe_tables(stack_settings.clickhouse_url, [table, f"{table}_later"])
    finally:
        client.execute(f"DROP TABLE IF EXISTS {table}")
        client.disconnect()
    (dataset,) = harvest.datasets
    assert dataset.name == f"default.{table}" and dataset.properties["rows"] == 1
    described = [(f.name, f.position, f.type, f.key, f.comment, f.default) for f in dataset.fields]
    assert described == [
        ("zid", 1, "Int64", True, None, None),
        ("citizen_id", 2, "Nullable(String)", False, "公民身份号码", None),
        ("age", 3, "UInt8", False, None, "0"),
        ("_version", 4, "UInt64", False, None, None),
    ]
    assert harvest.errors == [f"default.{table}_later: no such table yet (the sink creates it with its first rows)"]
