"""Lineage others report enters the graph (issue 15): `POST /lineage/edges` (an external ETL's edges,
replaced per job) and `POST /api/v1/lineage` (OpenLineage RunEvents, sent here by openlineage-python's
own HTTP transport as to Marquez); datasets not catalogued yet are added; each tenant keeps its own;
bad input answers 422 naming the item."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.api_process import api_client  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
ERP = f"hl:dataset:mysql://erp{RUN}:3306/erp.orders"
DW = f"hl:dataset:postgres://dw{RUN}:5432/dw.public.orders"
PASSWORD = "Quartz-Lumen-7741-Tarn"


def _lineage(client, urn: str, **params) -> dict:
    r = client.get(f"/lineage/{quote(urn, safe='')}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_reported_edges_join_the_graph_and_replace_the_jobs_earlier_ones(api):
    body = {
        "job": f"erp-nightly-{RUN}",
        "edges": [
            {"source": ERP, "target": DW},
            {"source": ERP, "target": DW, "source_field": "order_no", "target_field": "order_id"},
            {
                "source": ERP,
                "target": DW,
                "source_field": "buyer_id_card",
                "target_field": "buyer_hash",
                "transformation": {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True},
            },
        ],
    }
    r = api.post("/lineage/edges", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["edges"] == 3 and r.json()["new_datasets"] == sorted([ERP, DW])
    assert r.json()["job"] == f"hl:job:huiliu/api/erp-nightly-{RUN}"
    dw = api.get(f"/metadata/datasets/{quote(DW, safe='')}").json()
    assert dw["kind"] == "external" and [f["name"] for f in dw["fields"]] == ["order_id", "buyer_hash"]
    graph = _lineage(api, DW, direction="upstream", level="field", field="buyer_hash")
    [edge] = graph["edges"]
    assert (edge["source"], edge["target"]) == (f"{ERP}#buyer_id_card", f"{DW}#buyer_hash")
    assert edge["transformation"] == {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}
    impact = api.get(f"/impact/{quote(ERP, safe='')}", params={"field": "order_no"}).json()
    assert impact["fields"] == [f"{DW}#order_id"]
    # the job reports again: its edges are replaced, not added to
    again = {
        "job": body["job"],
        "edges": [{"source": ERP, "target": DW, "source_field": "order_no", "target_field": "order_id"}],
    }
    assert api.post("/lineage/edges", json=again).json()["new_datasets"] == []
    field_edges = _lineage(api, ERP, direction="downstream", level="field")["edges"]
    assert [(e["source"], e["target"]) for e in field_edges] == [(f"{ERP}#order_no", f"{DW}#order_id")]
    assert _lineage(api, ERP, direction="downstream")["edges"] == []  # the dataset-level edge went with it


@pytest.mark.parametrize(
    "edge, says",
    [
        ({"source": "hl:dataset:gopher://x/y", "target": DW}, "edges[0].source"),
        ({"source": ERP, "target": "hl:job:huiliu/x"}, "edges[0].target: a dataset URN"),
        ({"source": ERP, "target": DW, "source_field": "order_no"}, "give both"),
        ({"source": ERP, "target": DW, "source_field": "a", "target_field": "no_such_column"}, "no field"),
        ({"source": ERP, "target": DW, "colour": "red"}, "colour"),
        ({"source": ERP, "target": DW, "transformation": {"type": "SIDEWAYS"}}, "type"),
    ],
)
def test_bad_edges_answer_422_naming_the_item(api, edge, says):
    api.post(
        "/lineage/edges",
        json={
            "job": f"seed-{RUN}",
            "edges": [{"source": ERP, "target": DW, "source_field": "a", "target_field": "order_id"}],
        },
    )
    r = api.post("/lineage/edges", json={"job": f"bad-{RUN}", "edges": [edge]})
    assert r.status_code == 422 and says in r.text, r.text
    assert api.post("/lineage/edges", json={"job": "", "edges": []}).status_code == 422


def test_openlineage_events_from_the_python_client_join_the_graph(api):
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.generated.column_lineage_dataset import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        Transformation,
    )
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    client = OpenLineageClient(
        config={
            "transport": {
                "type": "http",
                "url": str(api.base_url),
                "endpoint": "api/v1/lineage",
                "custom_headers": {"X-API-Key": api.headers["X-API-Key"]},
            }
        }
    )
    src_ns, dst_ns = f"mysql://hr{RUN}:3306", f"postgres://dw{RUN}:5432"
    lineage = ColumnLineageDatasetFacet(
        fields={
            "staff_no": Fields(
                inputFields=[
                    InputField(src_ns, "hr.staff", "emp_id", [Transformation(type="DIRECT", subtype="IDENTITY")])
                ]
            ),
            "headcount": Fields(
                inputFields=[
                    InputField(src_ns, "hr.staff", "dept", [Transformation(type="INDIRECT", subtype="GROUP_BY")])
                ]
            ),
        }
    )
    schema = SchemaDatasetFacet(
        fields=[SchemaDatasetFacetFields("emp_id", "int"), SchemaDatasetFacetFields("dept", "varchar")]
    )
    job = Job(namespace="airflow", name=f"hr_to_dw_{RUN}")
    run = Run(runId=str(uuid.uuid4()))
    client.emit(RunEvent(eventType=RunState.START, eventTime="2026-12-06T10:00:00Z", run=run, job=job, producer="test"))
    client.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime="2026-12-06T10:05:00Z",
            run=run,
            job=job,
            producer="test",
            inputs=[InputDataset(src_ns, "hr.staff", facets={"schema": schema})],
            outputs=[OutputDataset(dst_ns, "dw.public.staff_stats", facets={"columnLineage": lineage})],
        )
    )
    target = f"hl:dataset:{dst_ns}/dw.public.staff_stats"
    graph = _lineage(api, target, direction="upstream", level="field")
    got = {
        (e["source"].split("#")[1], e["target"].split("#")[1], e["transformation"]["subtype"]) for e in graph["edges"]
    }
    assert got == {("emp_id", "staff_no", "IDENTITY"), ("dept", "headcount", "GROUP_BY")}
    assert [e["job"] for e in graph["edges"]][0] == f"hl:job:huiliu/airflow/hr_to_dw_{RUN}"
    source = api.get(f"/metadata/datasets/{quote(f'hl:dataset:{src_ns}/hr.staff', safe='')}").json()
    assert [f["name"] for f in source["fields"]] == ["emp_id", "dept"]  # from the schema facet


@pytest.mark.parametrize(
    "event, says",
    [
        ([], "dictionary"),
        ({"eventType": "COMPLETE"}, "job"),
        ({"job": {"namespace": "a", "name": "b"}, "inputs": "x"}, "inputs"),
        (
            {"job": {"namespace": "a", "name": "b"}, "outputs": [{"namespace": "bigquery", "name": "p.d.t"}]},
            "outputs[0]",
        ),
        ({"job": {"namespace": "a", "name": "b"}, "outputs": [{"name": "t"}]}, "outputs[0]"),
    ],
)
def test_bad_openlineage_events_answer_422(api, event, says):
    r = api.post("/api/v1/lineage", json=event)
    assert r.status_code == 422 and says in r.text, r.text


def test_a_tenants_reported_lineage_is_its_own(api):
    headers = {}
    for tenant in (f"lra{RUN}", f"lrb{RUN}"):
        user = f"{tenant}-dev"
        r = api.post("/users", json={"username": user, "password": PASSWORD, "tenant": tenant, "roles": ["developer"]})
        assert r.status_code == 201, r.text
        token = api.post("/auth/token", data={"username": user, "password": PASSWORD}).json()["access_token"]
        headers[tenant] = {"Authorization": f"Bearer {token}"}
    a = httpx.Client(base_url=str(api.base_url), headers=headers[f"lra{RUN}"], timeout=30)
    b = httpx.Client(base_url=str(api.base_url), headers=headers[f"lrb{RUN}"], timeout=30)
    src, dst = f"hl:dataset:kafka://t{RUN}:9092/in", f"hl:dataset:kafka://t{RUN}:9092/out"
    assert a.post("/lineage/edges", json={"job": "mine", "edges": [{"source": src, "target": dst}]}).status_code == 200
    assert [n["dataset"] for n in _lineage(a, src, direction="downstream")["nodes"]] == [src, dst]
    assert b.get(f"/lineage/{quote(src, safe='')}").status_code == 404
    viewer = api.post(
        "/users", json={"username": f"lrv{RUN}", "password": PASSWORD, "tenant": f"lra{RUN}", "roles": ["viewer"]}
    )
    assert viewer.status_code == 201
    token = api.post("/auth/token", data={"username": f"lrv{RUN}", "password": PASSWORD}).json()["access_token"]
    r = httpx.post(
        f"{api.base_url}/lineage/edges",
        json={"job": "x", "edges": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403  # metadata:manage
    a.close()
    b.close()


FLINK_JOB = f"""
kafka: {{bootstrap: "fk{RUN}:9092", group_id: huiliu-flink}}
schema_registry_url: http://registry:8081
inputs:
  - topic: huiliu.shop.public.orders
    dedupe: {{key: [after.id, source.sequence], window_seconds: 60}}
    rules: [{{id: amount_required, kind: required, fields: [amount]}}]
  - topic: huiliu.shop.public.customers
metrics: {{topic: huiliu.metrics, window_seconds: 60}}
joins:
  - {{name: orders_customers, left: {{topic: huiliu.shop.public.orders, key: after.customer_id}},
     right: {{topic: huiliu.shop.public.customers, key: after.id}}, output: huiliu.orders_customers}}
"""


def test_a_flink_jobs_config_gives_its_dataset_and_column_lineage(api):
    def urn(topic: str) -> str:
        return f"hl:dataset:kafka://fk{RUN}:9092/{topic}"

    orders, customers = urn("huiliu.shop.public.orders"), urn("huiliu.shop.public.customers")
    # the orders topic is catalogued with its fields (its capture reports them); customers is not
    capture = [{"source": f"hl:dataset:postgres://shop{RUN}:5432/shop.public.orders", "target": orders}] + [
        {
            "source": f"hl:dataset:postgres://shop{RUN}:5432/shop.public.orders",
            "target": orders,
            "source_field": f,
            "target_field": f,
        }
        for f in ("id", "customer_id", "amount")
    ]
    assert api.post("/lineage/edges", json={"job": f"capture-{RUN}", "edges": capture}).status_code == 200
    r = api.post("/lineage/flink-jobs", json={"name": f"shop-{RUN}", "config": FLINK_JOB})
    assert r.status_code == 200, r.text
    assert r.json()["job"] == f"hl:job:huiliu/flink/shop-{RUN}"
    down = _lineage(api, orders, direction="downstream", depth=1)
    assert {n["dataset"] for n in down["nodes"]} == {
        orders,
        urn("huiliu.shop.public.orders.dedup"),
        urn("huiliu.metrics"),
        urn("huiliu.orders_customers"),
    }
    how = {e["target"]: e["transformation"] for e in down["edges"]}
    assert how[urn("huiliu.shop.public.orders.dedup")]["key"] == ["after.id", "source.sequence"]
    assert how[urn("huiliu.metrics")] == {"kind": "metrics", "rules": ["amount_required"], "window_seconds": 60}
    # column level: counts aggregate the column the rule reads; the dedupe and the join carry columns
    invalid = _lineage(api, urn("huiliu.metrics"), direction="upstream", level="field", field="invalid", depth=1)
    [edge] = invalid["edges"]
    assert edge["source"] == f"{orders}#amount"
    assert edge["transformation"] == {
        "type": "DIRECT",
        "subtype": "AGGREGATION",
        "masking": False,
        "rules": ["amount_required"],
    }
    assert edge["job"] == f"hl:job:huiliu/flink/shop-{RUN}"
    dedup = _lineage(api, orders, direction="downstream", level="field", field="customer_id", depth=1)
    assert sorted(e["target"] for e in dedup["edges"]) == [
        f"{urn('huiliu.orders_customers')}#key",
        f"{urn('huiliu.orders_customers')}#left.customer_id",
        f"{urn('huiliu.shop.public.orders.dedup')}#customer_id",
    ]
    key = _lineage(api, urn("huiliu.orders_customers"), direction="upstream", level="field", field="key", depth=1)
    assert sorted(e["source"] for e in key["edges"]) == [f"{customers}#id", f"{orders}#customer_id"]
    # the field-level path from the source table through the Flink job, as for pipelines
    upstream = _lineage(api, urn("huiliu.orders_customers"), direction="upstream", level="field", field="left.amount")
    assert f"hl:dataset:postgres://shop{RUN}:5432/shop.public.orders#amount" in {n["id"] for n in upstream["nodes"]}
    # sent again without the join: its edges are replaced
    without = FLINK_JOB.split("joins:")[0]
    assert api.post("/lineage/flink-jobs", json={"name": f"shop-{RUN}", "config": without}).status_code == 200
    assert _lineage(api, urn("huiliu.orders_customers"), direction="upstream")["edges"] == []


@pytest.mark.parametrize(
    "config, says",
    [
        ("inputs: [", "config: not YAML"),
        ({"inputs": [{"topic": "a"}]}, "config.kafka"),
        ({"kafka": {"bootstrap": "k:9092"}, "inputs": []}, "config.inputs"),
        (
            {
                "kafka": {"bootstrap": "k:9092"},
                "inputs": [{"topic": "a", "rules": [{"kind": "nope"}]}],
                "metrics": {"topic": "m"},
            },
            "config.inputs[0].rules[0]",
        ),
        (
            {
                "kafka": {"bootstrap": "k:9092"},
                "inputs": [{"topic": "a"}],
                "joins": [
                    {
                        "left": {"topic": "a", "key": "after.id"},
                        "right": {"topic": "b", "key": "after.id"},
                        "output": "o",
                    }
                ],
            },
            "config.joins[0].right.topic: b is not one of the inputs",
        ),
    ],
)
def test_bad_flink_job_configs_answer_422_naming_the_path(api, config, says):
    r = api.post("/lineage/flink-jobs", json={"name": f"bad-{RUN}", "config": config})
    assert r.status_code == 422 and says in r.text, r.text
