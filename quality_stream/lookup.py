"""Reference tables for lookup rules and enrichment, filled by a runner from a compacted topic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl


class LookupTable:
    """Key -> value mapping (value may be None when only membership matters).

    upsert/delete mirror compacted-topic semantics (a None value from the topic is a
    tombstone: use delete). The polars Series of keys is cached until the next change so
    membership checks stay vectorised without rebuilding per batch.

    One writer thread (e.g. a compacted-topic follower) may change the table while batches read
    it: caches are tagged with the version read before the data, so a stale one is never kept.
    """

    def __init__(self, data: Mapping[Any, Any] | Iterable[Any] | None = None):
        self._data: dict[Any, Any] = {}
        self._keys_cache: tuple[int, pl.Series] | None = None
        self.version = 0  # bumped on every change so consumers can cache derived frames
        if data is not None:
            self.update(data)

    def update(self, data: Mapping[Any, Any] | Iterable[Any]) -> None:
        if isinstance(data, Mapping):
            self._data.update(data)
        else:
            self._data.update((k, None) for k in data)
        self._keys_cache = None
        self.version += 1

    def upsert(self, key: Any, value: Any = None) -> None:
        self._data[key] = value
        self._keys_cache = None
        self.version += 1

    def delete(self, key: Any) -> None:
        if self._data.pop(key, _MISSING) is not _MISSING:
            self._keys_cache = None
            self.version += 1

    def get(self, key: Any, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys_series(self) -> pl.Series:
        cached = self._keys_cache
        version = self.version
        if cached is None or cached[0] != version:
            cached = (version, pl.Series("key", list(self._data.keys()), strict=False))
            self._keys_cache = cached
        return cached[1]

    def as_dict(self) -> dict[Any, Any]:
        return dict(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


_MISSING = object()
