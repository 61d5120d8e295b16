"""The console's routes under /console (left out of the OpenAPI document: pages, not API).

Each route's tenant rule is in api/tenancy_rules.py CONSOLE_ROUTES; tests/test_console.py checks
that every route here has one."""

from __future__ import annotations

from fastapi import APIRouter

from api.console import (
    pages_admin,
    pages_admin_edit,
    pages_auth,
    pages_catalog,
    pages_catalog_assets,
    pages_catalog_profile,
    pages_connectors,
    pages_ops,
    pages_pipeline_editor,
    pages_pipelines,
    pages_quality,
    pages_reports,
    pages_schedules,
    pages_schema_changes,
    pages_services,
    pages_sharing,
    pages_standards,
    pages_standards_edit,
    pages_standards_mapping,
    pages_topics,
)

router = APIRouter(prefix="/console", include_in_schema=False)
PAGES = (
    pages_auth,
    pages_ops,
    pages_connectors,
    pages_pipeline_editor,  # before pages_pipelines: its POST .../edit is not a deploy action
    pages_pipelines,
    pages_schedules,
    pages_catalog,
    pages_catalog_assets,
    pages_catalog_profile,
    pages_schema_changes,
    pages_topics,
    pages_standards_mapping,
    pages_standards,
    pages_standards_edit,  # after pages_standards: its POST .../{action} is not a review decision
    pages_admin,
    pages_admin_edit,
    pages_services,
    pages_sharing,
    pages_reports,
    pages_quality,
)
for module in PAGES:
    router.include_router(module.router)
