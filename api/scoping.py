"""Tenant scope of the objects that other objects point at (pipelines, connectors, consumer groups),
for routers and background loops that must keep a tenant's schedule or alert rule inside its tenant.

    sees(principal, tenant)              # all-tenant principals see everything, others their tenants
    owner_of_pipeline(settings, name)    # (exists, tenant)
    owner_of_connector(settings, name)   # (exists, tenant)
    owner_of_group(settings, group)      # (exists, tenant) of huiliu-connect-<c> / huiliu-sink-<p>
    groups_of(settings, tenant)          # the consumer groups of a tenant's connectors and pipelines
    target_problem(settings, tenant, params)  # why params point outside `tenant`, or None

An object without a tenant (made by the operator key) belongs to no tenant: only all-tenant
principals, and schedules/rules without a tenant, may point at it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from api.security import Principal

CONNECT_GROUP = "huiliu-connect-"  # connectors/task_runner.py: a sink connector's consumer group
SINK_GROUP = "huiliu-sink-"  # connectors/pipeline.py: a pipeline's own sink


def sees(principal: Principal, tenant: str | None) -> bool:
    return principal.all_tenants or principal.sees_tenant(tenant)


@lru_cache(maxsize=8)
def _connectors(url: str, state_dir: str):
    from connectors.store import ConnectorStore

    return ConnectorStore(url, state_dir)


def connector_store(settings):
    return _connectors(settings.resolved_control_db_url, str(settings.state_dir))


@lru_cache(maxsize=8)
def _schedule_store(url: str):
    from api.scheduling.store import ScheduleStore

    return ScheduleStore(url)  # no vault: names and tenants only


def _schedules(settings):
    return _schedule_store(settings.resolved_control_db_url)


def owner_of_pipeline(settings, name: str) -> tuple[bool, str | None]:
    from api.pipelines.store import pipeline_store_for

    head = pipeline_store_for(settings).head(name)
    return (head is not None, head["tenant"] if head else None)


def owner_of_connector(settings, name: str) -> tuple[bool, str | None]:
    return connector_store(settings).tenant_of(name)


def owner_of_group(settings, group: str) -> tuple[bool, str | None]:
    if group.startswith(CONNECT_GROUP):
        return owner_of_connector(settings, group[len(CONNECT_GROUP) :])
    if group.startswith(SINK_GROUP):
        return owner_of_pipeline(settings, group[len(SINK_GROUP) :])
    return (False, None)


def groups_of(settings, tenant: str) -> list[str]:
    from api.pipelines.store import pipeline_store_for

    connectors = [CONNECT_GROUP + n for n in connector_store(settings).names({tenant})]
    return connectors + [SINK_GROUP + h["name"] for h in pipeline_store_for(settings).list({tenant})]


def _owned(exists: bool, owner: str | None, tenant: str | None) -> bool:
    return exists and (tenant is None or owner == tenant)


def target_problem(settings, tenant: str | None, params: dict[str, Any]) -> str | None:
    """Why `params` (of a schedule, alert rule or job of `tenant`) point at another tenant's object,
    or None. Another tenant's object reads as unknown: its existence is not revealed. A schedule
    or rule without a tenant (the operator's) may point anywhere."""
    if tenant is None or not isinstance(params, dict):
        return None
    pipeline = params.get("pipeline")
    if isinstance(pipeline, str) and not _owned(*owner_of_pipeline(settings, pipeline), tenant):
        return f"params.pipeline: no pipeline {pipeline!r}"
    connector = params.get("connector")
    if isinstance(connector, str) and not _owned(*owner_of_connector(settings, connector), tenant):
        return f"params.connector: no connector {connector!r}"
    schedule = params.get("schedule")
    if isinstance(schedule, str) and not any(s["tenant"] == tenant for s in _schedules(settings).lookup(schedule)):
        return f"params.schedule: no schedule {schedule!r}"
    group = params.get("group")
    if isinstance(group, str) and not _owned(*owner_of_group(settings, group), tenant):
        return f"params.group: no consumer group {group!r} of your connectors or pipelines"
    document = params.get("document")
    if isinstance(document, dict):
        if document.get("tenant") not in (None, tenant):
            return "params.document.tenant: must be the tenant of the schedule"
        name = document.get("name")
        if isinstance(name, str):
            exists, owner = owner_of_pipeline(settings, name)
            if exists and owner != tenant:  # it would write that pipeline's topics, offsets, counters
                return f"params.document.name: pipeline name {name!r} is not available"
    return None
