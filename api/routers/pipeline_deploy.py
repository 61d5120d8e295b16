"""Deploy / undeploy a pipeline and watch its stages (issue 7).

`POST /pipelines/{name}/deploy` turns the current version into three connectors (source, runner,
sink; see api.pipelines.deploy) that the workers run; `POST /pipelines/{name}/undeploy` deletes
them; `GET /pipelines/{name}/deployment` shows the deployed version and, per stage, the connector
and task states as `GET /connectors/{name}/status` reports them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from api.audit import audit_as
from api.connector_access import connector_store, live_status
from api.pipelines import deploy as deployment
from api.pipelines.access import ensure_pipeline_visible, pipeline_visible
from api.pipelines.sharing import raw_topic_owner
from api.pipelines.store import pipeline_store_for
from api.security import Principal, require
from connectors.decommission import DecommissionFailed, retire
from connectors.leases import Leases
from connectors.secrets import scrub
from streams.flink.task import job_state as flink_job_state

router = APIRouter(tags=["pipelines"])


def _current(request: Request, name: str) -> dict[str, Any]:
    current = pipeline_store_for(request.app.state.settings).document(name)
    if current is None:
        raise HTTPException(404, f"no pipeline {name!r}")
    return current


def _tenant(request: Request, name: str) -> str | None:
    """The pipeline's tenant (also of a deleted one): its deployed connectors belong to it."""
    head = pipeline_store_for(request.app.state.settings).head(name, include_deleted=True)
    return head["tenant"] if head else None


@router.post(
    "/pipelines/{name}/deploy", summary="Start the pipeline's current version: source, runner and sink connectors"
)
def deploy_pipeline(name: str, request: Request, principal: Principal = Depends(require("pipeline:deploy"))) -> Any:
    audit_as(request, "pipeline.deploy", name=name)
    ensure_pipeline_visible(request, principal, name)
    current = _current(request, name)
    shared = raw_topic_owner(connector_store(request), name, current["document"], request.app.state.settings)
    if shared:  # two pipelines on one raw topic: one's re-snapshot would reach the other (issue 14)
        seen = principal.all_tenants or principal.sees_tenant(shared["tenant"])
        kind = "pipeline" if "pipeline" in shared else "connector"
        other = f"{kind} {shared[kind]!r}" if seen else f"a {kind} of another tenant"
        raise HTTPException(
            409,
            f"{other} already {'reads' if kind == 'pipeline' else 'writes'} raw topic {shared['topic']} (the same "
            "source table); a raw topic has one source and one pipeline: read the table in that "
            f"{kind}, or give this pipeline its own source system name",
        )
    try:
        result = deployment.deploy(
            connector_store(request),
            name,
            current,
            request.app.state.settings,
            sees=lambda tenant: principal.all_tenants or principal.sees_tenant(tenant),
        )
    except deployment.DeployInvalid as exc:
        config = current["document"].get("source", {}).get("config", {})
        errors = [{"field": e["field"], "message": scrub(e["message"], config)} for e in exc.errors]
        return JSONResponse(
            status_code=400,
            content={
                "error_code": 400,
                "errors": errors,
                "message": "pipeline cannot be deployed: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            },
        )
    request.state.audit_detail["version"] = result["version"]
    return result


@router.post("/pipelines/{name}/undeploy", summary="Stop the pipeline: delete its connectors (offsets are kept)")
def undeploy_pipeline(name: str, request: Request, principal: Principal = Depends(require("pipeline:deploy"))) -> dict:
    audit_as(request, "pipeline.undeploy", name=name)
    tenant = _tenant(request, name)
    if not pipeline_visible(request, principal, name):
        # a pipeline deleted while deployed (before that was refused) can still be undeployed by its tenant
        head = pipeline_store_for(request.app.state.settings).head(name, include_deleted=True)
        if not (head and principal.sees_tenant(tenant) and principal.may_access("pipeline", name)):
            raise HTTPException(404, f"no pipeline {name!r}")
    store, settings = connector_store(request), request.app.state.settings
    leases = Leases.for_settings(settings)
    try:  # a log-CDC source drops its replication slot before it goes (no slot is orphaned)
        removed = deployment.undeploy(
            store, name, tenant, retire=lambda record: retire(store, leases, settings, record)
        )
    except DecommissionFailed as exc:
        raise HTTPException(409, f"pipeline {name!r} not undeployed: {exc}") from None
    return {"pipeline": name, "removed": [deployment.connector_name(name, s) for s in removed]}


@router.get("/pipelines/{name}/deployment", summary="Deployed version and the state of each stage")
def get_deployment(name: str, request: Request, principal: Principal = Depends(require("pipeline:view"))) -> dict:
    ensure_pipeline_visible(request, principal, name)
    store = connector_store(request)
    head = pipeline_store_for(request.app.state.settings).head(name)
    tenant = _tenant(request, name)
    stages: dict[str, Any] = {}
    for stage in deployment.STAGES:
        cname = deployment.connector_name(name, stage)
        record = store.get(cname)
        if record is None or record.tenant != tenant:  # another tenant's connector of that name is not ours
            stages[stage] = {"connector": cname, "state": "NOT_DEPLOYED", "tasks": []}
        else:
            status = live_status(request, record)
            stages[stage] = {
                "connector": cname,
                "state": status["connector"]["state"],
                "worker_id": status["connector"]["worker_id"],
                "tasks": status["tasks"],
            }
            if record.plugin == "runner.flink":  # the job as its Flink cluster reports it
                stages[stage]["flink"] = flink_job_state(request.app.state.settings, name)
    if head is None and all(s["state"] == "NOT_DEPLOYED" for s in stages.values()):
        raise HTTPException(404, f"no pipeline {name!r}")  # a deleted pipeline still deployed stays visible
    version = deployment.deployed_version(store, name, tenant)
    latest = head["version"] if head else None
    return {
        "pipeline": name,
        "deployed": any(s["state"] != "NOT_DEPLOYED" for s in stages.values()),
        "version": version,
        "latest_version": latest,
        "up_to_date": version is not None and version == latest,
        "stages": stages,
    }
