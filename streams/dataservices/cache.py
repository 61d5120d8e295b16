"""What every data-API call reads from the control DB, kept in-process between calls.

    store = CachingServiceStore(engine, vault, Generation(redis_client))
    store.grant(key_id) / store.published(scope, name, version)    # cached
    store.revoke(...) / .offline(...) / .decide(...) / .settle_application(...)   # bump the generation

A call used to read its application and its service version from the control DB every time (two
queries, most of a call's own cost besides ClickHouse). Both are now kept for `TTL_S` seconds per
API process, and dropped at once by every process when anything about services or applications
changes: the change increments a counter in Redis (`huiliu:ds:generation`) and each lookup compares
it before trusting its cache (a call reads it once for both its lookups: `store.pinned(gen)`). So a revocation, an offline version or a new decision
applies to the very next call in every API worker, as before; expiry is checked per call on the
cached row. Redis not answering: the lookup reads the control DB (the cache is bypassed, never
trusted blindly).

A counted call (`serving.admit`) does not even read the generation first: its checks trust the
cache at the generation this process saw last (`pinned`), and the one Lua script that takes the
call's rate-limit token and quota (serving.py) also compares the generation atomically with
taking them; if it moved, nothing is taken and the call is decided again on fresh reads. A refusal
decided on the pinned cache is re-checked against the current generation before it is answered.
So a steady call costs one Redis round trip in all.

The catalogue classification a call masks by is cached per dataset by the catalogue row's version
and business metadata (`Classifier`): one small query instead of two and a JSON parse of the shape,
and a steward's change still applies to the next call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from streams.dataservices.store import ServiceStore

TTL_S = 5.0
KEY = "huiliu:ds:generation"
log = logging.getLogger(__name__)


class Generation:
    """The services' change counter in Redis."""

    def __init__(self, client, key: str = KEY):
        self.client, self.key = client, key

    def current(self) -> int | None:
        try:
            return int(self.client.get(self.key) or 0)
        except Exception:  # Redis down: no generation, so nothing cached is trusted
            return None

    def bump(self) -> None:
        self.client.incr(self.key)


class _Memo:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self.items: dict[Any, tuple[int, float, Any]] = {}
        self.lock = threading.Lock()

    def get(self, key, generation: int | None):
        if generation is None:
            return None
        hit = self.items.get(key)
        if hit and hit[0] == generation and time.monotonic() - hit[1] < self.ttl:
            return hit
        return None

    def put(self, key, generation: int | None, value) -> None:
        if generation is None:
            return
        with self.lock:
            if len(self.items) > 10_000:
                self.items.clear()
            self.items[key] = (generation, time.monotonic(), value)


class CachingServiceStore(ServiceStore):
    def __init__(self, engine, vault=None, generation: Generation | None = None, ttl: float = TTL_S):
        super().__init__(engine, vault)
        self.generation = generation
        self._grants = _Memo(ttl)
        self._local = threading.local()
        self._published = _Memo(ttl)
        self._seen: int | None = None  # the generation this process read last (any thread)

    def seen_generation(self) -> int | None:
        """The generation last read from Redis by this process (None before the first, or without
        Redis): what a call's checks may trust the cache at, validated afterwards (serving.admit)."""
        return self._seen if self.generation is not None else None

    def current_generation(self) -> int | None:
        """The generation now (one Redis GET); None when Redis is not answering."""
        gen = self.generation.current() if self.generation is not None else None
        self._seen = gen
        return gen

    def saw(self, generation: int | None) -> None:
        self._seen = generation

    @contextmanager
    def pinned(self, generation: int):
        """Lookups on this thread trust the cache at `generation` without reading Redis; whoever
        pins checks afterwards that it was still current (atomically with what it then does)."""
        self._local.pinned = generation
        try:
            yield
        finally:
            self._local.pinned = None

    def _gen(self) -> int | None:
        """The generation a lookup trusts: the one pinned on this thread for the call, else read
        now. (A call's lookups used to reuse a read up to 50 ms old kept per thread, which leaked
        into the next request the thread pool gave that thread: a revocation could be missed.)"""
        if self.generation is None:
            return None
        pinned = getattr(self._local, "pinned", None)
        if pinned is not None:
            return pinned
        gen = self.generation.current()
        self._seen = gen
        return gen

    def grant(self, key_id: str):
        gen = self._gen()
        hit = self._grants.get(key_id, gen)
        if hit:
            return hit[2]
        found = super().grant(key_id)
        self._grants.put(key_id, gen, found)
        return found

    def published(self, scope: str, name: str, version: int):
        gen = self._gen()
        hit = self._published.get((scope, name, version), gen)
        if hit:
            return hit[2]
        spec = super().published(scope, name, version)  # NotFound is not cached: it is re-read
        self._published.put((scope, name, version), gen, spec)
        return spec

    def _changed(self) -> None:
        """After a change is committed: every process's cache is dropped. Redis not answering does
        not undo or refuse the change (it is made): lookups meanwhile bypass the cache (no
        generation), and what a process cached before is trusted at most `TTL_S` seconds more."""
        if self.generation is not None:
            try:
                self.generation.bump()
            except RedisError as exc:
                log.warning(
                    "services changed but Redis did not take the change counter (%s): caches expire in %ss",
                    exc,
                    self._grants.ttl,
                )

    def decide(self, *args, **kwargs):
        try:
            return super().decide(*args, **kwargs)
        finally:
            self._changed()

    def offline(self, *args, **kwargs):
        try:
            return super().offline(*args, **kwargs)
        finally:
            self._changed()

    def settle_application(self, *args, **kwargs):
        try:
            return super().settle_application(*args, **kwargs)
        finally:
            self._changed()

    def revoke(self, *args, **kwargs):
        try:
            return super().revoke(*args, **kwargs)
        finally:
            self._changed()


class Classifier:
    """scope, dataset URN -> {field: classification level} (a field's own, else its dataset's)."""

    def __init__(self, engine):
        self.engine = engine
        self.memo: dict[tuple[str, str], tuple[int, str, dict]] = {}

    def __call__(self, scope: str, urn: str) -> dict[str, str | None]:
        from schemas.catalog.store import NotInCatalogue
        from schemas.catalog.tables import catalog_datasets, catalog_versions

        with self.engine.connect() as conn:
            row = conn.execute(
                select(catalog_datasets.c.id, catalog_datasets.c.version, catalog_datasets.c.business)
                .where(catalog_datasets.c.urn == urn, catalog_datasets.c.scope == scope)
                .limit(1)
            ).first()
            if row is None:
                raise NotInCatalogue(f"no dataset {urn} in the catalogue")
            hit = self.memo.get((scope, urn))
            if hit and hit[0] == row.version and hit[1] == row.business:
                return hit[2]
            shape = conn.execute(
                select(catalog_versions.c.shape).where(
                    catalog_versions.c.dataset_id == row.id, catalog_versions.c.version == row.version
                )
            ).scalar()
        business = json.loads(row.business or "{}")
        default, per_field = business.get("classification"), business.get("fields") or {}
        levels = {
            f["name"]: (per_field.get(f["name"]) or {}).get("classification") or default
            for f in json.loads(shape)["fields"]
        }
        if len(self.memo) > 10_000:
            self.memo.clear()
        self.memo[(scope, urn)] = (row.version, row.business, levels)
        return levels
