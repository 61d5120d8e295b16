"""The topics a stored connector writes (sources) or reads (sinks), from its document alone."""

from __future__ import annotations

from connectors.document import parse
from schemas.naming import topic_name


def connector_topics(record, settings) -> list[str]:
    """The topics a connector writes (sources: from system, schema and named tables; tables chosen by
    include patterns are not known before they are read) or reads (sinks)."""
    spec, _ = parse(record.name, record.config, settings)
    if spec is None:
        return []
    if spec.plugin.reads_topics:
        return sorted(spec.topics)
    cfg = spec.plugin_config.model_dump()
    system = cfg.get("system")
    if not system:
        return []
    # where each source puts a table's schema part (the CapturedTable it builds): MySQL binlog and
    # custom queries have none, Hive its database, the rest db_schema; HBase may name its topic table
    default_schema = None if spec.plugin.name == "relational.mysql_binlog" else cfg.get("db_schema")
    if spec.plugin.name.startswith("bigdata.hive") or "database" in cfg and "db_schema" not in cfg:
        default_schema = cfg.get("database")
    single = cfg.get("topic_table") or cfg.get("table")
    named = cfg.get("tables")
    # a list names tables; a selection ({"include": [...], ...}) is known only once it is read
    tables = [t for t in named if isinstance(t, str)] if isinstance(named, list) else []
    tables += [single] if isinstance(single, str) else []
    tables += [c["table"] for c in cfg.get("children") or [] if isinstance(c, dict)]  # file arrays: child tables
    prefix = cfg.get("topic_prefix") or settings.topic_prefix
    found = set()
    for table in tables:
        schema, table = table.split(".", 1) if "." in table and "db_schema" in cfg else (default_schema, table)
        found.add(topic_name(prefix, system, schema, table))
    for q in cfg.get("queries") or []:
        if isinstance(q, dict) and q.get("name"):
            found.add(topic_name(prefix, system, None, q["name"]))
    return sorted(found)


def writers_of(topic: str, records, settings) -> list[str]:
    """Names of the source connectors among `records` that write `topic`."""
    return sorted(r.name for r in records if r.kind == "source" and topic in connector_topics(r, settings))
