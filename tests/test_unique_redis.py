"""The `unique` rule over a real Redis (127.0.0.1:6379): RedisStore must behave like TTLStore.

Each test uses its own key prefix and deletes its keys afterwards, so parallel sessions and
re-runs do not see each other's state.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from quality_stream import RedisStore, RuleSet, TTLStore

pytestmark = pytest.mark.integration  # the machine's Redis

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client():
    c = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        c.ping()
    except redis.ConnectionError as exc:  # the machine's own service; say so plainly if it is down
        pytest.fail(f"Redis at 127.0.0.1:6379 is not reachable: {exc}")
    yield c
    c.close()


@pytest.fixture
def store(client):
    s = RedisStore(client, prefix=f"huiliu:test:{uuid.uuid4().hex}:")
    yield s
    s.clear()


def failed(verdict) -> list[int]:
    return sorted(verdict.rejected)


def rules(store, **extra) -> RuleSet:
    return RuleSet.from_config(
        [{"id": "u", "kind": "unique", "fields": ["k"], "window_seconds": 60, "store": "redis", **extra}],
        stores={"redis": store},
    )


def test_within_batch_and_across_batches_like_ttl_store(store):
    rs = rules(store)
    v1 = rs.evaluate([{"k": "a"}, {"k": "b"}, {"k": "a"}, {"k": None}], now=NOW)
    assert failed(v1) == [2] and v1.rejected[2][0].dimension == "uniqueness"
    assert failed(rs.evaluate([{"k": "b"}], now=NOW + timedelta(seconds=30))) == [0]
    # 200 s after the last sighting of "a" (window 60 s): passes, as with TTLStore.
    assert failed(rs.evaluate([{"k": "a"}], now=NOW + timedelta(seconds=200))) == []


def test_same_answers_as_ttl_store(store):
    keys = ["a", "b", "a", "c", "b", "a", "张三\x1f370102", "张三\x1f370102"]
    times = [0.0, 1.0, 5.0, 5.0, 70.0, 66.0, 10.0, 10.5]
    assert store.check_and_add(keys, times, 60) == TTLStore().check_and_add(keys, times, 60)
    # repeats restart the window: "a" seen at 66 is a duplicate again at 120
    assert store.check_and_add(["a"], 120.0, 60) == [True]


def test_event_time_window(store):
    rs = RuleSet.from_config(
        [
            {
                "id": "u",
                "kind": "unique",
                "fields": ["k", "t2"],
                "window_seconds": 3600,
                "time_field": "ts",
                "store": "redis",
            }
        ],
        stores={"redis": store},
    )
    t0 = datetime(2026, 1, 1, 8, 0)
    rows = [
        {"k": 1, "t2": "x", "ts": t0},
        {"k": 1, "t2": "x", "ts": t0 + timedelta(minutes=10)},
        {"k": 1, "t2": "x", "ts": t0 + timedelta(hours=5)},
        {"k": 1, "t2": "y", "ts": t0},
    ]
    assert failed(rs.evaluate(rows)) == [1]


def test_two_workers_share_the_window(store, client):
    # Two runner processes of one pipeline: each has its own RuleSet, the store is shared.
    other = RedisStore(redis.Redis(host="127.0.0.1", port=6379), prefix=store.prefix)
    a, b = rules(store), rules(other)
    assert failed(a.evaluate([{"k": "x"}, {"k": "y"}], now=NOW)) == []
    assert failed(b.evaluate([{"k": "y"}, {"k": "z"}], now=NOW + timedelta(seconds=1))) == [0]


def test_keys_expire_in_redis_and_sub_second_windows_are_kept(store, client):
    assert store.check_and_add(["k"], time.time(), 0.3) == [False]
    key = store.prefix + "k"
    assert 0 < client.pttl(key) <= 300  # not rounded up to a whole second
    time.sleep(0.5)
    assert client.exists(key) == 0  # bounded memory: Redis dropped it
    assert store.check_and_add(["k"], time.time(), 0.3) == [False]


def test_empty_batch_and_prefix_isolation(store, client):
    assert store.check_and_add([], NOW.timestamp(), 60) == []
    assert failed(rules(store).evaluate([{"k": None}], now=NOW)) == []
    store.check_and_add(["a"], 0.0, 60)
    neighbour = RedisStore(client, prefix=store.prefix + "other:")
    try:
        assert neighbour.check_and_add(["a"], 0.0, 60) == [False]
    finally:
        neighbour.clear()
    assert store.check_and_add(["a"], 1.0, 60) == [True]


def test_clear_removes_only_its_prefix(store, client):
    store.check_and_add(["a", "b"], 0.0, 60)
    client.set(store.prefix.rstrip(":") + "-neighbour", b"1", ex=60)
    try:
        store.clear()
        assert store.check_and_add(["a"], 1.0, 60) == [False]
        assert client.exists(store.prefix.rstrip(":") + "-neighbour") == 1
    finally:
        client.delete(store.prefix.rstrip(":") + "-neighbour")
