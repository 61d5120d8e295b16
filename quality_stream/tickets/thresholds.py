"""When the monitor opens a ticket: a rule's failures within a window reach a count or a ratio.

    Threshold(window_seconds=3600, min_failed=10, min_ratio=None, sla_hours=72, verify_min_records=1)
    threshold.crossed(failed, evaluated) -> bool
    window(samples, now, window_seconds) -> the sample the window starts from (or None: from zero)

Counts come from the runners' cumulative stage counters (`read`, `quarantined.<rule>`); a window is
the difference between now and the last sample taken at or before its start. Counts before the
monitor's first sample of a pipeline count as inside the window (the counters start at zero).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_seconds: int = Field(3600, ge=1, le=30 * 86400, description="the window failures are counted in")
    min_failed: int = Field(10, ge=1, le=10**12, description="open when failures in the window reach this")
    min_ratio: float | None = Field(
        None, gt=0, le=1, description="and (if set) failures / records checked in the window reach this"
    )
    sla_hours: float = Field(72, gt=0, le=24 * 365, description="due this long after opening")
    verify_min_records: int = Field(1, ge=1, le=10**9, description="new records that must pass to verify")

    def crossed(self, failed: int, evaluated: int) -> bool:
        if failed < self.min_failed:
            return False
        if self.min_ratio is None:
            return True
        return evaluated > 0 and failed / evaluated >= self.min_ratio


DEFAULT = Threshold()


def window(samples: list[tuple[float, dict]], now: float, window_seconds: float) -> dict | None:
    """`samples`: (taken_at, counts) oldest first. The counts the window starts from."""
    start = now - window_seconds
    base = None
    for taken_at, counts in samples:
        if taken_at <= start:
            base = counts
        else:
            break
    return base


def delta(current: dict, base: dict | None, key: str) -> int:
    now = int(current.get(key, 0))
    before = int((base or {}).get(key, 0))
    return now - before if now >= before else now  # counters were reset: count from zero
