"""The API's routers, one module per resource, each defining `router: fastapi.APIRouter`.

`ROUTERS` lists them: api/app.py includes exactly these, so reading it tells what the API serves.
A new router is added here (and its routes to api/tenancy_rules.py).
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

ROUTERS = (
    "auth",
    "identity",
    "pipelines",
    "pipeline_deploy",
    "components",
    "connectors",
    "imports",
    "metadata",
    "standards",
    "standard_files",
    "standard_mappings",
    "services",
    "service_sharing",
    "access_requests",
    "service_topics",
    "detection",
    "quality",
    "quality_accept",
    "quality_tickets",
    "quality_reports",
    "workbench",
    "jobs",
    "schedules",
    "alerts",
    "messages",
    "audit",
    "logs",
    "operations",
    "ops_lag",
    "topics",
    "metrics",
    "liveness",
    "console",
)


def all_routers() -> list[APIRouter]:
    return [importlib.import_module(f"{__name__}.{name}").router for name in ROUTERS]
