"""What the runners counted, per raw topic, for the asset statistics: events read and quarantined
(the stage counters of each runner connector's pipeline, `runner` stage), keyed by the catalogue
scope and the topic's URN.

    runner_counts(settings, tenants) -> {(scope, topic urn): {"read": n, "quarantined": m}}
"""

from __future__ import annotations

from api.scoping import connector_store
from deploy.control import StageCounters
from schemas.catalog.store import scope_of
from schemas.catalog.urns import topic_urn


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
