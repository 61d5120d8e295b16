"""Lineage from what the platform runs: each connector document says which datasets it reads and
writes (a relational source: table -> raw topic; a runner: raw topic -> clean and quarantine
topics; a ClickHouse sink: clean topic -> its table), and a runner's transforms say how each clean
column derives from the raw ones (their declared column flow: `reads()` / `after()`).

    edges = connector_edges(record, settings, catalogue)    # -> [schemas.catalog.lineage.Edge]
"""

from __future__ import annotations

from typing import Any

from connectors.catalog import hdfs_table, runner_topics, sink_topics
from schemas.catalog.lineage import Edge
from schemas.catalog.urns import dataset_urn, host_namespace, job_urn, relational_urn, topic_urn
from schemas.naming import avro_name, clean_topic, quarantine_topic, topic_name

IDENTITY = {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
FILTERS = {"filter", "dedupe", "route"}  # steps that choose rows, not change values


def _step(kind: str, reads: set[str], col: str, was: dict[str, Any]) -> dict[str, Any]:
    if col not in reads or kind == "rename":
        return was
    if kind in FILTERS:
        return was
    return {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": was["masking"] or kind == "mask"}


def field_flow(transforms: list[dict[str, Any]], columns: list[str]) -> tuple[dict[str, list], bool]:
    """{output column: [(input column, transformation)]} through `transforms`; complete flag False
    when a step's output columns depend on data (then the flow stops there)."""
    from streams.transforms.registry import transform_class

    origin: dict[str, list[tuple[str, dict]]] = {c: [(c, IDENTITY)] for c in columns}
    cols = list(columns)
    for cfg in transforms:
        cls = transform_class(cfg.get("kind"))
        if cls is None:
            return origin, False
        spec = cls.settings.model_validate(cfg)
        after, reads, kind = spec.after(cols), set(spec.reads()), cfg["kind"]
        if after is None:
            return origin, False
        new: dict[str, list[tuple[str, dict]]] = {}
        positional = len(after) >= len(cols) and kind == "rename"
        for i, col in enumerate(after):
            before = cols[i] if positional and i < len(cols) else col
            if before in origin:
                new[col] = [(src, _step(kind, reads, before, t)) for src, t in origin[before]]
            else:  # a new column: made from the columns the step reads
                made = {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": kind == "mask"}
                new[col] = [(src, made) for r in sorted(reads) for src, _ in origin.get(r, [])]
        origin, cols = new, after
    return origin, True


def _fields(catalogue, scope: str, urn: str) -> list[str]:
    try:
        return [f["name"] for f in catalogue.dataset({scope}, urn)["fields"]]
    except LookupError:
        return []


def _identity(job: str, source: str, target: str, names: list[str]) -> list[Edge]:
    return [Edge(job, source, target, n, n, IDENTITY) for n in names]


def _topic_names(catalogue, scope: str, topic: str) -> dict[str, str]:
    """Column -> the topic field made of it: a field whose name Avro could not take keeps the
    column's name as its comment (`姓名` -> `xingming`)."""
    try:
        fields = catalogue.dataset({scope}, topic)["fields"]
    except LookupError:
        fields = []
    made = {f["comment"]: f["name"] for f in fields if f.get("comment")}
    made.update({f["name"]: f["name"] for f in fields})  # a field of the column's own name wins
    return made


def _renamed(job: str, source: str, topic: str, names: list[str], catalogue, scope: str) -> list[Edge]:
    made = _topic_names(catalogue, scope, topic)  # the same name when the topic is unknown
    return [Edge(job, source, topic, n, made.get(n, n), IDENTITY) for n in names]


def _query_edges(job: str, cfg: dict[str, Any], query: dict, settings, catalogue, scope: str) -> list[Edge]:
    """A custom snapshot SELECT: its tables -> its topic, field edges parsed from the SQL (sqlglot)."""
    from sqlalchemy.engine import make_url

    from schemas.catalog.sql_lineage import BadQuery, query_lineage

    dialect = make_url(cfg["url"]).get_backend_name()
    default = cfg.get("db_schema") or ("public" if dialect == "postgresql" else None)
    prefix = cfg.get("topic_prefix") or settings.topic_prefix
    topic = topic_urn(settings.kafka_bootstrap, topic_name(prefix, cfg["system"], None, query["name"]))

    def urn(table: str) -> str:
        schema, _, name = table.rpartition(".")
        return relational_urn(cfg["url"], schema or default, name)

    try:
        found = query_lineage(query["sql"], dialect)
        known = {t: _fields(catalogue, scope, urn(t)) for t in found["tables"]}
        found = query_lineage(query["sql"], dialect, known)
    except BadQuery:
        return []
    made = _topic_names(catalogue, scope, topic)
    edges = [Edge(job, urn(t), topic) for t in found["tables"]]
    for out, sources in found["columns"].items():
        target = made.get(out, out)
        edges += [Edge(job, urn(t), topic, col, target, how) for t, col, how in sources]
        edges += [Edge(job, urn(t), topic, col, target, how) for t, col, how in found["indirect"]]
    return edges


def connector_edges(record, settings, catalogue, scope: str) -> list[Edge]:
    cfg, job = record.config, job_urn(record.name)
    bootstrap = settings.kafka_bootstrap
    if record.plugin.startswith("relational.") and isinstance(cfg.get("url"), str) and cfg.get("system"):
        if isinstance(cfg.get("table"), str):
            tables = [cfg["table"]]
        elif isinstance(cfg.get("tables"), dict):  # chosen by patterns: the tables the harvest found
            tables = _selected(catalogue, scope, cfg)
        else:
            tables = [t for t in cfg.get("tables") or [] if isinstance(t, str)]
        edges = []
        for table in tables:
            schema, _, name = table.rpartition(".")
            schema = schema or cfg.get("db_schema") or ("public" if cfg["url"].startswith("postgres") else None)
            source = relational_urn(cfg["url"], schema, name)
            topic = topic_urn(
                bootstrap,
                topic_name(cfg.get("topic_prefix") or settings.topic_prefix, cfg["system"], cfg.get("db_schema"), name),
            )
            edges.append(Edge(job, source, topic))
            edges += _renamed(job, source, topic, _fields(catalogue, scope, source), catalogue, scope)
        for query in cfg.get("queries") or []:
            if isinstance(query, dict) and isinstance(query.get("name"), str) and isinstance(query.get("sql"), str):
                edges += _query_edges(job, cfg, query, settings, catalogue, scope)
        return edges
    if record.plugin.startswith("runner."):
        edges = []
        for raw in [t for t in cfg.get("topics") or [] if isinstance(t, str)]:
            raw_urn, clean_urn = topic_urn(bootstrap, raw), topic_urn(bootstrap, clean_topic(raw))
            rules = [r.get("id") for r in cfg.get("rules") or [] if isinstance(r, dict)]
            edges.append(Edge(job, raw_urn, clean_urn, transformation={"rules": rules}))
            edges.append(
                Edge(job, raw_urn, topic_urn(bootstrap, quarantine_topic(raw)), transformation={"rules": rules})
            )
            columns = _fields(catalogue, scope, raw_urn) or _upstream_fields(catalogue, scope, raw_urn)
            flow, _complete = field_flow(cfg.get("transforms") or [], columns)
            for out, sources in flow.items():
                edges += [Edge(job, raw_urn, clean_urn, src, out, {**t, "rules": rules}) for src, t in sources]
        return edges
    if record.plugin == "files" and isinstance(cfg.get("store"), dict) and cfg.get("table") and cfg.get("system"):
        return _file_edges(cfg, job, settings, catalogue, scope)
    if record.plugin == "hdfs" and isinstance(cfg.get("url"), str):
        from schemas.catalog.files import file_namespace

        root = str(cfg.get("root") or "/huiliu").rstrip("/")
        edges = []
        for topic in sink_topics(cfg):
            source = topic_urn(bootstrap, topic)
            target = dataset_urn(file_namespace("hdfs", url=cfg["url"]), f"{root}/{hdfs_table(topic)}".strip("/"))
            edges.append(Edge(job, source, target))
            edges += _identity(job, source, target, _fields(catalogue, scope, source))
        return edges
    if record.plugin == "clickhouse" and cfg.get("table"):
        from urllib.parse import urlparse

        url = urlparse(cfg.get("url") or settings.clickhouse_url)
        database = (url.path or "/default").strip("/") or "default"
        target = dataset_urn(
            host_namespace("clickhouse", f"{url.hostname or '127.0.0.1'}:{url.port or 9000}"),
            f"{database}.{avro_name(cfg['table'])}",
        )
        edges = []
        for topic in runner_topics({"topics": cfg.get("topics")})[: len(cfg.get("topics") or [])]:
            source = topic_urn(bootstrap, topic)
            edges.append(Edge(job, source, target))
            names = _fields(catalogue, scope, source) or _upstream_fields(catalogue, scope, source)
            edges += _identity(job, source, target, names)
        return edges
    return []


def _file_edges(cfg: dict[str, Any], job: str, settings, catalogue, scope: str) -> list[Edge]:
    """A file source: its directory -> its topic; field edges from each file column to the topic
    field made of it (a renamed field keeps the column's name as its comment)."""
    from schemas.catalog.files import file_urn

    store = cfg["store"]
    where = {"host": store.get("host"), "port": store.get("port"), "url": store.get("url")}
    source = file_urn(store.get("kind") or "local", store.get("root") or "/", store.get("pattern") or "*", **where)
    prefix = cfg.get("topic_prefix") or settings.topic_prefix
    target = topic_urn(settings.kafka_bootstrap, topic_name(prefix, cfg["system"], cfg.get("db_schema"), cfg["table"]))
    columns = set(_fields(catalogue, scope, source))
    edges = [Edge(job, source, target)]
    try:
        made = catalogue.dataset({scope}, target)["fields"]
    except LookupError:
        made = []
    for f in made:
        origin = f.get("comment") if f.get("comment") in columns else f["name"]
        if origin in columns:
            edges.append(Edge(job, source, target, origin, f["name"], IDENTITY))
    return edges


def _selected(catalogue, scope: str, cfg: dict[str, Any]) -> list[str]:
    """`schema.table` of the harvested tables a pattern selection ({schemas, include, exclude}) takes."""
    import fnmatch

    from connectors.catalog import _selection
    from schemas.catalog.urns import relational_namespace, system_urn

    schemas, include, exclude = _selection(cfg)
    namespace, database = relational_namespace(cfg["url"])
    _, found = catalogue.datasets({scope}, system_urn(namespace, database), None, 10_000)

    def hit(name: str, table: str, patterns) -> bool:
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(table, p) for p in patterns)

    out = []
    for d in found:
        schema, _, table = d["name"].rpartition(".")
        if schemas and schema not in schemas:
            continue
        if (not include or hit(d["name"], table, include)) and not hit(d["name"], table, exclude or ()):
            out.append(d["name"])
    return out


def _upstream_fields(catalogue, scope: str, urn: str) -> list[str]:
    """A topic without a registry subject yet: the fields its writers' field edges bring into it."""
    from sqlalchemy import select

    from schemas.catalog.tables import catalog_edges

    with catalogue.engine.connect() as conn:
        rows = conn.execute(
            select(catalog_edges.c.target_field, catalog_edges.c.id)
            .where(
                catalog_edges.c.scope == scope,
                catalog_edges.c.target_urn == urn,
                catalog_edges.c.target_field.isnot(None),
            )
            .order_by(catalog_edges.c.id)
        ).all()
    return list(dict.fromkeys(r[0] for r in rows))
