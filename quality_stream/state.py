"""Bounded state for windowed uniqueness/dedupe: "have I seen this key recently?".

The protocol is batch-oriented (one call per micro-batch) so a Redis backend can use a
single pipeline round trip instead of one request per record.
"""

from __future__ import annotations

import math
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


# Per key: duplicate if the stored time is within ttl of this one; then keep the later time and
# restart the expiry, as TTLStore does (the window runs from the latest sighting).
_CHECK_AND_ADD = """
local ts = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
local dup = 0
local keep = ARGV[1]
if old then
  local t = tonumber(old)
  if t then
    if math.abs(ts - t) <= ttl then dup = 1 end
    if t > ts then keep = old end
  end
end
redis.call('SET', KEYS[1], keep, 'PX', ARGV[3])
return dup
"""


class RedisStore:
    """Redis-backed store; pass any redis-py compatible client (one pipeline round trip per batch).

    Each key holds the time it was last seen (seconds, processing or event time as given) and
    expires ttl after it was last written, so semantics match TTLStore: a repeat within ttl of the
    last sighting is a duplicate, and every sighting restarts the window. Expiry itself is
    wall-clock (Redis), so for event-time windows over replayed old data a key lives ttl of real
    time, which bounds memory the same way TTLStore's size cap does.
    """

    def __init__(self, client, prefix: str = "huiliu:seen:"):
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_CHECK_AND_ADD)

    def check_and_add(self, keys: list[str], now: float | list[float], ttl: float) -> list[bool]:
        if not keys:
            return []
        times = now if isinstance(now, list) else [now] * len(keys)
        if len(times) != len(keys):
            raise ValueError("one time per key, or one for the batch")
        ttl_ms = max(1, math.ceil(ttl * 1000))  # PX: sub-second windows are not rounded to 1 s
        pipe = self.client.pipeline(transaction=False)
        for k, ts in zip(keys, times):
            self._script(keys=[self.prefix + k], args=[repr(float(ts)), repr(float(ttl)), ttl_ms], client=pipe)
        return [bool(int(r)) for r in pipe.execute()]

    def clear(self) -> None:
        """Delete every key under this store's prefix (tests, re-runs)."""
        batch = []
        for key in self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
