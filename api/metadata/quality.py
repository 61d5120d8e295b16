"""What the runners counted, per raw topic, for the asset statistics: events read and quarantined
(the stage counters of each runner connector's pipeline, `runner` stage) and events per day (the
quality metrics' daily rollup in ClickHouse), keyed by the catalogue scope and the topic's URN.

    runner_counts(settings, tenants) -> {(scope, topic urn): {"read": n, "quarantined": m}}
    daily_events(settings, tenants, topics=None) -> {(scope, topic urn): [(day, events)]}, last DAYS days
    dataset_stats(settings, tenants, dataset) -> the `stats` of GET /metadata/datasets/{urn}
"""

from __future__ import annotations

import datetime as dt
import logging

from api.scoping import connector_store
from deploy.control import StageCounters
from schemas.catalog.assets import dataset_stats as stats_of
from schemas.catalog.store import scope_of
from schemas.catalog.urns import parse_urn, topic_urn


def runner_counts(settings, tenants: set[str] | None) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = {}
    for record in connector_store(settings).all(tenants):
        pipeline = record.config.get("pipeline")
        topics = [t for t in record.config.get("topics") or [] if isinstance(t, str)]
        if not record.plugin.startswith("runner.") or not isinstance(pipeline, str) or not topics:
            continue
        counts = StageCounters(settings.resolved_control_db_url, pipeline).read().get("runner", {})
        if not counts:
            continue
        for topic in topics[:1]:  # a pipeline counts its runner as one stage: its first input
            key = (scope_of(record.tenant), topic_urn(settings.kafka_bootstrap, topic))
            seen = out.setdefault(key, {"read": 0, "quarantined": 0})
            seen["read"] += int(counts.get("read", 0))
            seen["quarantined"] += int(counts.get("quarantined", 0))
    return out


DAYS = 30  # the window of "events per day"
log = logging.getLogger(__name__)


def daily_events(settings, tenants: set[str] | None, topics: list[str] | None = None) -> dict[tuple[str, str], list]:
    """Events per day of raw topics over the last DAYS days (today included); {} when ClickHouse
    does not answer: the catalogue's answers do not depend on it."""
    from deploy.clickhouse import client_from_url
    from quality_stream.metrics.query import events_per_day

    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    try:
        client = client_from_url(settings.clickhouse_url)
        try:
            found = events_per_day(
                client, tenants, end - dt.timedelta(days=DAYS), end, tuple(topics) if topics else None
            )
        finally:
            client.disconnect()
    except Exception as exc:  # no metrics table yet (no runner wrote one) or ClickHouse down
        log.info("events per day unavailable: %s", exc)
        return {}
    return {(scope, topic_urn(settings.kafka_bootstrap, topic)): days for (scope, topic), days in found.items()}


def dataset_stats(settings, tenants: set[str] | None, dataset: dict) -> dict:
    """Rows, bytes, freshness, events per day, quarantine ratio and consumers of one dataset."""
    from api.metadata import catalog_store

    scope, urn = dataset["tenant"] or "", dataset["urn"]
    parsed = parse_urn(urn)
    topic = parsed.name if parsed.namespace.startswith("kafka://") else None
    daily = daily_events(settings, tenants, [topic]) if topic else {}
    counts = runner_counts(settings, tenants) if topic else {}
    return stats_of(catalog_store(settings).engine, scope, dataset, counts.get((scope, urn)), daily.get((scope, urn)))
