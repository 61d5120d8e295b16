"""sinks/clickhouse/catalog.py against the session's ClickHouse 18.16, whose `system.columns` has no
`position`: the sink's tables are still described, columns in declaration order with their key,
type, comment and default, and a table not there yet reported rather than failing the others."""

from __future__ import annotations

import uuid

from deploy.clickhouse import client_from_url
from sinks.clickhouse.catalog import describe_tables

COLUMNS = [  # name, type, comment, default: the table's declaration
    ("zid", "Int64", None, None),
    ("citizen_id", "Nullable(String)", "公民身份号码", None),
    ("age", "UInt8", None, "0"),
    ("_version", "UInt64", None, None),
]


def _declared(name: str, type_: str, comment: str | None, default: str | None) -> str:
    return f"{name} {type_}" + (f" DEFAULT {default}" if default else "") + (f" COMMENT '{comment}'" if comment else "")


def test_tables_described_in_declaration_order_without_system_columns_position(stack_settings):
    table = f"catalog_{uuid.uuid4().hex[:6]}"
    ddl = ", ".join(_declared(*c) for c in COLUMNS)
    ch = client_from_url(stack_settings.clickhouse_url)
    ch.execute(f"CREATE TABLE {table} ({ddl}) ENGINE = ReplacingMergeTree(_version) ORDER BY zid")
    ch.execute(f"INSERT INTO {table} VALUES", [(1, "370102199001011234", 30, 1)])
    harvest = describe_tables(stack_settings.clickhouse_url, [table, f"{table}_later"])
    ch.execute(f"DROP TABLE {table}")
    ch.disconnect()

    (dataset,) = harvest.datasets
    assert dataset.name == f"default.{table}" and dataset.properties["rows"] == 1
    described = [(f.name, f.position, f.type, f.key, f.comment, f.default) for f in dataset.fields]
    assert described == [(n, i, t, n == "zid", c, d) for i, (n, t, c, d) in enumerate(COLUMNS, 1)]
    assert harvest.errors == [f"default.{table}_later: no such table yet (the sink creates it with its first rows)"]
