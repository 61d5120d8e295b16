"""The topics a tenant owns: the ones its connectors write or read and its pipelines use (what the
topics API shows it; another tenant's topic is unknown there)."""

from __future__ import annotations

from connectors.pipeline import PipelineSpec
from connectors.topics import connector_topics


def topics_of(connectors, pipelines, settings) -> set[str]:
    """The topics `connectors` (stored records) write or read and `pipelines` (documents) use."""
    found: set[str] = set()
    for record in connectors:
        try:
            found.update(connector_topics(record, settings))
        except Exception:  # noqa: BLE001 - a document that no longer parses names no topic
            continue
    for document in pipelines:
        try:
            spec = PipelineSpec.model_validate(document)
            found.update(spec.topics(settings).values())
            found.update(spec.sink.topics or [])
        except Exception:  # noqa: BLE001 - a source without one table has no named topic
            continue
    return found
