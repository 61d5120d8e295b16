"""The component catalogue: every source, transform, rule kind and sink, with the JSON Schema of
its settings, so a console can render forms and a pipeline author can see what exists."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.security import require

router = APIRouter(tags=["components"])


@lru_cache(maxsize=1)
def catalogue() -> dict:
    """Derived from the plugin registry (sources, sinks: every plugin a pipeline document may name)
    and the transform and rule engines; plugins that cannot load are listed with the reason."""
    # Imported here: the transform and rule engines pull in polars, which slows every API start.
    from connectors import plugins
    from quality_stream import rule_kinds
    from streams.transforms import transform_kinds

    def entries(kinds: dict[str, dict]) -> list[dict]:
        return [{"kind": k, "schema": s, "in_pipeline_documents": True} for k, s in sorted(kinds.items())]

    loaded = plugins.available()
    sources = {p.name: p.config_model.model_json_schema() for p in loaded if p.kind == "source"}
    sinks = {p.name: p.config_model.model_json_schema() for p in loaded if p.kind == "sink"}
    runners = {  # a pipeline names its runner by the processor's short name (runner.lean -> lean)
        p.name.split(".", 1)[1]: p.config_model.model_json_schema()
        for p in loaded
        if p.kind == "processor" and p.name.startswith("runner.")
    }
    return {
        "sources": entries(sources),
        "runners": entries(runners),
        "transforms": entries(transform_kinds()),
        "rules": entries(rule_kinds()),
        "sinks": entries(sinks),
        "unavailable": [{"kind": k, "reason": why} for k, why in sorted(plugins.unavailable().items())],
    }


@router.get(
    "/components",
    summary="Sources, transforms, rule kinds and sinks with settings schemas",
    dependencies=[Depends(require("pipeline:view"))],
)
async def components() -> dict:
    return await run_in_threadpool(catalogue)
