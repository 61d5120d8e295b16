"""The quality-metrics tables in ClickHouse, so dashboards read them directly.

`quality_metrics` (MergeTree, monthly partitions): one row per (window, pipeline, rule) a runner saw:

    window_start DateTime   start of the runner's window (UTC, default 60 s windows)
    scope        String     tenant of the pipeline ("" = the operator's)
    pipeline     String     pipeline name
    system       String     source system (second part of the raw topic name)
    dataset      String     the raw change-event topic the rule judged
    rule         String     rule id
    dimension    String     completeness | validity | uniqueness | consistency | accuracy | timeliness
    message      String     the rule's message (reports group causes by it)
    evaluated    UInt64     rows the rule judged in the window
    failed       UInt64     rows it failed

Rollups (materialised views into SummingMergeTree tables, kept on insert; read them with
`sum(evaluated), sum(failed) ... GROUP BY`, since parts merge lazily):
`quality_metrics_hourly` (`hour`) and `quality_metrics_daily` (`day` Date), keyed by
(scope, system, dataset, pipeline, rule, dimension, message, hour|day).

    SELECT dimension, sum(failed) / sum(evaluated) AS failure_ratio
    FROM quality_metrics_daily WHERE scope = 'civil' AND day >= today() - 30 GROUP BY dimension
"""

from __future__ import annotations

RAW = "quality_metrics"
HOURLY = "quality_metrics_hourly"
DAILY = "quality_metrics_daily"
COLUMNS = (
    "window_start",
    "scope",
    "pipeline",
    "system",
    "dataset",
    "rule",
    "dimension",
    "message",
    "evaluated",
    "failed",
)
KEY = "scope, system, dataset, pipeline, rule, dimension, message"

_DDL = [
    f"CREATE TABLE IF NOT EXISTS {RAW} (window_start DateTime, scope String, pipeline String, system String, "
    "dataset String, rule String, dimension String, message String, evaluated UInt64, failed UInt64) "
    f"ENGINE = MergeTree PARTITION BY toYYYYMM(window_start) ORDER BY (scope, window_start, pipeline, rule)",
    f"CREATE TABLE IF NOT EXISTS {HOURLY} (hour DateTime, scope String, system String, dataset String, "
    "pipeline String, rule String, dimension String, message String, evaluated UInt64, failed UInt64) "
    f"ENGINE = SummingMergeTree((evaluated, failed)) PARTITION BY toYYYYMM(hour) ORDER BY ({KEY}, hour)",
    f"CREATE TABLE IF NOT EXISTS {DAILY} (day Date, scope String, system String, dataset String, "
    "pipeline String, rule String, dimension String, message String, evaluated UInt64, failed UInt64) "
    f"ENGINE = SummingMergeTree((evaluated, failed)) PARTITION BY toYYYYMM(day) ORDER BY ({KEY}, day)",
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {HOURLY}_mv TO {HOURLY} AS SELECT toStartOfHour(window_start) AS hour, "
    f"{KEY}, sum(evaluated) AS evaluated, sum(failed) AS failed FROM {RAW} GROUP BY hour, {KEY}",
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {DAILY}_mv TO {DAILY} AS SELECT toDate(window_start) AS day, "
    f"{KEY}, sum(evaluated) AS evaluated, sum(failed) AS failed FROM {RAW} GROUP BY day, {KEY}",
]


def ensure_tables(client) -> None:
    """Create the table and its rollups once (idempotent; the views only see later inserts)."""
    for ddl in _DDL:
        client.execute(ddl)
