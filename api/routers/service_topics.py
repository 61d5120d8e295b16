"""A Kafka-native subscriber's own topic (issue 17, real-time option (a)). Thin: the runner is
streams/dataservices/derived_topics.py, deployed here as a connector of the processor plugin
`runner.subscription` in the application's tenant, so the workers run it like any runner stage.

    POST /services/applications/{app_id}/topic   -> {"connector", "topic", "group"}

The applicant or the service's owner deploys it for an approved application of a version whose
document names a clean topic; it writes only that application's granted fields, masked, and stops
by itself on revocation, expiry or offline (the grant is re-read on every batch).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from api.audit import audit_as
from api.connector_access import connector_store
from api.routers.services import _call, _scope
from api.security import Principal, require
from api.service_access import service_store

router = APIRouter(tags=["services"])
APPLY = require("services:apply")


@router.post(
    "/services/applications/{app_id}/topic",
    summary="Deploy the runner of an approved application's own topic: its granted fields of the clean topic, masked",
)
def deploy_topic(request: Request, app_id: int = Path(ge=1), principal: Principal = Depends(APPLY)) -> dict:
    from connectors.document import parse
    from connectors.store import ConnectorExists
    from streams.dataservices.derived_topics import derived_names

    audit_as(request, "services.application.topic", application_id=app_id)
    scope, store = _scope(principal), service_store(request)
    app = _call(store.application, scope, app_id)
    if principal.name not in (app["applicant"], store.owner(scope, app["service"])):
        raise HTTPException(
            403,
            {
                "message": "only the applicant or the service's owner deploys its topic",
                "message_zh": "只有申请人或服务所有者可以部署订阅主题",
            },
        )
    if app["status"] != "approved":
        raise HTTPException(
            409,
            {
                "message": f"application {app_id} is {app['status']}, not approved",
                "message_zh": f"申请 {app_id} 状态为 {app['status']}，未获批准",
            },
        )
    spec = _call(store.published, scope, app["service"], app["version"])
    if not spec.resource.topic:
        raise HTTPException(
            409,
            {"message": "this service names no topic to subscribe to", "message_zh": "该服务未配置可订阅的数据主题"},
        )
    names = derived_names(spec.resource.topic, app)
    name = f"svc-sub-{scope or 'operator'}-{app_id}"
    config = {
        "connector.class": "runner.subscription",
        "topics": [spec.resource.topic],
        "key_id": app["key_id"],
        "service": app["service"],
        "version": app["version"],
    }
    connector, errors = parse(name, config, request.app.state.settings)
    if connector is None:  # the plugin's own config: a bug here, not the caller's input
        raise RuntimeError(f"runner.subscription config refused: {errors}")
    try:
        connector_store(request).create(connector, principal.tenant)
    except ConnectorExists:
        pass  # deployed already: the same config (the same key id, service and version)
    request.state.audit_detail.update(connector=name, topic=names["topic"], application=app["application"])
    return {"connector": name, **names}
