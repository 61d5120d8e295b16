"""Pipeline documents: CRUD, versions, diff, rollback, graph.

Every save is a new version. Saves name their base version (`If-Match: "<version>"` or
`?version=`); a stale base answers 409 with the current version, and nothing is overwritten.
A pipeline of a tenant the caller does not see answers 404, as if it did not exist.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.identity.policy import home_tenant
from api.pipelines import document as documents
from api.pipelines.diff import diff
from api.pipelines.graph import graph
from api.pipelines.sharing import connector_store_for, deployed_stages
from api.pipelines.store import Exists, NotFound, PipelineStore, Stale, pipeline_store_for
from api.security import Principal, require
from connectors.pipeline import PipelineSpec
from connectors.secrets import EndpointChanged, mask, unmask

router = APIRouter(tags=["pipelines"])


class PipelineOut(BaseModel):
    name: str
    tenant: str | None
    owner: str | None
    version: int
    updated_at: str
    updated_by: str
    document: dict


class VersionOut(BaseModel):
    version: int
    op: str
    message: str
    author: str
    at: str


class Rollback(BaseModel):
    version: int = Field(ge=1, le=2**31, description="the version whose content becomes the new version")
    message: str = Field("", max_length=2000)


def _store(request: Request) -> PipelineStore:
    return pipeline_store_for(request.app.state.settings)


def _head(store: PipelineStore, principal: Principal, name: str, request: Request | None = None) -> dict:
    head = store.head(name)
    if head is not None and request is not None:
        note_affected_tenant(request, head["tenant"])  # the owner sees the attempt in its audit log
    if head is None or not principal.sees_tenant(head["tenant"]) or not principal.may_access("pipeline", name):
        raise HTTPException(404, f"no pipeline {name!r}")
    return head


def _out(store: PipelineStore, head: dict, response: Response | None = None) -> dict:
    current = store.document(head["name"])
    if response is not None:
        response.headers["ETag"] = f'"{head["version"]}"'
    return {
        **{k: head[k] for k in ("name", "tenant", "owner", "version", "updated_at", "updated_by")},
        "document": mask(current["document"]),
    }


def _base_version(if_match: str | None, version: int | None) -> int:
    if version is not None:
        return version
    if if_match is None:
        raise HTTPException(428, 'say which version you edited: If-Match: "<version>" or ?version=<version>')
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', if_match)
    if not match:
        raise HTTPException(400, 'If-Match must be a version number, e.g. If-Match: "3"')
    return int(match.group(1))


def _checked(request: Request, spec: PipelineSpec, principal: Principal, old: dict | None) -> dict:
    """The document to store: tenant settled, masked secrets restored, fully validated."""
    doc = spec.model_dump(mode="json")
    tenant = doc["tenant"] if doc["tenant"] is not None else (old or {}).get("tenant", principal.tenant)
    doc["tenant"] = home_tenant(principal, tenant)
    doc["owner"] = doc["owner"] or (old or {}).get("owner") or principal.name
    if old is not None:
        try:  # a masked secret is kept only while the endpoint it authenticates to is unchanged
            doc = unmask(doc, old)
        except EndpointChanged as e:
            raise HTTPException(
                422, [{"type": "endpoint_changed", "loc": ["body", *e.field.split(".")], "msg": str(e)}]
            )
    try:
        documents.validate(doc, request.app.state.settings, principal)
    except documents.InvalidDocument as e:
        raise HTTPException(422, e.errors)
    return doc


def _stale(e: Stale, store: PipelineStore, name: str) -> HTTPException:
    head = store.head(name) or {}
    by = f", saved by {head['updated_by']} at {head['updated_at']}" if head.get("version") == e.current else ""
    return HTTPException(
        409,
        f"the pipeline changed since the version you edited: current version is "
        f"{e.current}{by}; reload, merge and save again",
        headers={"ETag": f'"{e.current}"'},
    )


@router.get("/pipelines", response_model=list[PipelineOut], summary="Pipelines the caller may see")
def list_pipelines(
    request: Request,
    response: Response,
    limit: int | None = Query(None, ge=1, le=500, description="page size; with it, X-Total-Count says how many match"),
    offset: int = Query(0, ge=0, description="rows skipped, by name"),
    q: str | None = Query(None, max_length=200, description="names containing this (case-insensitive)"),
    principal: Principal = Depends(require("pipeline:view")),
) -> list[dict]:
    """Without `limit`, `offset` or `q`: every pipeline, as always. With any of them: the page, by
    name, and the number of matching pipelines in `X-Total-Count`; documents are read for the page only."""
    store = _store(request)
    tenants = principal.visible_tenants()
    if limit is None and offset == 0 and q is None:
        return [_out(store, h) for h in store.list(tenants) if principal.may_access("pipeline", h["name"])]
    if principal.superuser or not any(g.startswith("pipeline:") for g in principal.grants):
        heads, total = store.page(tenants, limit or 500, offset, q)  # no pipeline grants: paged in the query
    else:  # grants are shell patterns: the heads (no documents) are filtered here
        matching = [h for h in store.list(tenants, q) if principal.may_access("pipeline", h["name"])]
        heads, total = matching[offset : offset + (limit or 500)], len(matching)
    response.headers["X-Total-Count"] = str(total)
    return [_out(store, h) for h in heads]


@router.post("/pipelines", response_model=PipelineOut, status_code=201, summary="Create a pipeline (version 1)")
def create_pipeline(
    spec: PipelineSpec,
    request: Request,
    response: Response,
    message: str = Query("", max_length=2000),
    principal: Principal = Depends(require("pipeline:create")),
) -> dict:
    audit_as(request, "pipeline.create", name=spec.name)
    if not principal.may_access("pipeline", spec.name):
        raise HTTPException(403, f"no grant for pipeline {spec.name!r}")
    doc = _checked(request, spec, principal, None)
    store = _store(request)
    try:
        version = store.create(spec.name, doc, principal.name, message)
    except Exists:
        raise HTTPException(409, f"pipeline name {spec.name!r} is taken")
    request.state.audit_detail["version"] = version
    return _out(store, store.head(spec.name), response)


@router.get("/pipelines/{name}", response_model=PipelineOut, summary="The current document; ETag = version")
def get_pipeline(
    name: str, request: Request, response: Response, principal: Principal = Depends(require("pipeline:view"))
) -> dict:
    store = _store(request)
    return _out(store, _head(store, principal, name, request), response)


@router.put(
    "/pipelines/{name}",
    response_model=PipelineOut,
    summary="Save a new version (optimistic locking)",
    responses={409: {"description": "stale base version"}, 428: {"description": "no base version given"}},
)
def save_pipeline(
    name: str,
    spec: PipelineSpec,
    request: Request,
    response: Response,
    if_match: str | None = Header(None, max_length=40),
    version: int | None = Query(None, ge=0, le=2**31),
    message: str = Query("", max_length=2000),
    principal: Principal = Depends(require("pipeline:edit")),
) -> dict:
    audit_as(request, "pipeline.update", name=name)
    store = _store(request)
    head = _head(store, principal, name, request)
    base = _base_version(if_match, version)
    if spec.name != name:
        raise HTTPException(422, "the document's name must match the pipeline's name (renaming is not supported)")
    doc = _checked(request, spec, principal, store.document(name)["document"])
    try:
        new = store.save(name, doc, base, principal.name, message)
    except Stale as e:
        raise _stale(e, store, name)
    except NotFound:
        raise HTTPException(404, f"no pipeline {name!r}")
    request.state.audit_detail.update(base_version=base, version=new, previous_tenant=head["tenant"])
    return _out(store, store.head(name), response)


@router.delete("/pipelines/{name}", status_code=204, summary="Delete (its versions stay, for audit and re-creation)")
def delete_pipeline(
    name: str,
    request: Request,
    if_match: str | None = Header(None, max_length=40),
    principal: Principal = Depends(require("pipeline:delete")),
) -> Response:
    audit_as(request, "pipeline.delete", name=name)
    store = _store(request)
    head = _head(store, principal, name, request)
    base = _base_version(if_match, None) if if_match else head["version"]
    running = deployed_stages(connector_store_for(request.app), name, head["tenant"])
    if running:  # deleting it would orphan its connectors (issue 14): they keep running, unreachable
        raise HTTPException(
            409,
            f"pipeline {name!r} is deployed ({', '.join(running)} running): undeploy first (POST /pipelines/{name}/undeploy)",
        )
    try:
        store.save(name, store.document(name)["document"], base, principal.name, "deleted", op="delete", deleted=True)
    except Stale as e:
        raise _stale(e, store, name)
    except NotFound:
        raise HTTPException(404, f"no pipeline {name!r}")
    return Response(status_code=204)


@router.get("/pipelines/{name}/versions", response_model=list[VersionOut], summary="Every saved version, oldest first")
def list_versions(name: str, request: Request, principal: Principal = Depends(require("pipeline:view"))) -> list[dict]:
    store = _store(request)
    _head(store, principal, name, request)
    return store.versions(name)


def _version(store: PipelineStore, name: str, version: int) -> dict:
    found = store.document(name, version)
    if found is None:
        raise HTTPException(404, f"pipeline {name!r} has no version {version}")
    return found


@router.get("/pipelines/{name}/versions/{version}", summary="One version's document")
def get_version(
    name: str, version: int, request: Request, principal: Principal = Depends(require("pipeline:view"))
) -> dict:
    store = _store(request)
    _head(store, principal, name, request)
    found = _version(store, name, version)
    return {**{k: v for k, v in found.items() if k != "document"}, "document": mask(found["document"])}


@router.get("/pipelines/{name}/diff", summary="JSON diff between two versions (default: previous -> current)")
def diff_versions(
    name: str,
    request: Request,
    from_version: int | None = Query(None, alias="from", ge=1, le=2**31),
    to_version: int | None = Query(None, alias="to", ge=1, le=2**31),
    principal: Principal = Depends(require("pipeline:view")),
) -> dict:
    store = _store(request)
    head = _head(store, principal, name, request)
    b = to_version or head["version"]
    a = from_version or max(1, b - 1)
    old, new = _version(store, name, a), _version(store, name, b)
    return {"pipeline": name, "from": a, "to": b, "changes": diff(mask(old["document"]), mask(new["document"]))}


@router.post(
    "/pipelines/{name}/rollback",
    response_model=PipelineOut,
    summary="A new version whose content is an earlier version's",
)
def rollback(
    name: str,
    request: Request,
    response: Response,
    body: Rollback = Body(...),
    if_match: str | None = Header(None, max_length=40),
    principal: Principal = Depends(require("pipeline:edit")),
) -> dict:
    audit_as(request, "pipeline.rollback", name=name, to_content_of=body.version)
    store = _store(request)
    head = _head(store, principal, name, request)
    base = _base_version(if_match, None) if if_match else head["version"]
    old = _version(store, name, body.version)["document"]
    if not principal.sees_tenant(old.get("tenant")):
        raise HTTPException(403, "that version belongs to a tenant you do not see")
    try:
        new = store.save(
            name, old, base, principal.name, body.message or f"rollback to version {body.version}", op="rollback"
        )
    except Stale as e:
        raise _stale(e, store, name)
    request.state.audit_detail["version"] = new
    return _out(store, store.head(name), response)


@router.get("/pipelines/{name}/graph", summary="Nodes and edges: source, topics, transforms, rules, sink")
def pipeline_graph(name: str, request: Request, principal: Principal = Depends(require("pipeline:view"))) -> dict:
    store = _store(request)
    head = _head(store, principal, name, request)
    spec = PipelineSpec.model_validate(store.document(name)["document"])
    return {**graph(spec, request.app.state.settings.topic_prefix), "version": head["version"]}
