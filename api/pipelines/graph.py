"""Nodes and edges of a pipeline for a console to draw:
source -> raw topic -> transforms (in order) -> rules -> clean topic -> sink, with every rule
also feeding the quarantine topic (rows it rejects)."""

from __future__ import annotations

from connectors.pipeline import PipelineSpec
from schemas.naming import clean_topic, quarantine_topic, topic_name


def graph(spec: PipelineSpec, topic_prefix: str) -> dict:
    cfg = spec.source.config
    raw = topic_name(topic_prefix, str(cfg.get("system", "")), cfg.get("db_schema"), str(cfg.get("table", "")))
    nodes = [
        {
            "id": "source",
            "type": "source",
            "kind": spec.source.kind,
            "label": f"{cfg.get('system', '?')}.{cfg.get('table', '?')}",
        },
        {"id": "topic:raw", "type": "topic", "role": "raw", "label": raw},
    ]
    edges = [{"from": "source", "to": "topic:raw"}]
    last = "topic:raw"
    for i, t in enumerate(spec.transforms):
        node = f"transform:{i}"
        nodes.append(
            {
                "id": node,
                "type": "transform",
                "kind": t.get("kind"),
                "label": t.get("kind"),
                "settings": {k: v for k, v in t.items() if k != "kind"},
            }
        )
        edges.append({"from": last, "to": node})
        last = node
    nodes.append({"id": "topic:quarantine", "type": "topic", "role": "quarantine", "label": quarantine_topic(raw)})
    for i, r in enumerate(spec.rules):
        node = f"rule:{r.get('id') or i}"
        nodes.append(
            {
                "id": node,
                "type": "rule",
                "kind": r.get("kind"),
                "label": r.get("id") or r.get("kind"),
                "severity": r.get("severity"),
                "fields": r.get("fields"),
            }
        )
        edges.append({"from": last, "to": node})
        edges.append({"from": node, "to": "topic:quarantine", "label": "rejected"})
        last = node
    nodes.append({"id": "topic:clean", "type": "topic", "role": "clean", "label": clean_topic(raw)})
    edges.append({"from": last, "to": "topic:clean", "label": "valid" if spec.rules else None})
    nodes.append(
        {"id": "sink", "type": "sink", "kind": spec.sink.kind, "label": spec.sink.config.get("table", spec.sink.kind)}
    )
    edges.append({"from": "topic:clean", "to": "sink"})
    return {"pipeline": spec.name, "nodes": nodes, "edges": edges}
