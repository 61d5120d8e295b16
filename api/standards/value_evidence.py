"""Wiring of value-based mapping suggestions (issue 16): a sample of a catalogue ClickHouse table's
values (quality_stream/profiling), the code sets the candidate elements name, and the scoring
(quality_stream/governance/value_fit).

    suggest_from_values(settings, scope, dataset_urn, fields, elements, n, limit, min_score)
        -> {field: [{"element", "score", "evidence"}]}; HTTPException 422 for a dataset that is not a
           ClickHouse table, 503 when ClickHouse cannot be reached
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from api.quality import reporting
from api.standards import standards_store
from quality_stream.governance.store import NotFound
from quality_stream.governance.value_fit import suggest_by_values
from quality_stream.profiling.profile import ProfileError, clickhouse_table_of, sample_values


def _code_sets(settings, scope: str, elements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    store, out = standards_store(settings), {}
    for code in {e["code_set"] for e in elements if e.get("code_set")}:
        try:
            found = store.published(scope, "code_set", code) or store.get(scope, "code_set", code)
        except NotFound:
            continue  # the element names a code set not (yet) defined: no membership evidence
        out[code] = {"name": found["name"], "codes": {i["code"] for i in found["items"]}}
    return out


def suggest_from_values(
    settings,
    scope: str,
    dataset_urn: str,
    fields: list[str],
    elements: list[dict[str, Any]],
    n: int,
    limit: int,
    min_score: float,
) -> dict[str, list[dict[str, Any]]]:
    table = clickhouse_table_of(dataset_urn)
    if table is None:
        raise HTTPException(
            422,
            {
                "message": "values: value evidence is sampled from ClickHouse tables (hl:dataset:clickhouse://...)",
                "message_zh": "values：只能从 ClickHouse 表抽样取值作为依据",
                "field": "values",
            },
        )
    try:
        client = reporting.clickhouse(settings)
    except reporting.MetricsUnavailable as exc:
        raise HTTPException(503, {"message": str(exc), "message_zh": "ClickHouse 暂时无法连接"}) from None
    try:
        samples = sample_values(client, table, fields, n)
    except ProfileError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "dataset"}) from None
    finally:
        client.disconnect()
    return suggest_by_values(samples, elements, _code_sets(settings, scope, elements), limit, min_score)
