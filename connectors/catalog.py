"""What each connector family hands the catalogue's harvesters: a relational source its engine and
table selection, every connector its topics (with their registry subjects), a ClickHouse sink its
tables (sinks/clickhouse/catalog.py). The API runs the steps; nothing here knows about tenants.

    for step in harvest_steps(record.plugin, record.config, settings):
        harvest = step.run()      # -> schemas.catalog.Harvest
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine

from schemas.catalog.model import Harvest
from schemas.catalog.relational import harvest_relational
from schemas.catalog.topics import harvest_topics
from schemas.naming import clean_topic, quarantine_topic


@dataclass(frozen=True)
class Step:
    label: str  # what is read, for the job's progress ("relational civil", "topics", "clickhouse")
    run: Callable[[], Harvest]


def _selection(config: dict[str, Any]) -> tuple[list[str] | None, list[str] | None, list[str]]:
    """(schemas, include, exclude) of a relational connector's table choice."""
    schema = config.get("db_schema")
    if isinstance(config.get("table"), str):
        return ([schema] if schema else None), [config["table"]], []
    tables = config.get("tables")
    if isinstance(tables, dict):
        return (
            tables.get("schemas") or ([schema] if schema else None),
            tables.get("include"),
            tables.get("exclude") or [],
        )
    if isinstance(tables, list) and tables:
        return ([schema] if schema else None), [str(t) for t in tables], []
    return ([schema] if schema else None), None, []


def relational_step(url: str, system: str, config: dict[str, Any]) -> Step:
    def run() -> Harvest:
        schemas, include, exclude = _selection(config)
        engine = create_engine(url, pool_pre_ping=True)
        try:
            return harvest_relational(engine, url, system, schemas, include, exclude)
        finally:
            engine.dispose()

    return Step(f"relational {system}", run)


def topics_step(topics: list[str], settings) -> Step:
    return Step("topics", lambda: harvest_topics(settings.kafka_bootstrap, settings.schema_registry_url, topics))


def clickhouse_step(url: str, tables: list[str]) -> Step:
    from sinks.clickhouse.catalog import describe_tables

    return Step("clickhouse", lambda: describe_tables(url, tables))


def runner_topics(config: dict[str, Any]) -> list[str]:
    sources = [t for t in config.get("topics") or [] if isinstance(t, str)]
    return sources + [clean_topic(t) for t in sources] + [quarantine_topic(t) for t in sources]


def harvest_steps(plugin: str, config: dict[str, Any], settings, topics: list[str] | None = None) -> list[Step]:
    """The harvest steps of a connector (`topics`: the ones it writes or reads, when known)."""
    steps: list[Step] = []
    if plugin.startswith("relational.") and isinstance(config.get("url"), str):
        steps.append(relational_step(config["url"], str(config.get("system") or "source"), config))
    elif plugin == "clickhouse":
        steps.append(clickhouse_step(config.get("url") or settings.clickhouse_url, [str(config["table"])]))
    if plugin.startswith("runner."):
        topics = runner_topics(config)
    if topics:
        steps.append(topics_step(topics, settings))
    return steps
