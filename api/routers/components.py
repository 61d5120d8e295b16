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
    # Imported here: the transform and rule engines pull in polars, which slows every API start.
    from connectors.relational.timestamp_mode import TimestampSourceConfig
    from quality_stream import rule_kinds
    from sinks.clickhouse import ClickHouseSinkConfig
    from sinks.hbase import HBaseSinkSettings
    from sinks.hdfs import HdfsSinkSettings
    from streams.transforms import transform_kinds

    def entries(kinds: dict[str, dict], usable: set[str] | None = None) -> list[dict]:
        return [
            {"kind": k, "schema": s, "in_pipeline_documents": usable is None or k in usable}
            for k, s in sorted(kinds.items())
        ]

    # Set by the pipeline runner (deploy.pipeline): only these source and sink kinds can be
    # named in a pipeline document today; the others run as stand-alone connectors.
    source_schema = TimestampSourceConfig.model_json_schema()
    return {
        "sources": entries({"relational.timestamp": source_schema}),
        "transforms": entries(transform_kinds()),
        "rules": entries(rule_kinds()),
        "sinks": entries(
            {
                "clickhouse": ClickHouseSinkConfig.model_json_schema(),
                "hbase": HBaseSinkSettings.model_json_schema(),
                "hdfs": HdfsSinkSettings.model_json_schema(),
            },
            usable={"clickhouse"},
        ),
    }


@router.get(
    "/components",
    summary="Sources, transforms, rule kinds and sinks with settings schemas",
    dependencies=[Depends(require("pipeline:view"))],
)
async def components() -> dict:
    return await run_in_threadpool(catalogue)
