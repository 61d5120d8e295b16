"""Wiring of column profiles (issue 16): profile a catalogue dataset's ClickHouse table and store the
profile with the dataset's catalogue version, at once or as a message-centre job with progress and
cancel (the figures are quality_stream/profiling).

    profile_and_store(settings, scope, target, by, progress=None) -> the stored profile
    profile_job(settings, scope, target, by) -> fn(ctx) for JobManager.submit("quality.profile", ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.quality import reporting
from quality_stream.profiling import profile_table, suggest_rules
from quality_stream.profiling.profile import Progress


@dataclass(frozen=True)
class Target:
    dataset: str  # the catalogue URN
    version: int  # the dataset's catalogue version the profile belongs to
    table: str  # db.table in ClickHouse
    columns: list[str] | None = None


def profile_and_store(settings, scope: str, target: Target, by: str, progress: Progress | None = None) -> dict:
    """Raises reporting.MetricsUnavailable (ClickHouse down) and ProfileError (no such table/column)."""
    client = reporting.clickhouse(settings)
    try:
        profile = profile_table(client, target.table, target.columns, progress)
    finally:
        client.disconnect()
    store = reporting.report_store(settings)
    return store.save_profile(scope, target.dataset, target.version, target.table, profile, suggest_rules(profile), by)


def profile_job(settings, scope: str, target: Target, by: str):
    def run(ctx) -> dict[str, Any]:
        def progress(pct: float, stage: str) -> None:
            ctx.progress(pct, f"正在剖析 {target.table}（{stage}）/ profiling {target.table} ({stage})")
            ctx.check_cancelled()  # JobCancelled cancels the running ClickHouse query

        progress(0.0, "start")
        saved = profile_and_store(settings, scope, target, by, progress)
        ctx.progress(100.0, f"已剖析 {saved['profile']['rows']:,} 行 / profiled {saved['profile']['rows']:,} rows")
        return {
            "profile_id": saved["id"],
            "dataset": target.dataset,
            "dataset_version": target.version,
            "table": target.table,
            "rows": saved["profile"]["rows"],
            "columns": len(saved["profile"]["columns"]),
            "suggestions": len(saved["suggestions"]),
        }

    return run
