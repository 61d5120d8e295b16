"""Accepting quarantined records as they are (a waiver with a reason, issue 16): the original events
go on to the pipeline's clean topic through its transforms, no rule judging them. Thin: the domain is
streams/quarantine_accept.py, reading streams/quarantine_read.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.quality import runner_config_of
from api.quality.positions import Position
from api.security import Principal, require
from schemas.naming import quarantine_topic
from schemas.serde import WireCodec

# The quarantine's reader and the processor are imported in the route: they load polars, numpy and
# pyarrow, which the API's other routes do not need (its idle memory, issue 17).

router = APIRouter(tags=["quality"])


class Acceptance(BaseModel):
    model_config = {"extra": "forbid"}
    pipeline: str = Field(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")
    records: list[Position] = Field(min_length=1, max_length=10_000, description="quarantined records to accept")
    reason: str = Field(min_length=1, max_length=2000, description="why they are accepted (kept in the audit log)")


@router.post(
    "/quality/quarantine/accept",
    summary="Accept quarantined records as they are (a waiver): their original events go on to the clean topic",
)
def accept_quarantined(
    request: Request, body: Acceptance, principal: Principal = Depends(require("quality:manage"))
) -> dict[str, Any]:
    from streams.quarantine_accept import AcceptRefused, accepted, publish
    from streams.quarantine_read import MissingRecord, records_at

    audit_as(request, "quality.quarantine.accept", pipeline=body.pipeline, reason=body.reason[:500])
    if not principal.can("data:view"):
        raise HTTPException(403, "permission 'data:view' required to accept data / 接受数据需要 data:view 权限")
    config = runner_config_of(request, principal, body.pipeline)
    settings = request.app.state.settings
    wanted = {(p.partition, p.offset) for p in body.records}
    try:
        kept = records_at(
            settings.kafka_bootstrap, settings.schema_registry_url, quarantine_topic(config["topics"][0]), wanted
        )
    except MissingRecord as exc:
        raise HTTPException(404, str(exc)) from None
    quarantined = [((m.partition(), m.offset()), record) for m, record in kept]
    try:
        outputs = accepted(WireCodec(settings.schema_registry_url), config, quarantined, settings.kafka_bootstrap)
    except AcceptRefused as exc:
        raise HTTPException(
            422, {"message": str(exc), "message_zh": exc.msg_zh, "field": "records", "record": list(exc.position)}
        ) from None
    publish(settings.kafka_bootstrap, outputs)
    records = [{"partition": p, "offset": o} for (p, o), _ in quarantined]
    request.state.audit_detail.update(count=len(records), records=records[:200])
    return {"pipeline": body.pipeline, "accepted": len(records), "records": records, "topic": outputs[0].topic}
