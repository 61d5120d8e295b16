"""The cron forms schedules accept (issue 14), checked the same way when a schedule is stored
(`POST/PATCH /schedules`, 422) and when the scheduler is about to fire one (a row stored before
this check never fires every second).

Accepted: exactly 5 fields (minute hour day month weekday) or 6 (the 6th being seconds, croniter's
convention), each what croniter reads; no `@hourly`-style names, no 7th (year) field. The
shortest time between two firings must be at least the minimum interval (setting
`schedule_min_interval_s`, default 60 s). The shortest gap is computed from the expanded minute,
hour and second fields over one day, counting the step from the day's last firing to the next
day's first as possible (days and weekdays only ever make gaps longer).

    from api.scheduling.cron import CronRefused, check_cron
    check_cron("*/5 * * * *", min_interval_s=60)   # -> "*/5 * * * *" (normalised spaces)
    check_cron("* * * * * * *", 60)                # CronRefused("cron must have 5 fields ...")
"""

from __future__ import annotations

from croniter import croniter

DAY = 86400


class CronRefused(ValueError):
    """Why a cron expression is not accepted (no echo of the expression beyond its field count)."""


def check_cron(expression: str, min_interval_s: int) -> str:
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronRefused(
            f"cron must have 5 fields (minute hour day month weekday) or 6 (seconds last), not {len(fields)}"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise CronRefused(
            "cron is not a valid expression: 5 fields (minute hour day month weekday) or 6 (seconds last)"
        )
    gap = shortest_gap(normalised)
    if gap < min_interval_s:
        raise CronRefused(
            f"cron fires every {gap} s at times; the minimum interval is {min_interval_s} s "
            "(setting schedule_min_interval_s)"
        )
    return normalised


def shortest_gap(expression: str) -> int:
    """Seconds between the two closest firings the expression can make (a lower bound across days)."""
    expanded = croniter(expression).expanded
    minutes = _values(expanded[0], 60)
    hours = _values(expanded[1], 24)
    seconds = _values(expanded[5], 60) if len(expanded) > 5 else [0]
    moments = sorted(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds)
    gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
    gaps.append(moments[0] + DAY - moments[-1])  # last of one day to the first of the next
    return min(gaps)


def _values(field: list, size: int) -> list[int]:
    if field == ["*"]:
        return list(range(size))
    return sorted({int(v) for v in field if v != "*"}) or list(range(size))
