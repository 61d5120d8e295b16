"""Issue 21: JSON arrays inside records become rows of a child table with the parent's key.

Through the HTTP API with a real worker into ClickHouse: a JSON-lines file of enterprises, each with
an array of branches; the parent table and the child table (its own topic) land in ClickHouse; a
record whose array holds an item that cannot be typed is refused whole (parent and children), with
the reason naming the array and the item, in English and Chinese.
"""

from __future__ import annotations

import json
import uuid

import pytest

from schemas.naming import topic_name
from tests.api_process import own_state_settings  # noqa: F401 - a fixture: overrides stack_settings
from tests.connect_cluster import clickhouse_of_module, cluster_of_run, wait_until  # noqa: F401 - a fixture: ch

RUN = uuid.uuid4().hex[:6]
SYSTEM = f"kids{RUN}"
PARENT, CHILD = f"enterprise_{RUN}", f"branch_{RUN}"


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    with cluster_of_run(stack_settings, tmp_path_factory, RUN, "kids") as client:
        yield client


def _rows(ch, table: str, what: str = "count()", order: str = ""):
    if not ch.execute(f"EXISTS TABLE {table}")[0][0]:
        return None
    return ch.execute(f"SELECT {what} FROM {table} FINAL WHERE _deleted = 0 {order}")


def _sink(client, settings, table: str) -> str:
    config = {
        "connector.class": "clickhouse",
        "topics": topic_name(settings.topic_prefix, SYSTEM, None, table),
        "url": settings.clickhouse_url,
        "table": f"{table}_ch",
    }
    r = client.post("/connectors", json={"name": f"kids-sink-{table}", "config": config})
    assert r.status_code == 201, r.text
    return f"{table}_ch"


def test_a_nested_array_becomes_a_child_table_with_the_parents_key(cluster, stack_settings, ch):
    client = cluster
    root = stack_settings.resolved_data_root / f"kids-{RUN}"
    root.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "code": f"C{i}",
            "name": f"企业{i}",
            "branches": [{"name": f"分支{i}-{j}", "addr": {"city": "济南"}, "staff": j * 10} for j in range(1, i + 1)],
        }
        for i in range(1, 6)
    ]
    records[3]["branches"][1]["staff"] = "many"  # item 2 of record 4 is not a whole number
    records.append({"code": "C6", "name": "无分支"})  # no array: no child rows
    (root / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", "utf-8")
    config = {
        "connector.class": "files",
        "system": SYSTEM,
        "table": PARENT,
        "store": {"root": str(root), "pattern": "*.jsonl"},
        "format": {"kind": "jsonl"},
        "settle_seconds": 0,
        "bad_row_ratio": 0.5,
        "columns": [{"name": "code", "key": True}, {"name": "name"}],
        "children": [
            {
                "table": CHILD,
                "path": "branches",
                "columns": [
                    {"name": "name"},
                    {"name": "city", "source": "addr.city"},
                    {"name": "staff", "type": "int"},
                ],
            }
        ],
    }
    r = client.post("/connectors", json={"name": f"kids-src-{RUN}", "config": config})
    assert r.status_code == 201, r.text
    topics = client.get(f"/connectors/kids-src-{RUN}/topics").json()[f"kids-src-{RUN}"]["topics"]
    assert topic_name(stack_settings.topic_prefix, SYSTEM, None, CHILD) in topics
    report = wait_until(
        lambda: (
            (r := client.get("/imports", params={"connector": f"kids-src-{RUN}"}).json()["imports"])
            and r[0]["status"] != "reading"
            and r[0]
        ),
        120,
        message="import",
    )
    assert (report["rows_ok"], report["rows_bad"]) == (5, 1)
    assert report["details"]["child_rows"] == {CHILD: 1 + 2 + 3 + 5}
    [bad] = client.get(f"/imports/{report['id']}/rows").json()["rows"]
    assert bad["line"] == 4 and bad["code"] == "child_row"
    assert "array 'branches' item 2: column 'staff'" in bad["reason"] and "'many'" in bad["reason"]
    zh = client.get(f"/imports/{report['id']}/rows", params={"lang": "zh"}).json()["rows"][0]["reason"]
    assert "数组“branches”第 2 项" in zh and "整数" in zh

    parent, child = _sink(client, stack_settings, PARENT), _sink(client, stack_settings, CHILD)
    wait_until(lambda: (_rows(ch, child) or [[0]])[0][0] == 11, 300, interval=1, message="11 branch rows")
    wait_until(lambda: (_rows(ch, parent) or [[0]])[0][0] == 5, 300, interval=1, message="5 enterprise rows")
    assert _rows(ch, child, "code, item_index, name, city, staff", "ORDER BY code, item_index")[:3] == [
        ("C1", 1, "分支1-1", "济南", 10),
        ("C2", 1, "分支2-1", "济南", 10),
        ("C2", 2, "分支2-2", "济南", 20),
    ]
    assert not ch.execute(f"SELECT count() FROM {child} FINAL WHERE code = 'C4'")[0][0]  # refused with its parent


def test_children_need_a_json_format_and_a_parent_key(cluster, stack_settings):
    config = {
        "connector.class": "files",
        "system": SYSTEM,
        "table": "t",
        "store": {"root": str(stack_settings.resolved_data_root), "pattern": "*.csv"},
        "columns": [{"name": "code"}],
        "children": [{"table": "t", "path": "items", "columns": [{"name": "code"}]}],
    }
    r = cluster.post("/connectors", json={"name": f"kids-bad-{RUN}", "config": config})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "format.kind json or jsonl" in message and "declared key columns" in message
    assert "already the parent's" in message
