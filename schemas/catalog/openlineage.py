"""OpenLineage (spec 2-0-2) RunEvents of Huiliu's jobs, built with `openlineage-python` from what the
catalogue knows of a job: the datasets its edges read and write, their fields (schema facet), the
field edges (columnLineage with DIRECT/INDIRECT types, subtypes and masking), the quality rules on
them (dataQualityAssertions, one per rule, with the runner's counts) and the system (dataSource).

    view = job_view(engine, scope, "hl:job:huiliu/civil-capture")     # None: no edges known yet
    event = run_event(view, "START", run_id, "STREAMING", counts={...})
    as_dict(event)                                                     # the JSON the transports send

Dataset names follow the OpenLineage naming spec: a URN `hl:dataset:<namespace>/<name>` is the
dataset `{namespace, name}` (kafka://host:port + topic, postgres://host:port + db.schema.table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from schemas.catalog.tables import catalog_datasets, catalog_edges, catalog_versions
from schemas.catalog.urns import JOB_NAMESPACE, parse_urn

PRODUCER = "https://github.com/huiliu/huiliu"
INTEGRATION = "HUILIU"


@dataclass
class DatasetView:
    urn: str
    fields: list[dict[str, Any]] = field(default_factory=list)  # name, type, comment, position
    system: str | None = None
    owner: str | None = None


@dataclass
class JobView:
    job: str  # the job's URN
    kind: str  # source | runner | sink | import (jobType)
    inputs: list[DatasetView]
    outputs: list[DatasetView]
    # output urn -> output field -> [(input urn, input field, transformation)]
    columns: dict[str, dict[str, list[tuple[str, str, dict]]]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)  # id, column (runner rules)
    owners: list[str] = field(default_factory=list)


def split(urn: str) -> tuple[str, str]:
    """(OpenLineage namespace, name) of a dataset URN."""
    u = parse_urn(urn)
    return u.namespace, u.name


def job_view(engine: Engine, scope: str, job: str, kind: str = "job", rules: list | None = None) -> JobView | None:
    with engine.connect() as conn:
        edges = conn.execute(
            select(catalog_edges).where(catalog_edges.c.scope == scope, catalog_edges.c.job_urn == job)
        ).all()
        if not edges:
            return None
        ins = list(dict.fromkeys(e.source_urn for e in edges))
        outs = list(dict.fromkeys(e.target_urn for e in edges))
        datasets = _datasets(conn, scope, set(ins) | set(outs))
    columns: dict[str, dict[str, list]] = {}
    found_rules: dict[str, dict] = {r["id"]: r for r in rules or [] if isinstance(r, dict) and r.get("id")}
    for e in edges:
        t = json.loads(e.transformation) if e.transformation else {}
        for rid in t.get("rules") or []:
            found_rules.setdefault(rid, {"id": rid})
        if e.source_field is None:
            continue
        columns.setdefault(e.target_urn, {}).setdefault(e.target_field, []).append(
            (e.source_urn, e.source_field, {k: v for k, v in t.items() if k in ("type", "subtype", "masking")})
        )
    owners = sorted({d.owner for d in datasets.values() if d.owner})
    return JobView(
        job=job,
        kind=kind,
        inputs=[datasets.get(u) or DatasetView(u) for u in ins],
        outputs=[datasets.get(u) or DatasetView(u) for u in outs],
        columns=columns,
        rules=list(found_rules.values()),
        owners=owners,
    )


def _datasets(conn, scope: str, urns: set[str]) -> dict[str, DatasetView]:
    rows = conn.execute(
        select(
            catalog_datasets.c.urn,
            catalog_datasets.c.system_urn,
            catalog_datasets.c.business,
            catalog_versions.c.shape,
        )
        .join(
            catalog_versions,
            (catalog_versions.c.dataset_id == catalog_datasets.c.id)
            & (catalog_versions.c.version == catalog_datasets.c.version),
        )
        .where(catalog_datasets.c.scope == scope, catalog_datasets.c.urn.in_(sorted(urns)))
    ).all()
    return {
        r.urn: DatasetView(r.urn, json.loads(r.shape)["fields"], r.system_urn, json.loads(r.business).get("owner"))
        for r in rows
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _schema(ds: DatasetView):
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    return SchemaDatasetFacet(
        fields=[
            SchemaDatasetFacetFields(
                name=f["name"], type=f.get("type"), description=f.get("comment"), ordinal_position=f.get("position")
            )
            for f in ds.fields
        ]
    )


def _source(ds: DatasetView):
    from openlineage.client.generated.datasource_dataset import DatasourceDatasetFacet

    namespace, _ = split(ds.urn)
    return DatasourceDatasetFacet(name=namespace, uri=namespace)


def _column_lineage(columns: dict[str, list[tuple[str, str, dict]]]):
    from openlineage.client.generated.column_lineage_dataset import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        Transformation,
    )

    out = {}
    for target, sources in columns.items():
        inputs = []
        for urn, src, t in sources:
            namespace, name = split(urn)
            kind = t.get("type") or "DIRECT"
            inputs.append(
                InputField(
                    namespace=namespace,
                    name=name,
                    field=src,
                    transformations=[
                        Transformation(
                            type=kind,
                            subtype=t.get("subtype") or ("IDENTITY" if kind == "DIRECT" else "FILTER"),
                            masking=bool(t.get("masking")),
                        )
                    ],
                )
            )
        out[target] = Fields(inputFields=inputs)
    return ColumnLineageDatasetFacet(fields=out)


def _assertions(rules: list[dict], counts: dict[str, int]):
    """One assertion per rule; success when the rule sent no row to quarantine (counts from the
    runner's stage counters: `quarantined.<rule id>`)."""
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )

    out = []
    for rule in rules:
        failed = int(counts.get(f"quarantined.{rule['id']}", 0))
        extra = {"column": rule["column"]} if isinstance(rule.get("column"), str) else {}
        out.append(
            Assertion(
                assertion=str(rule.get("kind") or rule["id"]),
                name=str(rule["id"]),
                success=failed == 0,
                actual=str(failed),
                expected="0",
                params={"failed_rows": failed, "rows_read": int(counts.get("read", 0))},
                **extra,
            )
        )
    return DataQualityAssertionsDatasetFacet(assertions=out)


def run_event(
    view: JobView,
    event_type: str,
    run_id: str,
    processing: str,
    counts: dict[str, int] | None = None,
    error: str | None = None,
    job_namespace: str = JOB_NAMESPACE,
):
    """A RunEvent of `view` (processing STREAMING or BATCH; event START, RUNNING, COMPLETE, FAIL, ABORT)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.generated.data_quality_metrics_input_dataset import DataQualityMetricsInputDatasetFacet
    from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
    from openlineage.client.generated.job_type_job import JobTypeJobFacet
    from openlineage.client.generated.ownership_job import Owner, OwnershipJobFacet

    counts = counts or {}
    inputs = []
    for ds in view.inputs:
        namespace, name = split(ds.urn)
        input_facets: dict[str, Any] = {}
        if view.rules:
            input_facets["dataQualityAssertions"] = _assertions(view.rules, counts)
        if "read" in counts:
            input_facets["dataQualityMetrics"] = DataQualityMetricsInputDatasetFacet(
                columnMetrics={}, rowCount=int(counts["read"])
            )
        inputs.append(
            InputDataset(
                namespace=namespace,
                name=name,
                facets={"schema": _schema(ds), "dataSource": _source(ds)},
                inputFacets=input_facets,
            )
        )
    outputs = []
    for ds in view.outputs:
        namespace, name = split(ds.urn)
        facets: dict[str, Any] = {"schema": _schema(ds), "dataSource": _source(ds)}
        if view.columns.get(ds.urn):
            facets["columnLineage"] = _column_lineage(view.columns[ds.urn])
        outputs.append(OutputDataset(namespace=namespace, name=name, facets=facets))
    job_facets: dict[str, Any] = {
        "jobType": JobTypeJobFacet(processingType=processing, integration=INTEGRATION, jobType=view.kind.upper())
    }
    if view.owners:
        job_facets["ownership"] = OwnershipJobFacet(owners=[Owner(name=o) for o in view.owners])
    run_facets: dict[str, Any] = {}
    if error:
        run_facets["errorMessage"] = ErrorMessageRunFacet(message=error[:2000], programmingLanguage="python")
    return RunEvent(
        eventType=RunState[event_type],
        eventTime=_now(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(namespace=job_namespace, name=parse_urn(view.job).name, facets=job_facets),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )


def as_dict(event) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return json.loads(Serde.to_json(event))
