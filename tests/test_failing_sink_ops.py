"""Issue 21: a sink that keeps failing is seen where an operator looks — `/ops/lag` shows its
consumer group (which never committed) with everything unread and the sink's state, and the
`task_failed` alert rule raises a message naming the sink and the reason.

Real API and worker processes; the sink fails for a reason only its first batch reveals: it was
saved before its topic had a schema, with a key column that turns out nullable (saved later it is
refused at validation, tests/test_pipeline_columns.py).
"""

from __future__ import annotations

import uuid

import pytest

from deploy.kafka import ensure_topics
from schemas.naming import topic_name
from tests.api_process import own_state_settings  # noqa: F401 - a fixture: overrides stack_settings
from tests.connect_cluster import api_and_worker, wait_until

RUN = uuid.uuid4().hex[:6]
SINK = f"fsink-{RUN}"
GROUP = f"huiliu-connect-{SINK}"


@pytest.fixture(scope="module")
def failing_sink(stack_settings, tmp_path_factory):
    with api_and_worker(stack_settings, tmp_path_factory.mktemp("fsink-logs"), f"worker-fsink-{RUN}") as client:
        system, table = f"fsink{RUN}", f"fsink_{RUN}"
        topic = topic_name(stack_settings.topic_prefix, system, None, table)
        ensure_topics(stack_settings.kafka_bootstrap, [topic])
        sink = {
            "connector.class": "clickhouse",
            "topics": topic,
            "url": stack_settings.clickhouse_url,
            "table": f"{table}_ch",
            "key": ["phone"],
        }
        assert client.post("/connectors", json={"name": SINK, "config": sink}).status_code == 201
        root = stack_settings.resolved_data_root / f"fsrc-{RUN}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "a.csv").write_text("序号,联系电话\n1,13800000001\n2,\n", encoding="utf-8")
        source = {
            "connector.class": "files",
            "system": system,
            "table": table,
            "store": {"root": str(root), "pattern": "*.csv"},
            "settle_seconds": 0,
            "columns": [
                {"name": "id", "type": "int", "key": True, "source": "序号"},
                {"name": "phone", "source": "联系电话"},
            ],
        }
        assert client.post("/connectors", json={"name": f"fsrc-{RUN}", "config": source}).status_code == 201
        wait_until(
            lambda: (t := client.get(f"/connectors/{SINK}/status").json()["tasks"]) and t[0]["state"] == "FAILED",
            90,
            message="the sink FAILED",
        )
        yield client, topic
        for name in (SINK, f"fsrc-{RUN}"):
            client.delete(f"/connectors/{name}")


def test_a_failing_sinks_group_is_shown_in_ops_lag_with_its_state(failing_sink):
    client, topic = failing_sink
    lag = client.get("/ops/lag", params={"group": GROUP}).json()
    [row] = [r for r in lag["partitions"] if r["group"] == GROUP]
    assert (row["topic"], row["partition"], row["committed"]) == (topic, 0, None)
    assert row["lag"] == 2 and (row["connector"], row["state"]) == (SINK, "FAILED")
    group = lag["groups"][GROUP]
    assert group["connector"] == SINK and group["state"] == "FAILED"
    assert "['phone'] are nullable" in group["last_error"]
    # without a group filter too: the broker may not list a group that never committed
    assert any(r["group"] == GROUP for r in client.get("/ops/lag").json()["partitions"])


def test_a_failing_sink_raises_a_task_failed_message_naming_the_sink_and_the_reason(failing_sink):
    client, _ = failing_sink
    name = f"fsink-failures-{RUN}"
    rule = client.post(
        "/alerts/rules",
        json={"name": name, "kind": "task_failed", "params": {"connector": SINK}, "interval_seconds": 3600},
    )
    assert rule.status_code == 201, rule.text
    # the API's alert loop evaluates a new rule within a second, and may do it before this call:
    # either way the failure is reported once
    alerts = client.post(f"/alerts/rules/{rule.json()['id']}/evaluate").json()["alerts"]
    assert [a["subject"] for a in alerts] in ([f"task failed: sink connector {SINK}"], [])
    wait_until(lambda: client.get("/messages", params={"rule": name}).json(), 30, message="the alert's message")
    [message] = client.get("/messages", params={"rule": name}).json()
    assert message["subject"] == f"task failed: sink connector {SINK}"
    assert SINK in message["body"] and "FAILED" in message["body"] and "['phone'] are nullable" in message["body"]
    # the same failure is reported once
    assert client.post(f"/alerts/rules/{rule.json()['id']}/evaluate").json()["alerts"] == []
