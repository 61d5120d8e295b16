"""The tenant rule of every route: what another tenant's caller may see or do through it.

Every operation in the OpenAPI document ("METHOD /path/template") is declared here with one of the
rules below. tests/security reads the running API's /openapi.json and fails, naming the route, when
an operation has no rule (or a rule names an operation that no longer exists); the rule decides
what the attacker's suite expects when tenant b's callers use the route on tenant a's objects.
A new route is not done until it has a line here.

    from api.tenancy_rules import ROUTES, RULES, rule_for, undeclared
    rule_for("GET", "/pipelines/{name}")   # "tenant-object"
"""

from __future__ import annotations

RULES: dict[str, str] = {
    "public": "no credential needed (sign-in); answers never depend on another tenant's data",
    "self": "the caller's own account (who am I); shows only the caller's tenant",
    "tenant-object": (
        "the path names an object owned by a tenant: callers of other tenants get 404 (403 when they lack the "
        "permission), as if it did not exist, and the object is left unchanged"
    ),
    "tenant-upsert": (
        "PUT creates or replaces the object the path names: a name held by another tenant answers 404/403/409 "
        "and is never replaced or moved"
    ),
    "tenant-list": (
        "a collection or search: results are limited to the caller's tenants; a filter naming another tenant's "
        "object answers 404 or nothing"
    ),
    "tenant-create": (
        "creates in the caller's tenant: a body naming another tenant, or another tenant's objects (a connector "
        "to import from, a schedule to depend on, a group or role to hand out), is refused (403/404/422)"
    ),
    "shared-read": (
        "read-only facts about the installation (plugin and component catalogues, health, metrics, lag): "
        "no tenant's object names, documents or secrets"
    ),
    "probe": (
        "checks a config the caller sends, storing nothing: paths stay inside the caller's data root and "
        "connections inside the allow-list; no other tenant's data comes back"
    ),
    "global-superuser": "changes state shared by all tenants: only superusers may (everyone else: 403)",
    "app-key": (
        "served to an application, not a user: the credential is the app key an approval issued (X-App-Key), "
        "scoped to one service version of one tenant; user credentials give nothing, a key of another service, "
        "version or tenant answers 401/403/404, and only the fields granted come back, masked, row-filtered"
    ),
}

ROUTES: dict[str, str] = {
    # sign-in and the caller's own account
    "POST /auth/token": "public",
    "GET /auth/me": "self",
    # pipelines
    "GET /pipelines": "tenant-list",
    "POST /pipelines": "tenant-create",
    "GET /pipelines/{name}": "tenant-object",
    "PUT /pipelines/{name}": "tenant-object",
    "DELETE /pipelines/{name}": "tenant-object",
    "GET /pipelines/{name}/versions": "tenant-object",
    "GET /pipelines/{name}/versions/{version}": "tenant-object",
    "GET /pipelines/{name}/diff": "tenant-object",
    "POST /pipelines/{name}/rollback": "tenant-object",
    "GET /pipelines/{name}/graph": "tenant-object",
    "GET /pipelines/{name}/stats": "tenant-object",
    "POST /pipelines/{name}/deploy": "tenant-object",
    "POST /pipelines/{name}/undeploy": "tenant-object",
    "GET /pipelines/{name}/deployment": "tenant-object",
    "GET /components": "shared-read",
    # connectors
    "GET /": "shared-read",
    "GET /connector-plugins": "shared-read",
    "PUT /connector-plugins/{plugin}/config/validate": "probe",
    "GET /connectors": "tenant-list",
    "POST /connectors": "tenant-create",
    "GET /connectors/{name}": "tenant-object",
    "DELETE /connectors/{name}": "tenant-object",
    "GET /connectors/{name}/config": "tenant-object",
    "PUT /connectors/{name}/config": "tenant-upsert",
    "GET /connectors/{name}/status": "tenant-object",
    "GET /connectors/{name}/tasks": "tenant-object",
    "GET /connectors/{name}/tasks/{task}/status": "tenant-object",
    "PUT /connectors/{name}/pause": "tenant-object",
    "PUT /connectors/{name}/resume": "tenant-object",
    "POST /connectors/{name}/restart": "tenant-object",
    "PUT /connectors/{name}/stop": "tenant-object",
    "POST /connectors/{name}/tasks/{task}/restart": "tenant-object",
    "GET /connectors/{name}/topics": "tenant-object",
    "PUT /connectors/{name}/topics/reset": "tenant-object",
    "POST /connectors/{name}/decommission": "tenant-object",
    "POST /connectors/{name}/snapshot": "tenant-object",
    "GET /connectors/{name}/snapshots": "tenant-object",
    "GET /connectors/{name}/schema-changes": "tenant-object",
    "POST /connectors/{name}/schema-changes/{change_id}/accept": "tenant-object",
    # file imports
    "GET /imports": "tenant-list",
    "POST /imports": "tenant-create",
    "GET /imports/{import_id}": "tenant-object",
    "GET /imports/{import_id}/rows": "tenant-object",
    "GET /imports/{import_id}/rows.csv": "tenant-object",
    "GET /imports/{import_id}/rows.xlsx": "tenant-object",
    # metadata catalogue (entries belong to the tenant of the connector they were harvested through)
    "POST /metadata/harvest": "tenant-create",
    "GET /metadata/systems": "tenant-list",
    "GET /metadata/search": "tenant-list",
    "GET /metadata/datasets": "tenant-list",
    "GET /metadata/datasets/{urn}": "tenant-object",
    "PATCH /metadata/datasets/{urn}": "tenant-object",
    "GET /metadata/datasets/{urn}/versions": "tenant-object",
    "GET /metadata/datasets/{urn}/versions/{version}": "tenant-object",
    "GET /metadata/datasets/{urn}/diff": "tenant-object",
    "GET /lineage/{urn}": "tenant-object",
    "POST /lineage/edges": "tenant-create",  # kept in the caller's tenant
    "POST /api/v1/lineage": "tenant-create",
    "POST /lineage/flink-jobs": "tenant-create",  # kept in the caller's tenant
    "GET /lineage-reports": "tenant-list",
    "GET /schema-changes": "tenant-list",
    "GET /assets/summary": "tenant-list",
    "GET /map": "tenant-list",
    # data standards (kept per the author's home tenant: another tenant's code reads as unknown)
    "GET /standards/elements": "tenant-list",
    "POST /standards/elements": "tenant-create",
    "GET /standards/elements/{code}": "tenant-object",
    "PATCH /standards/elements/{code}": "tenant-object",
    "GET /standards/elements/{code}/versions": "tenant-object",
    "GET /standards/elements/{code}/diff": "tenant-object",
    "POST /standards/elements/{code}/retire": "tenant-object",
    "GET /standards/code-sets": "tenant-list",
    "POST /standards/code-sets": "tenant-create",
    "GET /standards/code-sets/{code}": "tenant-object",
    "PATCH /standards/code-sets/{code}": "tenant-object",
    "GET /standards/code-sets/{code}/versions": "tenant-object",
    "GET /standards/code-sets/{code}/diff": "tenant-object",
    "POST /standards/code-sets/{code}/retire": "tenant-object",
    "GET /standards/categories": "tenant-list",
    "POST /standards/categories": "tenant-create",
    "GET /standards/national": "shared-read",
    "POST /standards/national/{code}/install": "tenant-create",
    "POST /standards/reviews": "tenant-create",
    # data services (kept per the author's home tenant; the call route is authenticated by app key)
    "GET /services": "tenant-list",
    "POST /services": "tenant-create",
    "GET /services/{name}/versions": "tenant-object",
    "POST /services/{name}/submit": "tenant-object",
    "POST /services/{name}/review": "tenant-object",
    "POST /services/{name}/v{version}/offline": "tenant-object",
    "POST /services/{name}/applications": "tenant-object",
    "GET /services/{name}/applications": "tenant-object",
    "POST /services/applications/{app_id}/decision": "tenant-object",
    "POST /services/applications/{app_id}/revoke": "tenant-object",
    "GET /services/{name}/v{version}": "app-key",
    # downloads and subscriptions (app key; a download job's file by its signed, expiring link)
    "GET /services/{name}/v{version}/download": "app-key",
    "POST /services/{name}/v{version}/downloads": "app-key",
    "GET /service-downloads/{download_id}": "app-key",
    "GET /service-downloads/{download_id}/file": "app-key",
    "GET /services/{name}/v{version}/stream": "app-key",
    # sensitive-data detection over the caller's catalogue entries
    "POST /detection/scan": "tenant-object",
    "POST /detection/confirm": "tenant-object",
    "GET /services/{name}/v{version}/openapi.json": "tenant-object",
    "GET /services/{name}/stats": "tenant-object",
    # requests for access to catalogue datasets, decided by the dataset's owner
    "POST /access-requests": "tenant-create",
    "GET /access-requests": "tenant-list",
    "POST /access-requests/{request_id}/decision": "tenant-object",
    "POST /services/applications/{app_id}/topic": "tenant-object",
    "GET /standards/reviews": "tenant-list",
    "GET /standards/reviews/{rid}": "tenant-object",
    "POST /standards/reviews/{rid}/decision": "tenant-object",
    "GET /standards/export": "tenant-list",
    "POST /standards/import": "tenant-create",
    "GET /standards/mappings": "tenant-list",
    "POST /standards/mappings": "tenant-create",
    "DELETE /standards/mappings": "tenant-object",
    "GET /standards/suggestions": "tenant-list",
    "GET /standards/conformance": "tenant-list",
    "GET /quality/quarantine": "tenant-list",
    "POST /quality/quarantine/replay": "tenant-create",
    "POST /quality/quarantine/replay-jobs": "tenant-create",
    "POST /quality/quarantine/accept": "tenant-create",
    "GET /quality/tickets": "tenant-list",
    "POST /quality/tickets": "tenant-create",
    "GET /quality/tickets/metrics": "tenant-list",
    "GET /quality/tickets/thresholds": "tenant-list",
    "PUT /quality/tickets/thresholds": "tenant-create",
    "GET /quality/tickets/{ticket_id}": "tenant-object",
    "POST /quality/tickets/{ticket_id}/transitions": "tenant-object",
    "POST /quality/tickets/{ticket_id}/comments": "tenant-object",
    # quality scorecards, profiles and reports (kept per the caller's home tenant)
    "GET /quality/scorecards": "tenant-list",
    "POST /quality/profiles": "tenant-create",
    "POST /quality/profile-jobs": "tenant-create",
    "GET /quality/profiles": "tenant-list",
    "POST /quality/reports": "tenant-create",
    "GET /quality/reports": "tenant-list",
    "GET /quality/reports/{report_id}": "tenant-object",
    "GET /quality/reports/{report_id}/report.pdf": "tenant-object",
    "GET /quality/reports/{report_id}/report.html": "tenant-object",
    "POST /quality/report-subscriptions": "tenant-create",
    "GET /quality/report-subscriptions": "tenant-list",
    "DELETE /quality/report-subscriptions/{subscription_id}": "tenant-object",
    "GET /workbench": "self",
    "GET /impact/{urn}": "tenant-object",
    "POST /impact-exports": "tenant-create",
    "GET /impact-exports/{job_id}": "tenant-object",
    # identity
    "GET /users": "tenant-list",
    "POST /users": "tenant-create",
    "GET /users/{username}": "tenant-object",
    "PATCH /users/{username}": "tenant-object",
    "DELETE /users/{username}": "tenant-object",
    "GET /groups": "tenant-list",
    "POST /groups": "tenant-create",
    "GET /groups/{name}": "tenant-object",
    "PATCH /groups/{name}": "tenant-object",
    "DELETE /groups/{name}": "tenant-object",
    "GET /roles": "tenant-list",
    "POST /roles": "tenant-create",
    "GET /roles/{name}": "tenant-object",
    "PATCH /roles/{name}": "tenant-object",
    "DELETE /roles/{name}": "tenant-object",
    "GET /api-keys": "tenant-list",
    "POST /api-keys": "tenant-create",
    "GET /api-keys/{key_id}": "tenant-object",
    "PATCH /api-keys/{key_id}": "tenant-object",
    "DELETE /api-keys/{key_id}": "tenant-object",
    # jobs, schedules, alerts, messages
    "GET /jobs": "tenant-list",
    "POST /jobs": "tenant-create",
    "GET /jobs/{job_id}": "tenant-object",
    "POST /jobs/{job_id}/cancel": "tenant-object",
    "GET /schedules": "tenant-list",
    "POST /schedules": "tenant-create",
    "GET /schedules/{sid}": "tenant-object",
    "PATCH /schedules/{sid}": "tenant-object",
    "DELETE /schedules/{sid}": "tenant-object",
    "POST /schedules/{sid}/run": "tenant-object",
    "POST /schedules/{sid}/trigger": "tenant-object",
    "GET /schedules/{sid}/runs": "tenant-object",
    "GET /schedule-runs/{run_id}": "tenant-object",
    "GET /alerts/rules": "tenant-list",
    "POST /alerts/rules": "tenant-create",
    "GET /alerts/rules/{rid}": "tenant-object",
    "PATCH /alerts/rules/{rid}": "tenant-object",
    "DELETE /alerts/rules/{rid}": "tenant-object",
    "POST /alerts/rules/{rid}/evaluate": "tenant-object",
    "GET /messages": "tenant-list",
    "POST /messages/{mid}/read": "tenant-object",
    # operations and audit
    "GET /audit": "tenant-list",
    "GET /logs": "tenant-list",
    "GET /health": "shared-read",
    "GET /livez": "public",
    "GET /metrics": "shared-read",
    "GET /ops/lag": "shared-read",
    # topics of the caller's connectors and pipelines (console topic browser)
    "GET /topics": "tenant-list",
    "GET /topics/{name}": "tenant-object",
    "GET /topics/{name}/schema/diff": "tenant-object",
    "GET /topics/{name}/messages": "tenant-object",
}

# The web console (api/console/): HTML pages left out of the OpenAPI document, so the attacker's suite
# does not walk them; every page acts only through the API routes above, with the signed-in person's
# token, so those routes' rules hold. tests/test_console.py checks every console route has a line here.
CONSOLE_ROUTES: dict[str, str] = {
    "GET /console/login": "public",
    "POST /console/login": "public",
    "POST /console/logout": "self",
    "GET /console/static/{path:path}": "public",
    "GET /console/": "tenant-list",
    "GET /console/quality/reports": "tenant-list",
    "POST /console/quality/reports": "tenant-create",
    "GET /console/quality/reports/{report_id}": "tenant-object",
    "GET /console/quality/reports/{report_id}/report.pdf": "tenant-object",
    "GET /console/quality/scorecards": "tenant-list",
    "GET /console/overview/metrics.json": "shared-read",
    "GET /console/overview/health": "shared-read",
    "GET /console/jobs": "tenant-list",
    "GET /console/jobs/table": "tenant-list",
    "POST /console/jobs/{job_id}/cancel": "tenant-object",
    "GET /console/connectors": "tenant-list",
    "GET /console/connectors/new": "shared-read",
    "POST /console/connectors/new": "tenant-create",
    "POST /console/connectors/{name}/{action}": "tenant-object",
    "GET /console/pipelines": "tenant-list",
    "GET /console/pipelines/{name}": "tenant-object",
    "GET /console/pipelines/{name}/stats.json": "tenant-object",
    "GET /console/pipelines/{name}/edit": "tenant-object",
    "POST /console/pipelines/{name}/edit": "tenant-object",
    "GET /console/pipelines/{name}/versions": "tenant-object",
    "POST /console/pipelines/{name}/{action}": "tenant-object",
    "GET /console/schedules": "tenant-list",
    "GET /console/schedules/{sid}/runs": "tenant-object",
    "POST /console/schedules/{sid}/run": "tenant-object",
    "GET /console/catalog": "tenant-list",
    "GET /console/catalog/dataset": "tenant-object",
    "GET /console/catalog/dataset/diff": "tenant-object",
    "POST /console/catalog/dataset/business": "tenant-object",
    "POST /console/catalog/dataset/fields": "tenant-object",
    "GET /console/catalog/lineage": "tenant-object",
    "GET /console/catalog/map": "tenant-list",
    "GET /console/catalog/assets": "tenant-list",
    "GET /console/catalog/harvest": "tenant-list",
    "POST /console/catalog/harvest": "tenant-create",
    "GET /console/catalog/harvest/job": "tenant-object",
    "GET /console/catalog/reported": "tenant-list",
    "GET /console/catalog/schema-changes": "tenant-list",
    "POST /console/catalog/schema-changes/accept": "tenant-object",
    "GET /console/catalog/detection": "tenant-object",
    "POST /console/catalog/detection": "tenant-object",
    "POST /console/catalog/detection/confirm": "tenant-object",
    "GET /console/catalog/profile": "tenant-object",
    "POST /console/catalog/profile": "tenant-create",
    "GET /console/catalog/profile/job": "tenant-object",
    "GET /console/catalog/access-requests": "tenant-list",
    "POST /console/catalog/access-requests": "tenant-create",
    "POST /console/catalog/access-requests/{request_id}/decision": "tenant-object",
    "GET /console/services": "tenant-list",
    "GET /console/services/{name}": "tenant-object",
    "GET /console/services/{name}/v{version}/openapi.json": "tenant-object",
    "POST /console/services/{name}/submit": "tenant-object",
    "POST /console/services/{name}/review": "tenant-object",
    "POST /console/services/{name}/v{version}/offline": "tenant-object",
    "POST /console/services/{name}/applications/{app_id}/decision": "tenant-object",
    "POST /console/services/{name}/applications/{app_id}/revoke": "tenant-object",
    "GET /console/topics": "tenant-list",
    "GET /console/topics/{name}": "tenant-object",
    "GET /console/topics/{name}/diff": "tenant-object",
    "GET /console/topics/{name}/messages": "tenant-object",
    "GET /console/quality/tickets": "tenant-list",
    "POST /console/quality/tickets": "tenant-create",
    "GET /console/quality/tickets/{ticket_id}": "tenant-object",
    "POST /console/quality/tickets/{ticket_id}/transition": "tenant-object",
    "POST /console/quality/tickets/{ticket_id}/comment": "tenant-object",
    "GET /console/quality/quarantine": "tenant-list",
    "POST /console/quality/quarantine/replay": "tenant-create",
    "POST /console/quality/quarantine/accept": "tenant-create",
    "POST /console/quality/quarantine/replay-jobs": "tenant-create",
    "GET /console/quality/quarantine/replay-jobs/job": "tenant-object",
    "GET /console/standards": "tenant-list",
    "GET /console/standards/{kind}/{code}": "tenant-object",
    "GET /console/standards/{kind}/{code}/diff": "tenant-object",
    "GET /console/standards/reviews": "tenant-list",
    "POST /console/standards/reviews/{rid}/decision": "tenant-object",
    "GET /console/standards/import": "shared-read",
    "POST /console/standards/import": "tenant-create",
    "GET /console/standards/export": "tenant-list",
    "GET /console/standards/edit": "tenant-object",
    "POST /console/standards/edit": "tenant-create",
    "POST /console/standards/{kind}/{code}/{action}": "tenant-object",
    "GET /console/standards/mapping": "tenant-object",
    "POST /console/standards/mapping": "tenant-object",
    "GET /console/admin": "tenant-list",
    "GET /console/admin/{section}": "tenant-list",
    "POST /console/admin/{section}": "tenant-create",
    "POST /console/admin/users/{username}/{action}": "tenant-object",
    "POST /console/admin/api-keys/{key_id}/revoke": "tenant-object",
    "GET /console/admin/{section}/{name}": "tenant-object",
    "POST /console/admin/{section}/{name}": "tenant-object",
}

METHODS = ("get", "post", "put", "patch", "delete")


def rule_for(method: str, template: str) -> str | None:
    return ROUTES.get(f"{method.upper()} {template}")


def operations(openapi: dict) -> list[str]:
    """Every operation of an OpenAPI document as "METHOD /path/template"."""
    return [f"{m.upper()} {path}" for path, item in openapi.get("paths", {}).items() for m in METHODS if m in item]


def undeclared(openapi: dict) -> list[str]:
    """Operations in the document without a rule here."""
    return [op for op in operations(openapi) if op not in ROUTES]


def stale(openapi: dict) -> list[str]:
    """Rules here for operations the document no longer has."""
    present = set(operations(openapi))
    return [op for op in ROUTES if op not in present]
