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
        timeout = {"connect_timeout": 10} if url.startswith(("postgres", "mysql", "mariadb")) else {}
        engine = create_engine(url, pool_pre_ping=True, connect_args=timeout)
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


def file_step(config: dict[str, Any], settings) -> Step:
    """A file source: its directory as a dataset, declared columns or the ones its topic carries."""

    def run() -> Harvest:
        from schemas.catalog.files import harvest_file_source
        from schemas.naming import topic_name

        store = config.get("store") if isinstance(config.get("store"), dict) else {}
        declared = [c for c in config.get("columns") or [] if isinstance(c, dict) and c.get("name")]
        inferred, listing = None, None
        if not declared:
            topic = topic_name(
                config.get("topic_prefix") or settings.topic_prefix,
                str(config.get("system")),
                config.get("db_schema"),
                str(config.get("table")),
            )
            found = harvest_topics(settings.kafka_bootstrap, settings.schema_registry_url, [topic]).datasets
            inferred = found[0].fields if found else None
        if (store.get("kind") or "local") == "local" and store.get("root"):
            from connectors.files.stores import LocalStore, StoreConfig

            try:
                listing = LocalStore(
                    StoreConfig(kind="local", root=store["root"], pattern=store.get("pattern") or "*")
                ).list()
            except OSError:
                listing = None
        fmt = config.get("format") if isinstance(config.get("format"), dict) else {}
        return harvest_file_source(
            store,
            str(config.get("table")),
            str(config.get("system")),
            declared,
            inferred,
            listing,
            fmt.get("kind") or "csv",
        )

    return Step("files", run)


def sink_topics(config: dict[str, Any]) -> list[str]:
    """A sink's `topics`: a list, or Kafka Connect's comma-separated string."""
    topics = config.get("topics") or []
    if isinstance(topics, str):
        topics = topics.split(",")
    return [t.strip() for t in topics if isinstance(t, str) and t.strip()]


def hdfs_table(topic: str) -> str:
    """The directory an HDFS sink writes a topic's rows under (<root>/<table>): the table part of
    the topic's name (the envelope's source.table at run time, which the name is made from)."""
    base = topic.removesuffix(".clean")
    return base.rsplit(".", 1)[-1].replace("/", "_")


def hdfs_step(config: dict[str, Any], settings) -> Step:
    """An HDFS sink: each topic's directory with the fields of the topic's row (its registry subject)."""

    def run() -> Harvest:
        from schemas.catalog.files import harvest_hdfs_path

        topics = sink_topics(config)
        root = str(config.get("root") or "/huiliu").rstrip("/")
        found = harvest_topics(settings.kafka_bootstrap, settings.schema_registry_url, topics)
        fields = {d.name: d.fields for d in found.datasets}
        harvests = [
            harvest_hdfs_path(str(config.get("url")), f"{root}/{hdfs_table(t)}", fields.get(t, [])) for t in topics
        ]
        first = harvests[0]
        for h in harvests[1:]:
            first.datasets += h.datasets
        first.errors += found.errors
        return first

    return Step("hdfs", run)


def runner_topics(config: dict[str, Any]) -> list[str]:
    sources = [t for t in config.get("topics") or [] if isinstance(t, str)]
    return sources + [clean_topic(t) for t in sources] + [quarantine_topic(t) for t in sources]


def harvest_steps(plugin: str, config: dict[str, Any], settings, topics: list[str] | None = None) -> list[Step]:
    """The harvest steps of a connector (`topics`: the ones it writes or reads, when known)."""
    steps: list[Step] = []
    if plugin.startswith("relational.") and isinstance(config.get("url"), str):
        steps.append(relational_step(config["url"], str(config.get("system") or "source"), config))
    elif plugin == "files" and isinstance(config.get("store"), dict) and config.get("table"):
        steps.append(file_step(config, settings))
    elif plugin == "hdfs" and isinstance(config.get("url"), str) and config.get("topics"):
        steps.append(hdfs_step(config, settings))
    elif plugin == "clickhouse":
        steps.append(clickhouse_step(config.get("url") or settings.clickhouse_url, [str(config["table"])]))
    if plugin.startswith("runner."):
        topics = runner_topics(config)
    if topics:
        steps.append(topics_step(topics, settings))
    return steps
