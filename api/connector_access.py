"""Connectors as a request sees them: the app's store and leases, tenant visibility, lookup with
the same 404 for another tenant's and a missing connector, and the live status. Shared by the
connector, import and pipeline-deploy routes (and the console), so none imports another router.

    from api.connector_access import visible_connector, live_status
    record = visible_connector(request, name, principal)   # 404 unless the caller may see it
    live_status(request, record)                            # Kafka Connect's status body
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from api.audit.affected import note_affected_tenant
from api.security import Principal
from connectors.leases import Leases
from connectors.status import connector_status, task_keys
from connectors.store import ConnectorRecord, ConnectorStore


def connector_store(request: Request) -> ConnectorStore:
    if not hasattr(request.app.state, "connector_store"):
        request.app.state.connector_store = ConnectorStore.for_settings(request.app.state.settings)
    return request.app.state.connector_store


def connector_leases(request: Request) -> Leases:
    if not hasattr(request.app.state, "connector_leases"):
        request.app.state.connector_leases = Leases.for_settings(request.app.state.settings)
    return request.app.state.connector_leases


def connector_visible(principal: Principal, tenant: str | None, name: str) -> bool:
    """Tenant scope (a connector without tenant: only all-tenant principals) and connector grants."""
    return (principal.all_tenants or principal.sees_tenant(tenant)) and principal.may_access("connector", name)


def connector_not_found(name: str) -> HTTPException:
    return HTTPException(404, f"Connector {name} not found")


def visible_connector(request: Request, name: str, principal: Principal) -> ConnectorRecord:
    """The connector when the caller may see it; 404 alike for another tenant's and a missing one.
    The owner is noted for the audit log either way (the attacked tenant sees the attempt)."""
    record = connector_store(request).get(name)
    if record is None:
        raise connector_not_found(name)
    note_affected_tenant(request, record.tenant)
    if not connector_visible(principal, record.tenant, name):
        raise connector_not_found(name)
    return record


def check_connector_visible(request: Request, name: str, principal: Principal) -> None:
    """As visible_connector, without decrypting the config (for signals and deletion)."""
    exists, tenant = connector_store(request).tenant_of(name)
    if exists:
        note_affected_tenant(request, tenant)
    if not exists or not connector_visible(principal, tenant, name):
        raise connector_not_found(name)


def live_status(request: Request, record: ConnectorRecord) -> dict[str, Any]:
    rows = connector_store(request).task_statuses(record.name)
    keys = task_keys(record)
    try:
        owners = connector_leases(request).owners(keys)
    except Exception:  # Redis away: report what the workers last stored
        owners = {key: rows.get(t, {}).get("worker_id") for t, key in enumerate(keys)}
    return connector_status(record, rows, owners)
