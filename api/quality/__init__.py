"""Wiring of quality management into the API (issue 16): which quarantine topic a pipeline has, as
the caller may see it, and how a quarantined row is shown to a caller without `data:view`.

    quarantine_topic_of(request, principal, pipeline) -> topic      # 404 for unknown / another tenant's
    masked(event) -> the event with every value of `before` / `after` replaced by "****"
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from api.audit.affected import note_affected_tenant
from api.pipelines.store import pipeline_store_for
from api.scoping import sees
from connectors.pipeline import PipelineSpec
from schemas.naming import quarantine_topic

MASK = "****"


def quarantine_topic_of(request: Request, principal, pipeline: str) -> str:
    settings = request.app.state.settings
    store = pipeline_store_for(settings)
    head = store.head(pipeline)
    if head is None or not sees(principal, head["tenant"]) or not principal.may_access("pipeline", pipeline):
        if head is not None and not sees(principal, head["tenant"]):
            note_affected_tenant(request, head["tenant"])
        raise HTTPException(404, f"no pipeline {pipeline!r} / 没有流水线 {pipeline!r}")
    spec = PipelineSpec.model_validate(store.document(pipeline)["document"])
    try:
        return quarantine_topic(spec.source_topic(settings))
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
