"""Lifecycle rules of deployed pipelines (issue 14).

- **No orphans**: a pipeline whose connectors are deployed cannot be deleted (`DELETE
  /pipelines/{name}` answers 409 "undeploy first"); `deployed_stages` says which stages run.
- **No silent sharing of a raw topic**: two pipelines reading the same source table would share
  its raw topic `<prefix>.<system>.<schema>.<table>` (one's re-snapshot, offsets reset or schema
  change would reach the other). Deploying a second pipeline onto a raw topic another deployed
  pipeline reads, or a stand-alone source connector of the same system and table writes, is
  refused (409) naming that pipeline or connector (never its name when the caller does not see
  its tenant). Read a table in one pipeline; give a
  second one a different `system` (its own topic) if it really needs its own copy.

    from api.pipelines.sharing import deployed_stages, raw_topic_owner
"""

from __future__ import annotations

from typing import Any

from connectors.pipeline import STAGES, PipelineSpec, stage_name
from connectors.store import ConnectorStore
from schemas.naming import topic_name


def connector_store_for(app) -> ConnectorStore:
    """The API's connector store (the same one the connectors router keeps on app.state)."""
    if not hasattr(app.state, "connector_store"):
        app.state.connector_store = ConnectorStore.for_settings(app.state.settings)
    return app.state.connector_store


def deployed_stages(store: ConnectorStore, name: str, tenant: str | None) -> list[str]:
    """The stages of pipeline `name` whose connectors exist and belong to `tenant`."""
    found = []
    for stage in STAGES:
        exists, owner = store.tenant_of(stage_name(name, stage))
        if exists and owner == tenant:
            found.append(stage)
    return found


def raw_topic_owner(store: ConnectorStore, name: str, document: dict[str, Any], settings) -> dict[str, Any] | None:
    """Who else reads or writes the raw topic pipeline `name` would read: another deployed
    pipeline's runner ({"pipeline", "tenant", "topic"}) or a stand-alone source connector naming
    the same system and table ({"connector", "tenant", "topic"}); else None."""
    try:
        topic = PipelineSpec.model_validate(document).topics(settings)["source"]
    except ValueError:
        return None  # not a deployable document: deploy reports why
    for record in store.all():
        config = record.config or {}
        other = config.get("pipeline")
        if other == name or record.name in {stage_name(name, stage) for stage in STAGES}:
            continue
        if other and record.name == stage_name(other, "runner"):
            topics = config.get("topics") or []
            topics = [t.strip() for t in topics.split(",")] if isinstance(topics, str) else list(topics)
            if topic in topics:
                return {"pipeline": other, "tenant": record.tenant, "topic": topic}
        elif not other and record.kind == "source" and topic in _source_topics(config, settings):
            return {"connector": record.name, "tenant": record.tenant, "topic": topic}
    return None


def _source_topics(config: dict[str, Any], settings) -> set[str]:
    """The raw topics a stand-alone relational-style source writes (system + table or tables)."""
    system = config.get("system")
    if not isinstance(system, str) or not system:
        return set()
    prefix = config.get("topic_prefix") or settings.topic_prefix
    schema = config.get("db_schema")
    tables = config.get("tables")
    names = [config["table"]] if isinstance(config.get("table"), str) else []
    if isinstance(tables, str):
        tables = [t.strip() for t in tables.split(",") if t.strip()]
    names += [t for t in tables or [] if isinstance(t, str)]
    found = set()
    for table in names:
        table_schema, _, table_name = table.rpartition(".")
        try:
            found.add(topic_name(prefix, system, table_schema or schema, table_name))
        except Exception:  # noqa: BLE001 - a name the naming rules refuse is not this topic
            continue
    return found
