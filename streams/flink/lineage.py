"""Lineage of a PyFlink job (streams/flink/job.py) read off its config, the way a pipeline
document yields its runner's lineage (issue 15): which topics it reads and writes, and how each
output column derives from the input columns.

- dedupe: input topic -> `output` (default `<topic>.dedup`); the events are kept whole, so each
  field is DIRECT/IDENTITY; the dataset edge names the key and the window (rows are chosen).
- metrics: every input topic -> `metrics.topic` (JSON rows window_start, window_end, topic,
  table, rule, valid, invalid); the columns a rule reads give `valid` and `invalid` as
  DIRECT/AGGREGATION (counts in tumbling windows), the edge names the rule.
- joins: left and right topics -> `output` (JSON rows join, key, left_ts, right_ts, left, right):
  each side's fields go DIRECT/IDENTITY into `left.<field>` / `right.<field>`, the key columns
  also into `key`; the dataset edges name the join and its interval.

The config is the job's own YAML/JSON document; topic URNs use its `kafka.bootstrap`. The input
topics' fields come from the catalogue (`fields_of(urn)`, [] when not harvested yet: then only
the dataset edges and the fields named by keys and rules).

    job, edges, named = flink_edges(name, job_config(config), fields_of)   # BadLineage naming the path

Imports nothing of PyFlink: it runs in the API's virtualenv, not the job's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.catalog.lineage import Edge
from schemas.catalog.received import BadLineage
from schemas.catalog.urns import BadUrn, job_urn, parse_urn, topic_urn

METRICS_FIELDS = ["window_start", "window_end", "topic", "table", "rule", "valid", "invalid"]
IDENTITY = {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
AGGREGATION = {"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}
_ROW = ("after.", "before.", "row.")


def job_config(config: dict[str, Any] | str) -> dict[str, Any]:
    """The job's config as sent: an object, or its YAML text (what `job.py --config` reads)."""
    if isinstance(config, dict):
        return config
    import yaml

    try:
        loaded = yaml.safe_load(config)
    except yaml.YAMLError as exc:
        raise BadLineage(f"config: not YAML: {str(exc)[:300]}") from None
    if not isinstance(loaded, dict):
        raise BadLineage("config: the job's config is an object (its YAML document)")
    return loaded


def key_column(path: str) -> str | None:
    """The row column a key path reads (`after.id`, `row.id` -> `id`); None for envelope paths
    (`source.sequence`)."""
    for prefix in _ROW:
        if path.startswith(prefix) and "." not in path[len(prefix) :]:
            return path[len(prefix) :]
    return None


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise BadLineage(f"config.{where}: a non-empty text of at most 500 characters is needed")
    return value


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadLineage(f"config.{where}: a list is needed")
    return value


def _rule_columns(rules: list, where: str) -> list[tuple[str, list[str]]]:
    """(rule id, columns it reads) of an input's rules, compiled as the job compiles them."""
    from quality_stream.ruleset import compile_rule

    out = []
    for i, cfg in enumerate(rules):
        try:
            rule = compile_rule(cfg, i)
        except Exception as exc:  # the rule's own validation says what is wrong
            raise BadLineage(f"config.{where}[{i}]: {str(exc)[:300]}") from None
        out.append((rule.id, rule.columns()))
    return out


def flink_edges(
    name: str, cfg: Any, fields_of: Callable[[str], list[str]]
) -> tuple[str, list[Edge], dict[str, list[str]]]:
    """The job URN, its edges and the fields each dataset is named with (for the catalogue)."""
    if not isinstance(cfg, dict):
        raise BadLineage("config: the job's config is an object (its YAML document)")
    kafka = cfg.get("kafka")
    if not isinstance(kafka, dict):
        raise BadLineage("config.kafka: an object with bootstrap is needed")
    bootstrap = _text(kafka.get("bootstrap"), "kafka.bootstrap")
    inputs = _list(cfg.get("inputs"), "inputs")
    if not inputs:
        raise BadLineage("config.inputs: the job reads at least one topic")
    job = job_urn(f"flink/{name}")
    edges: list[Edge] = []
    named: dict[str, list[str]] = {}

    def urn(topic: str) -> str:
        made = topic_urn(bootstrap, topic)
        try:
            parse_urn(made)
        except BadUrn as exc:
            raise BadLineage(f"config: topic {topic[:200]} on kafka.bootstrap makes no dataset URN: {exc}") from None
        return made

    def name_fields(dataset: str, fields: list[str]) -> None:
        named.setdefault(dataset, [])
        named[dataset] += [f for f in fields if f not in named[dataset]]

    topics: dict[str, list[str]] = {}  # input topic -> its fields
    metrics = cfg.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise BadLineage("config.metrics: an object with topic is needed")
    metrics_urn = urn(_text(metrics.get("topic"), "metrics.topic")) if metrics else None
    for i, inp in enumerate(inputs):
        if not isinstance(inp, dict):
            raise BadLineage(f"config.inputs[{i}]: an object with topic is needed")
        topic = _text(inp.get("topic"), f"inputs[{i}].topic")
        source = urn(topic)
        fields = list(fields_of(source))
        topics[topic] = fields
        dd = inp.get("dedupe")
        if dd:
            if not isinstance(dd, dict):
                raise BadLineage(f"config.inputs[{i}].dedupe: an object is needed")
            keys = [_text(k, f"inputs[{i}].dedupe.key") for k in _list(dd.get("key"), f"inputs[{i}].dedupe.key")]
            keys = keys or ["row.id", "source.sequence"]  # the job's default
            out = urn(_text(dd.get("output") or f"{topic}.dedup", f"inputs[{i}].dedupe.output"))
            how = {"kind": "dedupe", "key": keys, "window_seconds": dd.get("window_seconds", 60)}
            edges.append(Edge(job, source, out, transformation=how))
            carried = fields or [c for c in map(key_column, keys) if c]
            edges += [Edge(job, source, out, f, f, IDENTITY) for f in carried]
            name_fields(out, carried)
        if metrics_urn:
            rules = _rule_columns(_list(inp.get("rules"), f"inputs[{i}].rules"), f"inputs[{i}].rules")
            ids = [r for r, _ in rules]
            how = {"kind": "metrics", "rules": ids, "window_seconds": metrics.get("window_seconds", 60)}
            edges.append(Edge(job, source, metrics_urn, transformation=how))
            for rule, columns in rules:
                for col in columns:
                    edges += [
                        Edge(job, source, metrics_urn, col, target, {**AGGREGATION, "rules": [rule]})
                        for target in ("valid", "invalid")
                    ]
            name_fields(metrics_urn, METRICS_FIELDS)
        named.setdefault(source, [])
    for i, j in enumerate(_list(cfg.get("joins"), "joins")):
        edges += _join_edges(job, j, i, topics, urn, name_fields)
    for e in edges:  # fields read from inputs not harvested yet are named on them too
        if e.source_field:
            name_fields(e.source, [e.source_field])
    return job, edges, named


def _join_edges(job: str, j: Any, i: int, topics: dict[str, list[str]], urn, name_fields) -> list[Edge]:
    if not isinstance(j, dict):
        raise BadLineage(f"config.joins[{i}]: an object with left, right and output is needed")
    out = urn(_text(j.get("output"), f"joins[{i}].output"))
    for side in ("left", "right"):
        if not isinstance(j.get(side), dict):
            raise BadLineage(f"config.joins[{i}].{side}: an object with topic and key is needed")
    name = j.get("name") or f"{j['left'].get('topic')}+{j['right'].get('topic')}"
    edges, made = [], ["join", "key", "left_ts", "right_ts"]
    for side in ("left", "right"):
        spec = j[side]
        topic = _text(spec.get("topic"), f"joins[{i}].{side}.topic")
        if topic not in topics:
            raise BadLineage(f"config.joins[{i}].{side}.topic: {topic} is not one of the inputs")
        key = key_column(_text(spec.get("key"), f"joins[{i}].{side}.key"))
        source = urn(topic)
        how = {
            "kind": "join",
            "name": name,
            "side": side,
            "key": spec["key"],
            "lower_seconds": j.get("lower_seconds", -60),
            "upper_seconds": j.get("upper_seconds", 60),
        }
        edges.append(Edge(job, source, out, transformation=how))
        fields = topics[topic] or ([key] if key else [])
        edges += [Edge(job, source, out, f, f"{side}.{f}", IDENTITY) for f in fields]
        made += [f"{side}.{f}" for f in fields]
        if key:
            edges.append(Edge(job, source, out, key, "key", IDENTITY))
    name_fields(out, made)
    return edges
