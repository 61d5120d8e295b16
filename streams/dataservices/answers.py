"""Answers of services that declare a cache TTL (`cache_ttl_s`), kept per API process.

    key = answer_key(scope, name, version, where, granted, limit, offset, masking)
    rows = ANSWERS.get(key)                      # None: not kept, or older than the version's TTL
    ANSWERS.put(key, rows, ttl_s)

Only the rows are kept, never a decision: every call still goes through all its checks (credential,
scope, IP, rate limit, quota) before the cache is asked. The key holds everything the rows depend
on besides the table's contents: the service version, the query's filters with the application's
row filter, the granted fields, the page, and the masks in force (a steward's classification change
makes another key, so it applies to the next call). Data changed in the table within the TTL is
what a TTL means: a service that must show every change declares none (the default).

Bounded by rows held (`max_rows`), least recently used first out, each entry dropped at its TTL.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from cachetools import TLRUCache


def answer_key(scope, name, version, where, granted, limit, offset, masking) -> tuple:
    masks = json.dumps(masking, sort_keys=True, default=str) if masking else ""
    return (scope, name, version, repr(where), tuple(granted), limit, offset, masks)


class AnswerCache:
    def __init__(self, max_rows: int = 200_000):
        self._entries = TLRUCache(
            maxsize=max_rows,
            ttu=lambda _key, entry, now: now + entry[0],
            getsizeof=lambda entry: len(entry[1]) + 1,
        )
        self._lock = threading.Lock()  # cachetools' caches are not thread-safe; routes run on a pool
        self.counts: dict[tuple[str, str], int] = {}  # (service, "hit" | "miss") -> calls

    def get(self, key: tuple) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
            outcome = (key[1], "miss" if entry is None else "hit")
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return None if entry is None else entry[1]

    def put(self, key: tuple, rows: list[dict[str, Any]], ttl_s: float) -> None:
        with self._lock:
            try:
                self._entries[key] = (ttl_s, rows)
            except ValueError:  # one answer larger than the whole cache: served, not kept
                pass

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


ANSWERS = AnswerCache()
