"""Standards reach the pipelines: after elements or code sets are published or retired, or a field
is mapped or unmapped, every pipeline of the tenant whose source reads a mapped dataset (its source
table, or its raw topic) gets the rules its mapped fields' published elements generate, as a new
pipeline version (in its history and diff, deployable like any change); a lean runner checks code
set membership against the code set's compacted topic (runner.lookups), which later code set
versions update without a new pipeline version. Hand-written rules and lookups stay;
rules with the reserved `std.` prefix are replaced; a pipeline whose rules come out the same gets no
version. A failing pipeline is reported in the answer and the rest still updated.

    after_change(request, scope, principal, reason) -> [{"pipeline", "version"} | {"pipeline", "error"}]
    value_checks(settings, principal, dataset_urn, elements) -> per reading pipeline and element: checked,
        failed per generated check, pass_ratio (from the runner's counters)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request

from api.pipelines.store import Stale, pipeline_store_for
from api.standards import mapping_store, standards_store
from connectors.pipeline import PipelineSpec
from deploy.control import StageCounters
from quality_stream.governance.generate import (
    code_set_lookup,
    code_set_topic,
    element_rules,
    merge_lookups,
    merge_rules,
)
from quality_stream.governance.mappings import value_conformance
from schemas.catalog.urns import relational_urn, topic_urn
from schemas.naming import field_names

log = logging.getLogger(__name__)


def _relational_source(spec: PipelineSpec) -> str | None:
    """The catalogue URN of the one table a relational source reads (as the harvester names it)."""
    c = spec.source.config
    if not spec.source.kind.startswith("relational.") or not isinstance(c.get("url"), str):
        return None
    table, tables = c.get("table"), c.get("tables")
    if not table and isinstance(tables, list) and len(tables) == 1 and isinstance(tables[0], str):
        table = tables[0]
    if not isinstance(table, str):
        return None
    schema, _, name = table.rpartition(".")
    schema = schema or c.get("db_schema") or ("public" if c["url"].startswith("postgres") else None)
    try:
        return relational_urn(c["url"], schema, name)
    except ValueError:
        return None


def datasets_read(spec: PipelineSpec, settings) -> dict[str, str]:
    """{dataset URN: "table" | "topic"} of what the pipeline's runner reads."""
    out = {}
    try:
        out[topic_urn(settings.kafka_bootstrap, spec.source_topic(settings))] = "topic"
    except ValueError:
        pass
    table = _relational_source(spec)
    if table:
        out[table] = "table"
    return out


def generated_rules(
    settings, scope: str, reads: dict[str, str], lean: bool = True
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(rules, lookups): a lean runner checks code sets against their compacted topics."""
    standards, maps = standards_store(settings), mapping_store(settings)
    fields_of: dict[str, set[str]] = {}
    for urn, kind in reads.items():
        for m in maps.list(scope, urn):
            name = m["field"] if kind == "topic" else field_names([m["field"]])[m["field"]]
            fields_of.setdefault(m["element"], set()).add(name)
    rules, lookups = [], {}
    for code, fields in sorted(fields_of.items()):
        element = standards.published(scope, "element", code)
        if element is None:  # draft, in review or retired: no rules
            continue
        code_set = standards.published(scope, "code_set", element["code_set"]) if element.get("code_set") else None
        table = code_set_lookup(code_set["code"]) if code_set and lean else None
        if table:
            lookups[table] = code_set_topic(scope, code_set["code"])
        rules += element_rules(element, sorted(fields), code_set, lookup_table=table)
    return rules, lookups


def _update(store, settings, scope: str, head: dict, author: str, reason: str) -> dict[str, Any] | None:
    for _ in range(3):  # a concurrent save moves the version on: read again and retry
        current = store.document(head["name"])
        document = current["document"]
        spec = PipelineSpec.model_validate(document)
        rules, lookups = generated_rules(settings, scope, datasets_read(spec, settings), spec.runner.kind == "lean")
        merged = merge_rules(document.get("rules") or [], rules)
        runner = dict(document.get("runner") or {})
        merged_lookups = merge_lookups(runner.get("lookups") or {}, lookups)
        if merged == (document.get("rules") or []) and merged_lookups == (runner.get("lookups") or {}):
            return None
        if merged_lookups:
            runner["lookups"] = merged_lookups
        else:
            runner.pop("lookups", None)
        new = {**document, "rules": merged, **({"runner": runner} if runner else {})}
        try:
            version = store.save(head["name"], new, current["version"], author, f"data standards: {reason}")
        except Stale:
            continue
        return {"pipeline": head["name"], "version": version}
    return {"pipeline": head["name"], "error": "the pipeline kept changing; try again"}


def after_change(request: Request, scope: str, principal, reason: str) -> list[dict[str, Any]]:
    settings = request.app.state.settings
    store = pipeline_store_for(settings)
    tenant = scope or None
    out = []
    for head in store.list({tenant} if tenant else None):
        if head["tenant"] != tenant:
            continue
        try:
            done = _update(store, settings, scope, head, principal.name, reason)
        except Exception as exc:  # one broken document must not stop the others; it is named
            log.warning("standards: pipeline %s not updated: %s", head["name"], exc)
            done = {"pipeline": head["name"], "error": str(exc)[:300]}
        if done:
            out.append(done)
    if out and hasattr(request.state, "audit_detail"):
        request.state.audit_detail["pipelines"] = out[:100]
    return out


def value_checks(settings, principal, dataset_urn: str, elements: list[str]) -> list[dict[str, Any]]:
    """Per pipeline the caller sees that reads the dataset: how its rows fared against the mapped
    elements' generated rules (the runner's counters)."""
    if not elements:
        return []
    store = pipeline_store_for(settings)
    out = []
    for head in store.list(principal.visible_tenants()):
        try:
            spec = PipelineSpec.model_validate(store.document(head["name"])["document"])
        except (ValueError, TypeError):
            continue
        if dataset_urn not in datasets_read(spec, settings):
            continue
        runner = StageCounters(settings.resolved_control_db_url, head["name"]).read().get("runner", {})
        out += [{"pipeline": head["name"], **v} for v in value_conformance(runner, elements)]
    return out
