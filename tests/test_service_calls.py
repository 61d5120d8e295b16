"""The data-API call path made cheaper without weakening a check (issue 17, the 1,000 calls/s figure):

- a counted call decides on this process's cache as of the generation it saw last and validates
  it in the same Redis script that takes its token and quota (streams/dataservices/serving.py
  `admit`): a revocation made by another API process refuses the warm process's very next call,
  and a token or a quota unit is taken once per admitted call, also when the generation moved
  under it (the call is then decided again, nothing taken twice);
- the call route's ClickHouse client sends no ping before a query on a connection used moments
  ago, and a connection that died meanwhile (the server dropped it) costs the next call nothing
  but a reconnect (streams/dataservices/clickhouse_clients.py); a server that is gone still fails
  the query (the route answers 503).

Against the local Redis, a control DB of the test's own and, for the client, the test stack's
ClickHouse through a TCP relay the test can cut.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from streams.dataservices.cache import CachingServiceStore, Generation
from streams.dataservices.model import ServiceSpec
from streams.dataservices.serving import CallRefused, TokenBuckets, admit

pytestmark = pytest.mark.integration
RUN = uuid.uuid4().hex[:8]
SCOPE = f"calls{RUN}"
SERVICE = f"svc_{RUN}"


class CountingGeneration(Generation):
    """The generation counter in Redis, counting the reads a call makes of it."""

    reads = 0

    def current(self):
        self.reads += 1
        return super().current()


@pytest.fixture
def world(tmp_path):
    """Two API processes' stores (`a`, `b`) on one control DB and one Redis, a published service
    (1 call/s, bucket of 3) and `approve(**decision)` issuing an approved application's key."""
    import redis

    from deploy.control import engine_for
    from deploy.settings import Settings

    client = redis.Redis.from_url(Settings().redis_url)
    key = f"huiliu:test:ds:generation:{RUN}:{uuid.uuid4().hex[:6]}"
    engine = engine_for(f"sqlite:///{tmp_path / 'control.db'}")
    a = CachingServiceStore(engine, None, CountingGeneration(client, key))
    b = CachingServiceStore(engine, None, Generation(client, key))
    spec = ServiceSpec.model_validate(
        {
            "name": SERVICE,
            "resource": {"table": "t"},
            "fields": ["id", "name"],
            "rate_limit": {"rate": 0.01, "burst": 3},
        }
    )
    b.save_draft(SCOPE, spec, "author")
    b.submit(SCOPE, SERVICE, "author")
    b.decide(SCOPE, SERVICE, "reviewer", True)
    buckets = TokenBuckets(client, prefix=f"huiliu:test:ds:bucket:{RUN}:")

    def approve(**decision) -> dict:
        app = b.apply(SCOPE, SERVICE, 1, f"app_{uuid.uuid4().hex[:6]}", "统计", ["id"], "applicant")
        return b.decide_application(SCOPE, app["id"], "author", True, **decision)

    yield {"a": a, "b": b, "buckets": buckets, "approve": approve, "redis": client}
    client.delete(key)
    engine.dispose()


def _admit(world, key: str, store: str = "a"):
    return admit(world[store], world["buckets"], key, SERVICE, 1, None, "127.0.0.1")


def test_a_revocation_in_another_process_refuses_the_warm_process_next_call(world):
    granted = world["approve"]()
    a = world["a"]
    assert _admit(world, granted["key"])[1]["application"] == granted["application"]  # reads the generation
    reads = a.generation.reads
    assert _admit(world, granted["key"])[1]["status"] == "approved"
    assert a.generation.reads == reads  # the warm call: no read of its own, validated inside the script
    world["b"].revoke(SCOPE, granted["id"], "applicant")  # another API process
    with pytest.raises(CallRefused) as refused:
        _admit(world, granted["key"])
    assert refused.value.status == 401 and "revoked" in refused.value.message
    with pytest.raises(CallRefused) as wrong:  # a wrong secret for a known key id: refused as before
        _admit(world, granted["key"][:-1] + ("a" if granted["key"][-1] != "a" else "b"))
    assert wrong.value.status == 401


def test_a_lookup_outside_a_call_lends_nothing_to_the_next_call_on_its_thread(world):
    """A thread-pool thread serves one request after another: what an earlier request's lookup read
    of the generation must not be trusted by the next call (it once was, for 50 ms: a revocation
    right after an application's page was read could be missed by a call on the same thread)."""
    granted = world["approve"]()
    a = world["a"]
    assert _admit(world, granted["key"])  # the grant cached at the current generation
    a.published(SCOPE, SERVICE, 1)  # another route's lookup on this thread
    world["b"].revoke(SCOPE, granted["id"], "applicant")
    with pytest.raises(CallRefused) as refused:
        _admit(world, granted["key"])
    assert refused.value.status == 401 and "revoked" in refused.value.message


def test_a_token_is_taken_once_per_call_also_when_the_generation_moves(world):
    key = world["approve"]()["key"]
    assert _admit(world, key)  # token 1 of 3
    world["b"].generation.bump()  # something else changed: the warm cache is stale
    assert _admit(world, key)  # token 2: the script refused the stale generation and took nothing
    world["b"].generation.bump()
    assert _admit(world, key)  # token 3
    with pytest.raises(CallRefused) as limited:
        _admit(world, key)
    assert limited.value.status == 429 and limited.value.retry_after >= 1


def test_the_daily_quota_counts_admitted_calls_once(world):
    granted = world["approve"](quota_daily=2)
    world["b"].generation.bump()
    assert _admit(world, granted["key"]) and _admit(world, granted["key"])
    with pytest.raises(CallRefused) as over:
        _admit(world, granted["key"])
    assert over.value.status == 429 and "daily quota" in over.value.message and over.value.retry_after > 0
    assert "配额" in over.value.message_zh
    assert world["buckets"].guard.quota_used(granted["key_id"])["day"] == 2


def test_an_offline_version_refuses_the_next_call_at_once(world):
    key = world["approve"]()["key"]
    assert _admit(world, key)
    world["b"].offline(SCOPE, SERVICE, 1, "reviewer")
    with pytest.raises(CallRefused) as gone:
        _admit(world, key)
    assert gone.value.status == 404


class Relay:
    """A TCP relay to ClickHouse whose connections the test can cut, and which it can stop."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.accepted = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if self.stopped:
                conn.close()
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            self.sockets += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def stop(self):
        self.stopped = True
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone would not)
        except OSError:
            pass
        self.server.close()
        self.cut()


def test_the_call_client_skips_pings_on_a_fresh_connection_and_survives_a_dropped_one(stack_settings):
    from urllib.parse import urlparse

    from clickhouse_driver.errors import NetworkError

    from streams.dataservices.clickhouse_clients import CallClient

    address = urlparse(stack_settings.clickhouse_url)
    relay = Relay((address.hostname, address.port))
    client = CallClient(f"clickhouse://default:@127.0.0.1:{relay.port}/default")
    try:
        assert client.execute("SELECT 1")[0][0] == 1
        for _ in range(5):
            assert client.execute("SELECT 2")[0][0] == 2
        assert client.pings == 0 and relay.accepted == 1  # one connection, no ping before its queries
        relay.cut()  # the server side drops the connection
        time.sleep(0.2)
        assert client.execute("SELECT 3")[0][0] == 3  # the dead connection cost a reconnect, not a failure
        assert client.retries == 1 and relay.accepted == 2
        client._used -= client.fresh_s  # idle long enough: the next query pings first, as the driver does
        assert client.execute("SELECT 4")[0][0] == 4 and client.pings == 1
        relay.stop()  # now the server is gone: the query fails (the route answers 503), it is not hidden
        time.sleep(0.2)
        with pytest.raises(NetworkError):
            client.execute("SELECT 5")
    finally:
        relay.stop()
        client.disconnect()


def test_a_change_is_made_and_answered_while_redis_is_not_answering(world):
    """The change counter lives in Redis; a revocation committed while Redis does not answer is
    still made (it was answered 500 after being applied), and lookups read the control DB."""
    import redis

    granted = world["approve"]()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    store = CachingServiceStore(world["a"].engine, None, Generation(dead, "huiliu:test:ds:unreachable"))
    revoked = store.revoke(SCOPE, granted["id"], "applicant")
    assert revoked["status"] == "revoked"
    assert store.grant(granted["key_id"])[1]["status"] == "revoked"  # no generation: the DB, not a cache
