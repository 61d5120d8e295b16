"""Task leases and worker liveness in Redis.

A task belongs to the worker holding its lease key (`SET key worker NX PX ttl`); the worker's
heartbeat renews its leases and its entry in the live-workers sorted set. A worker that dies
stops renewing: its leases expire after `ttl` and another worker claims them. Renew and release
are compare-and-act Lua scripts, so a worker never extends or drops a lease it no longer holds.

Keys live under a namespace derived from the control database URL: processes that share a
control database share tasks; test sessions with their own state dir never collide.
"""

from __future__ import annotations

import hashlib
import math
import time

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def namespace_for(settings) -> str:
    digest = hashlib.sha1(settings.resolved_control_db_url.encode()).hexdigest()[:12]
    return f"huiliu:connect:{digest}"


def task_key(connector: str, task: int) -> str:
    return f"{connector}/{task}"


class Leases:
    def __init__(self, redis_url: str, namespace: str, ttl_seconds: float = 15.0):
        self.redis = redis.Redis.from_url(
            redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5, health_check_interval=10
        )
        self.ns = namespace
        self.ttl_ms = int(ttl_seconds * 1000)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    @classmethod
    def for_settings(cls, settings, ttl_seconds: float = 15.0) -> Leases:
        return cls(settings.redis_url, namespace_for(settings), ttl_seconds)

    def _lease(self, task: str) -> str:
        return f"{self.ns}:lease:{task}"

    # -- workers ------------------------------------------------------------------------------
    def heartbeat(self, worker_id: str, info: str = "") -> None:
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.zadd(f"{self.ns}:workers", {worker_id: now})
        pipe.zremrangebyscore(f"{self.ns}:workers", 0, now - 3 * self.ttl_ms / 1000)  # forget long-dead ids
        pipe.pexpire(f"{self.ns}:workers", 3 * self.ttl_ms)  # a namespace nobody runs in any more vanishes
        pipe.set(f"{self.ns}:worker:{worker_id}", info, px=self.ttl_ms)
        pipe.execute()

    def live_workers(self) -> list[str]:
        since = time.time() - self.ttl_ms / 1000
        return sorted(self.redis.zrangebyscore(f"{self.ns}:workers", since, "+inf"))

    def leave(self, worker_id: str) -> None:
        self.redis.zrem(f"{self.ns}:workers", worker_id)
        self.redis.delete(f"{self.ns}:worker:{worker_id}")

    # -- leases -------------------------------------------------------------------------------
    def acquire(self, task: str, worker_id: str) -> bool:
        return bool(self.redis.set(self._lease(task), worker_id, nx=True, px=self.ttl_ms))

    def renew(self, task: str, worker_id: str) -> bool:
        return bool(self._renew(keys=[self._lease(task)], args=[worker_id, self.ttl_ms]))

    def release(self, task: str, worker_id: str) -> bool:
        return bool(self._release(keys=[self._lease(task)], args=[worker_id]))

    def owners(self, tasks: list[str]) -> dict[str, str | None]:
        if not tasks:
            return {}
        return dict(zip(tasks, self.redis.mget([self._lease(t) for t in tasks])))


def fair_share(tasks: int, live_workers: int) -> int:
    """How many tasks one worker should hold: ceil, so every task has a taker."""
    return math.ceil(tasks / max(live_workers, 1))
