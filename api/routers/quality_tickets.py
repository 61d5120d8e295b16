"""Quality tickets (问题工单, issue 16): list, open by hand from quarantined records, the workflow,
comments, history, thresholds and metrics. Thin: the domain is quality_stream/tickets, the wiring
(store, catalogue owner, lineage, monitor loop) api/quality/tickets.py.

Reading needs `metadata:view`, acting `quality:manage`; samples are masked without `data:view`.
Another tenant's ticket answers 404."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.pipelines.store import pipeline_store_for
from api.quality import masked, quarantine_topic_of
from api.quality.positions import Position
from api.quality.ticket_mail import announce_assignment
from api.quality.tickets import context, owner_of, runner_counts_of, ticket_store
from api.security import Principal, require
from connectors.pipeline import PipelineSpec
from quality_stream.tickets.model import DIMENSIONS, STATES, TicketError
from quality_stream.tickets.monitor import dimension_of, notify_downstream
from quality_stream.tickets.thresholds import Threshold
from schemas.catalog.urns import topic_urn

# streams.quarantine_read is imported in the route that reads records: it loads polars and numpy,
# which the API's other routes do not need (its idle memory, issue 17).

router = APIRouter(tags=["quality"])
VIEW = require("metadata:view")
MANAGE = require("quality:manage")
NAME = r"^[A-Za-z0-9_\-]+$"


def _error(exc: TicketError) -> HTTPException:
    return HTTPException(exc.status, exc.detail())


def _shown(ticket: dict[str, Any], principal: Principal) -> dict[str, Any]:
    if not principal.can("data:view"):
        ticket["samples"] = [{**s, "event": masked(s.get("event"))} for s in ticket["samples"]]
        ticket["masked"] = True
    else:
        ticket["masked"] = False
    ticket.pop("base", None)
    if not principal.can("quality:manage"):
        ticket["actions"] = []  # what the caller may do
    return ticket


def _visible_ticket(request: Request, principal: Principal, ticket_id: int) -> dict[str, Any]:
    store = ticket_store(request.app.state.settings)
    try:
        return store.get(principal.visible_tenants(), ticket_id)
    except TicketError as exc:
        note_affected_tenant(request, store.scope_of(ticket_id))
        raise _error(exc) from None


@router.get("/quality/tickets", summary="Quality tickets of your tenants, newest first, filtered and paged")
def list_tickets(
    request: Request,
    state: str | None = Query(None, max_length=20),
    assignee: str | None = Query(None, max_length=200),
    pipeline: str | None = Query(None, max_length=200),
    rule: str | None = Query(None, max_length=300),
    dimension: str | None = Query(None, max_length=20),
    overdue: bool = False,
    mine: bool = Query(False, description="only tickets assigned to you"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    if state and state not in STATES:
        raise HTTPException(422, f"state must be one of {', '.join(STATES)} / 状态必须是 {', '.join(STATES)} 之一")
    if dimension and dimension not in DIMENSIONS:
        raise HTTPException(422, f"dimension must be one of {', '.join(DIMENSIONS)} / 维度取值有误")
    total, items = ticket_store(request.app.state.settings).list(
        principal.visible_tenants(),
        state=state,
        assignee=principal.name if mine else assignee,
        pipeline=pipeline,
        rule=rule,
        dimension=dimension,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    return {"total": total, "items": [_shown(t, principal) for t in items]}


@router.get("/quality/tickets/metrics", summary="Time to respond and to resolve, per owner and department")
def ticket_metrics(request: Request, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    return ticket_store(request.app.state.settings).metrics(principal.visible_tenants())


@router.get("/quality/tickets/thresholds", summary="When tickets open automatically (per tenant, pipeline, rule)")
def list_thresholds(request: Request, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    store = ticket_store(request.app.state.settings)
    return {"default": Threshold().model_dump(), "items": store.thresholds(principal.visible_tenants())}


class ThresholdIn(Threshold):
    pipeline: str | None = Field(None, max_length=200, pattern=NAME, description="none: every pipeline")
    rule: str | None = Field(None, max_length=300, description="none: every rule")


@router.put("/quality/tickets/thresholds", summary="Set when tickets open (a pipeline's, or your tenant's)")
def put_threshold(request: Request, body: ThresholdIn, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    audit_as(request, "quality.ticket.threshold", pipeline=body.pipeline, rule=body.rule)
    scope = principal.tenant or ""
    if body.pipeline:
        quarantine_topic_of(request, principal, body.pipeline)  # 404 for unknown / another tenant's
        scope = pipeline_store_for(request.app.state.settings).head(body.pipeline)["tenant"] or ""
    threshold = Threshold.model_validate(body.model_dump(exclude={"pipeline", "rule"}))
    ticket_store(request.app.state.settings).set_threshold(
        scope, body.pipeline or "", body.rule or "", threshold, principal.name
    )
    return {"tenant": scope or None, "pipeline": body.pipeline, "rule": body.rule, **threshold.model_dump()}


class TicketIn(BaseModel):
    model_config = {"extra": "forbid"}
    pipeline: str = Field(max_length=200, pattern=NAME)
    records: list[Position] = Field(min_length=1, max_length=100, description="quarantined records (samples)")
    rule: str | None = Field(None, max_length=300, description="default: the rule the records violate")
    due_in_hours: float | None = Field(None, gt=0, le=24 * 365, description="default: the threshold's SLA")
    comment: str | None = Field(None, max_length=2000)


@router.post("/quality/tickets", status_code=201, summary="Open a ticket by hand from quarantined records")
def open_ticket(request: Request, body: TicketIn, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    from streams.quarantine_read import MissingRecord, quarantine_item, records_at

    audit_as(request, "quality.ticket.open", pipeline=body.pipeline, rule=body.rule)
    settings = request.app.state.settings
    topic = quarantine_topic_of(request, principal, body.pipeline)
    wanted = {(p.partition, p.offset) for p in body.records}
    try:
        kept = records_at(settings.kafka_bootstrap, settings.schema_registry_url, topic, wanted)
    except MissingRecord as exc:
        raise HTTPException(404, str(exc)) from None
    records = [quarantine_item(m, rec) for m, rec in kept]
    rules = [{v.get("rule_id") for v in r["violations"]} for r in records]
    rule = body.rule or next(iter(sorted(set.intersection(*rules) - {None})), None)
    if rule is None or any(rule not in r for r in rules):
        raise HTTPException(
            422,
            {
                "message": "name a rule every record violates (rule)",
                "message_zh": "请指定所有记录都违反的规则 rule",
                "field": "rule",
            },
        )
    store = pipeline_store_for(settings)
    scope = store.head(body.pipeline)["tenant"] or ""
    spec = PipelineSpec.model_validate(store.document(body.pipeline)["document"])
    urn = topic_urn(settings.kafka_bootstrap, spec.source_topic(settings))
    tickets = ticket_store(settings)
    sla = body.due_in_hours or tickets.threshold_for(scope, body.pipeline, rule).sla_hours
    owner, department = owner_of(settings, scope, urn)
    ticket, created = tickets.open(
        scope,
        pipeline=body.pipeline,
        dataset_urn=urn,
        rule=rule,
        dimension=dimension_of(records, rule),
        failed=len(records),
        evaluated=0,
        samples=records,
        assignee=owner,
        department=department,
        actor=principal.name,
        origin="manual",
        sla_hours=sla,
    )
    if body.comment:
        tickets.comment(None, ticket["id"], principal.name, body.comment)
    if created:
        notify_downstream(tickets, context(settings), ticket)
        if ticket["assignee"]:
            announce_assignment(settings, tickets, ticket)
    request.state.audit_detail.update(ticket=ticket["id"], created=created)
    return {"created": created, **_shown(tickets.get(None, ticket["id"]), principal)}


@router.get("/quality/tickets/{ticket_id}", summary="A ticket with its history and comments")
def get_ticket(request: Request, ticket_id: int, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    ticket = _visible_ticket(request, principal, ticket_id)
    ticket["history"] = ticket_store(request.app.state.settings).events(ticket_id)
    return _shown(ticket, principal)


class TransitionIn(BaseModel):
    model_config = {"extra": "forbid"}
    action: Literal["assign", "start", "resolve", "close", "reopen"]
    assignee: str | None = Field(None, min_length=1, max_length=200)
    resolution: Literal["fixed_at_source", "fixed_in_platform_replayed", "waived"] | None = None
    reason: str | None = Field(None, max_length=2000)


@router.post("/quality/tickets/{ticket_id}/transitions", summary="Move a ticket along its workflow")
async def transition(
    request: Request, ticket_id: int, body: TransitionIn, principal: Principal = Depends(MANAGE)
) -> dict[str, Any]:
    audit_as(request, f"quality.ticket.{body.action}", ticket=ticket_id, resolution=body.resolution)
    settings = request.app.state.settings
    ticket = await run_in_threadpool(_visible_ticket, request, principal, ticket_id)
    base = None
    if body.action == "resolve":  # verification counts from here
        read, failed = await run_in_threadpool(runner_counts_of, settings, ticket["pipeline"])
        base = (read, failed.get(ticket["rule"], 0))
    try:
        out = await run_in_threadpool(
            ticket_store(settings).transition,
            principal.visible_tenants(),
            ticket_id,
            body.action,
            principal.name,
            body.assignee,
            body.resolution,
            body.reason,
            base,
        )
    except TicketError as exc:
        raise _error(exc) from None
    request.state.audit_detail.update(state=out["state"])
    if body.action == "assign":
        await run_in_threadpool(announce_assignment, settings, ticket_store(settings), out)
    return _shown(out, principal)


class CommentIn(BaseModel):
    model_config = {"extra": "forbid"}
    text: str = Field(min_length=1, max_length=2000)


@router.post("/quality/tickets/{ticket_id}/comments", status_code=201, summary="Comment on a ticket")
def comment(request: Request, ticket_id: int, body: CommentIn, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "quality.ticket.comment", ticket=ticket_id)
    _visible_ticket(request, principal, ticket_id)
    if not body.text.strip():
        raise HTTPException(422, {"message": "comment is empty", "message_zh": "评论为空", "field": "text"})
    return ticket_store(request.app.state.settings).comment(
        principal.visible_tenants(), ticket_id, principal.name, body.text.strip()
    )
