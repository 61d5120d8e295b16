"""sinks/clickhouse/reader.py against the session's ClickHouse 18.16: under FINAL a filter on the
primary key is read before the merge (PREWHERE) and still returns only a row's last version; a
filter on any other column sees the merged row."""

from __future__ import annotations

import uuid

from deploy.clickhouse import client_from_url
from sinks.clickhouse.reader import read_rows, table_columns, table_engine, table_keys


def test_key_filters_read_before_the_merge_still_return_the_last_version(stack_settings):
    client = client_from_url(stack_settings.clickhouse_url)
    table = f"reader_{uuid.uuid4().hex[:6]}"
    client.execute(
        f"CREATE TABLE {table} (id Int64, name String, _version UInt64, _deleted UInt8) "
        "ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    try:
        # three inserts, three parts: nothing merged yet, only FINAL picks the last versions
        client.execute(f"INSERT INTO {table} VALUES", [(1, "old", 1, 0), (2, "two", 1, 0)])
        client.execute(f"INSERT INTO {table} VALUES", [(1, "new", 2, 0)])
        client.execute(f"INSERT INTO {table} VALUES", [(2, "two", 2, 1)])  # deleted
        columns, engine, keys = table_columns(client, table), table_engine(client, table), table_keys(client, table)
        assert keys == {"id"}

        def read(where):
            rows = read_rows(client, table, columns, ["id", "name"], where, ["id"], 10, 0, engine=engine, keys=keys)
            return [(r["id"], r["name"]) for r in rows]

        assert read([("id", "eq", 1)]) == [(1, "new")]
        assert read([("id", "in", [1, 2])]) == [(1, "new")]
        assert read([("name", "eq", "old")]) == [], "a filter on a non-key column must see the merged row"
        assert read([("id", "eq", 1), ("name", "eq", "old")]) == []
    finally:
        client.execute(f"DROP TABLE IF EXISTS {table}")
        client.disconnect()
