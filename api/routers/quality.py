"""Quality management (issue 16): browsing what a pipeline's runner quarantined, with every
violation and the original event (values masked for callers without `data:view`), and repairing
and replaying it, at once or (a rule's whole quarantine) as a message-centre job. Thin: reading is
streams/quarantine_read.py, replay streams/quarantine_replay.py, the wiring api/quality."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator

from api.audit import audit_as
from api.jobs import job_manager
from api.quality import masked, quarantine_topic_of
from api.quality.positions import Position
from api.quality.replay_jobs import CHUNK, KIND, check_fields, replay_job
from api.security import Principal, require
from deploy.logs import in_tenant
from schemas.naming import QUARANTINE_SUFFIX
from schemas.serde import WireCodec

if TYPE_CHECKING:
    from streams.quarantine_replay import ReplayRefused

# The quarantine's reader and replay are imported in the routes: they load polars, numpy and
# pyarrow, which the API's other routes do not need (its idle memory, issue 17).

router = APIRouter(tags=["quality"])


def _read_quarantine(*args: Any) -> dict[str, Any]:
    # in the thread pool: the first call's import of polars must not stall the event loop
    from streams.quarantine_read import read_quarantine

    return read_quarantine(*args)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


@router.get(
    "/quality/quarantine",
    summary="Quarantined records of a pipeline, newest first, filtered by rule and time, paged",
)
async def quarantine(
    request: Request,
    pipeline: str = Query(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$"),
    rule: str | None = Query(None, max_length=300),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
    principal: Principal = Depends(require("quality:manage")),
) -> dict[str, Any]:
    topic = await run_in_threadpool(quarantine_topic_of, request, principal, pipeline)
    settings = request.app.state.settings
    page = await run_in_threadpool(
        _read_quarantine,
        settings.kafka_bootstrap,
        settings.schema_registry_url,
        topic,
        rule,
        _ms(since),
        _ms(until),
        limit,
        offset,
    )
    full = principal.can("data:view")
    for item in page["items"]:
        if not full:
            item["event"] = masked(item["event"])
    return {"pipeline": pipeline, "topic": topic, "masked": not full, **page}


class Replay(BaseModel):
    model_config = {"extra": "forbid"}
    pipeline: str = Field(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")
    records: list[Position] | None = Field(None, min_length=1, max_length=10_000, description="quarantined records")
    rule: str | None = Field(None, max_length=300, description="or: every record this rule quarantined")
    set: dict[str, Any] = Field(default_factory=dict, max_length=100, description="field -> corrected value")
    reason: str = Field(min_length=1, max_length=2000, description="why (kept in the audit log)")

    @model_validator(mode="after")
    def _one(self) -> Replay:
        if (self.records is None) == (self.rule is None):
            raise ValueError("name either records or rule / records 与 rule 二选一")
        return self


def _refused(exc: ReplayRefused) -> HTTPException:
    return HTTPException(422, {"message": str(exc), "message_zh": exc.msg_zh, "field": exc.field})


@router.post(
    "/quality/quarantine/replay",
    summary="Correct quarantined events (or none: after a rule fix) and replay them into the pipeline's raw topic",
)
def replay_quarantined(
    request: Request, body: Replay, principal: Principal = Depends(require("quality:manage"))
) -> dict[str, Any]:
    from streams.quarantine_read import MissingRecord, records_at, scan_rule
    from streams.quarantine_replay import ReplayRefused, corrected_columns, corrected_many, replay, replay_batch

    topic = _corrections_begin(request, principal, "quality.quarantine.replay", body)
    settings = request.app.state.settings
    codec = WireCodec(settings.schema_registry_url)
    if body.records is not None:
        wanted = {(p.partition, p.offset) for p in body.records}
        try:
            kept = records_at(settings.kafka_bootstrap, settings.schema_registry_url, topic, wanted)
        except MissingRecord as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            events = corrected_many(codec, [rec for _, rec in kept], body.set)
        except ReplayRefused as exc:
            raise _refused(exc) from None
        replay(settings.kafka_bootstrap, events)
        positions, replayed_topic = [(m.partition(), m.offset()) for m, _ in kept], events[0].topic
    else:  # a rule's whole quarantine: read, corrected and replayed as columns (no dict per record)
        scan = scan_rule(settings.kafka_bootstrap, settings.schema_registry_url, topic, body.rule, codec=codec)
        if scan.partial:
            raise HTTPException(
                409,
                "the quarantine is too large to read at once; name records, or replay the rule as a job: "
                "POST /quality/quarantine/replay-jobs / 隔离记录过多，无法一次读取；请指定记录，"
                "或以后台任务重放该规则：POST /quality/quarantine/replay-jobs",
            )
        if not scan.values:
            raise HTTPException(404, f"rule {body.rule!r} quarantined nothing here / 该规则没有隔离记录")
        try:
            batch = corrected_columns(codec, scan.topics, scan.keys, scan.values, body.set)
        except ReplayRefused as exc:
            raise _refused(exc) from None
        replay_batch(settings.kafka_bootstrap, batch)
        positions, replayed_topic = scan.positions, batch.topics[0]
    replayed = [{"partition": p, "offset": o} for p, o in positions]
    request.state.audit_detail.update(count=len(replayed), records=replayed[:200])
    return {"pipeline": body.pipeline, "replayed": len(replayed), "records": replayed, "topic": replayed_topic}


class ReplayJob(BaseModel):
    model_config = {"extra": "forbid"}
    pipeline: str = Field(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")
    rule: str = Field(min_length=1, max_length=300, description="every record this rule quarantined")
    set: dict[str, Any] = Field(default_factory=dict, max_length=100, description="field -> corrected value")
    reason: str = Field(min_length=1, max_length=2000, description="why (kept in the audit log)")
    chunk: int = Field(
        CHUNK,
        ge=100,
        le=200_000,
        description="quarantine records read per step (memory bound); progress and cancel come between steps",
    )


def _corrections_begin(request: Request, principal: Principal, action: str, body: Replay | ReplayJob) -> str:
    """What both replay routes do first: audit the steward's corrections (with the reason), require
    data:view (corrections show and change data), and answer the pipeline's quarantine topic."""
    audit_as(
        request, action, pipeline=body.pipeline, rule=body.rule, fields=sorted(body.set)[:100], reason=body.reason[:500]
    )
    if not principal.can("data:view"):
        raise HTTPException(403, "permission 'data:view' required to correct data / 修正数据需要 data:view 权限")
    return quarantine_topic_of(request, principal, body.pipeline)


@router.post(
    "/quality/quarantine/replay-jobs",
    status_code=202,
    summary="Correct and replay a rule's whole quarantine as a message-centre job (progress, cancel between "
    "chunks); its result says how many were replayed and where the read stopped",
)
def replay_quarantined_job(
    request: Request, body: ReplayJob, principal: Principal = Depends(require("quality:manage"))
) -> dict[str, Any]:
    from streams.quarantine_replay import ReplayRefused

    topic = _corrections_begin(request, principal, "quality.quarantine.replay.job", body)
    raw_topic = topic.removesuffix(QUARANTINE_SUFFIX)
    settings = request.app.state.settings
    try:  # a field no version of the row has: refused now, not as a failed job later
        check_fields(settings.schema_registry_url, raw_topic, body.set)
    except ReplayRefused as exc:
        raise _refused(exc) from None
    tenant = principal.tenant if not principal.all_tenants else None
    job = replay_job(settings, topic, raw_topic, body.rule, body.set, body.chunk)
    job_id = job_manager(request.app).submit(KIND, principal.name, in_tenant(tenant, job))
    request.state.audit_detail["job"] = job_id
    return {"job_id": job_id, "pipeline": body.pipeline, "rule": body.rule, "topic": raw_topic}
