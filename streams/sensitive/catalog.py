"""Where a catalogue dataset's samples come from, and what confirming a finding writes back.

    source = sample_source(dataset_urn, clickhouse_url, kafka_bootstrap)   # ("clickhouse", "db.table") | ("topic", name)
    patch = confirmation_patch(dataset, {"phone": {"kind": "mobile", "classification": "sensitive"}})

Only this platform's own ClickHouse and broker are sampled (their namespaces in the URN match the
settings'); other systems answer None (the caller says so). A confirmed finding sets the field's
classification in the catalogue (read by every service's masking on its next call) and tags the
field `sensitive:<kind>`, keeping its other tags.
"""

from __future__ import annotations

from typing import Any

from schemas.catalog.urns import host_namespace, parse_urn


def sample_source(urn: str, clickhouse_url: str, kafka_bootstrap: str) -> tuple[str, str] | None:
    parsed = parse_urn(urn)
    if parsed.kind != "dataset" or not parsed.name:
        return None
    if parsed.namespace == host_namespace("clickhouse", clickhouse_url):
        return "clickhouse", parsed.name
    if parsed.namespace == host_namespace("kafka", kafka_bootstrap):
        return "topic", parsed.name
    return None


def confirmation_patch(dataset: dict[str, Any], confirmed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The catalogue's business patch for the confirmed fields (ValueError naming an unknown field)."""
    known = {f["name"]: f for f in dataset["fields"]}
    unknown = sorted(set(confirmed) - set(known))
    if unknown:
        raise ValueError(f"the dataset has no field {', '.join(unknown)}")
    fields = {}
    for name, choice in confirmed.items():
        tags = [t for t in (known[name].get("business", {}).get("tags") or []) if not t.startswith("sensitive:")]
        if choice.get("kind"):
            tags.append(f"sensitive:{choice['kind']}")
        fields[name] = {"classification": choice["classification"], "tags": tags}
    return {"fields": fields}
