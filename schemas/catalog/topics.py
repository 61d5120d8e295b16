"""Harvest topics from the schema registry (Confluent REST): each topic's value subject, its latest
version and the fields of the row it carries (an envelope's `after` record; a quarantine topic's own
record). A topic without a subject yet is listed without fields.

    harvest_topics(bootstrap, registry_url, topics) -> Harvest
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.urns import host_namespace, system_urn, topic_urn
from schemas.naming import value_subject


def _type_text(avro: Any) -> tuple[str, bool]:
    """('long' / 'string' / 'decimal(10,2)' / 'record' ..., nullable)."""
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        text = _type_text(branches[0])[0] if len(branches) == 1 else "union"
        return text, "null" in avro
    if isinstance(avro, dict):
        logical = avro.get("logicalType")
        if logical == "decimal":
            return f"decimal({avro.get('precision')},{avro.get('scale', 0)})", False
        return logical or avro.get("type", "record") if isinstance(avro.get("type"), str) else "complex", False
    return str(avro), False


def _named(schema: Any, found: dict[str, dict] | None = None) -> dict[str, dict]:
    """Records defined in a schema by name (short and full): `after` refers to `before`'s row by name."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, found)
    elif isinstance(schema, dict) and schema.get("type") == "record" and schema.get("name"):
        found[schema["name"]] = schema
        if schema.get("namespace"):
            found[f"{schema['namespace']}.{schema['name']}"] = schema
        for f in schema.get("fields", []):
            _named(f.get("type"), found)
    return found


def row_fields(schema: dict[str, Any]) -> list[FieldInfo]:
    """The fields of the row a topic's record carries: the envelope's `after`, else the record's own."""
    record = schema
    for f in schema.get("fields", []):
        if f["name"] == "after":
            named = _named(schema)
            branches = f["type"] if isinstance(f["type"], list) else [f["type"]]
            rows = [named.get(b, b) if isinstance(b, str) else b for b in branches if b != "null"]
            record = next((b for b in rows if isinstance(b, dict)), {})
            break
    out = []
    for i, f in enumerate(record.get("fields", []) if isinstance(record, dict) else []):
        type_text, nullable = _type_text(f["type"])
        original = f.get("huiliu.original_name")
        out.append(
            FieldInfo(
                name=f["name"],
                type=type_text,
                position=i + 1,
                nullable=nullable,
                default=None if "default" not in f else json.dumps(f["default"], ensure_ascii=False),
                comment=f.get("doc") or (original if isinstance(original, str) else None),
                avro_type=json.dumps(f["type"], ensure_ascii=False, sort_keys=True)[:2000],
            )
        )
    return out


def harvest_topics(bootstrap: str, registry_url: str, topics: list[str], timeout: float = 10.0) -> Harvest:
    namespace = host_namespace("kafka", bootstrap)
    datasets, errors = [], []
    with httpx.Client(base_url=registry_url.rstrip("/"), timeout=timeout) as client:
        for topic in sorted(set(topics)):
            subject = value_subject(topic)
            fields: list[FieldInfo] = []
            props: dict[str, Any] = {"subject": None, "kind_detail": "topic"}
            try:
                r = client.get(f"/subjects/{quote(subject, safe='')}/versions/latest")
            except httpx.HTTPError as exc:
                errors.append(f"{topic}: the schema registry did not answer ({type(exc).__name__})")
                continue
            if r.status_code == 200:
                body = r.json()
                schema = json.loads(body["schema"])
                fields = row_fields(schema)
                props.update(subject=subject, subject_version=body.get("version"), schema_id=body.get("id"))
                props["comment"] = schema.get("doc")
            elif r.status_code != 404:
                errors.append(f"{topic}: the schema registry answered {r.status_code}")
                continue
            datasets.append(
                DatasetInfo(urn=topic_urn(bootstrap, topic), name=topic, kind="topic", fields=fields, properties=props)
            )
    system = SystemInfo(urn=system_urn(namespace), name="kafka", kind="kafka", properties={"namespace": namespace})
    return Harvest(system=system, datasets=datasets, errors=errors)
