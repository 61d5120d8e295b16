"""Wiring of quality management into the API (issue 16): which quarantine topic a pipeline has, as
the caller may see it, and how a quarantined row is shown to a caller without `data:view`.

    quarantine_topic_of(request, principal, pipeline) -> topic      # 404 for unknown / another tenant's
    runner_config_of(request, principal, pipeline) -> the runner connector document it deploys
    masked(event) -> the event with every value of `before` / `after` replaced by "****"
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from api.audit.affected import note_affected_tenant
from api.pipelines.store import pipeline_store_for
from api.scoping import sees
from connectors.pipeline import PipelineSpec, stage_documents
from schemas.naming import quarantine_topic

MASK = "****"


def _visible_spec(request: Request, principal, pipeline: str) -> PipelineSpec:
    store = pipeline_store_for(request.app.state.settings)
    head = store.head(pipeline)
    if head is None or not sees(principal, head["tenant"]) or not principal.may_access("pipeline", pipeline):
        if head is not None and not sees(principal, head["tenant"]):
            note_affected_tenant(request, head["tenant"])
        raise HTTPException(404, f"no pipeline {pipeline!r} / 没有流水线 {pipeline!r}")
    return PipelineSpec.model_validate(store.document(pipeline)["document"])


def quarantine_topic_of(request: Request, principal, pipeline: str) -> str:
    spec = _visible_spec(request, principal, pipeline)
    try:
        return quarantine_topic(spec.source_topic(request.app.state.settings))
    except ValueError as exc:
        raise HTTPException(422, f"pipeline: {exc}") from None


def runner_config_of(request: Request, principal, pipeline: str) -> dict[str, Any]:
    """The runner connector document of the pipeline's current version (its transforms and lookups)."""
    spec = _visible_spec(request, principal, pipeline)
    try:
        return stage_documents(spec, request.app.state.settings)["runner"]
    except ValueError as exc:
        raise HTTPException(422, f"pipeline: {exc}") from None


def masked(event: Any) -> Any:
    if not isinstance(event, dict):
        return event
    out = dict(event)
    for image in ("before", "after"):
        if isinstance(out.get(image), dict):
            out[image] = {k: (None if v is None else MASK) for k, v in out[image].items()}
    return out
