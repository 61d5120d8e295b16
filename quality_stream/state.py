"""Bounded state for windowed uniqueness/dedupe: "have I seen this key recently?".

The protocol is batch-oriented (one call per micro-batch) so a Redis backend can use a
single pipeline round trip instead of one request per record.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, runtime_checkable


@runtime_checkable
class SeenStore(Protocol):
    def check_and_add(self, keys: list[str], now: float | list[float], ttl: float) -> list[bool]:
        """For each key: True if seen within ttl seconds of its time; then record it.

        now is one timestamp for the batch (processing time) or one per key (event time).
        """


class TTLStore:
    """In-memory store with expiry and a hard size cap (oldest entries evicted first).

    Eviction under the cap means a very old duplicate may pass; that is the price of
    bounded memory and is visible through `evicted`.
    """

    def __init__(self, max_size: int = 1_000_000):
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> last seen time
        self.evicted = 0

    def check_and_add(self, keys: list[str], now: float | list[float], ttl: float) -> list[bool]:
        seen = self._seen
        times = now if isinstance(now, list) else [now] * len(keys)
        out = []
        for k, ts in zip(keys, times):
            t = seen.get(k)
            out.append(t is not None and abs(ts - t) <= ttl)
            if t is not None:
                seen.move_to_end(k)
            seen[k] = ts if t is None else max(t, ts)
        if times:
            self._expire(max(times), ttl)
        return out

    def _expire(self, now: float, ttl: float) -> None:
        seen = self._seen
        while seen:
            k, t = next(iter(seen.items()))
            if now - t > ttl or len(seen) > self.max_size:
                seen.popitem(last=False)
                if now - t <= ttl:
                    self.evicted += 1
            else:
                break

    def __len__(self) -> int:
        return len(self._seen)

    def clear(self) -> None:
        self._seen.clear()


class RedisStore:
    """Redis-backed store (SET NX with expiry); pass any redis-py compatible client.

    Windows are processing-time only here: Redis expiry is wall-clock based.
    """

    def __init__(self, client, prefix: str = "huiliu:seen:"):
        self.client = client
        self.prefix = prefix

    def check_and_add(self, keys: list[str], now: float | list[float], ttl: float) -> list[bool]:
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.set(self.prefix + k, b"1", nx=True, ex=max(1, int(ttl)))
        # SET NX returns None/False when the key already existed -> duplicate.
        return [not bool(r) for r in pipe.execute()]
