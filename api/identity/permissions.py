"""The permission catalogue and the built-in roles.

Permissions are `<resource>:<operation>` strings. Roles may hold wildcards (`*`, `pipeline:*`,
`*:view`) so routers added later by other modules are covered by the admin role without editing
this file. The catalogue lists the known ones for consoles; unknown well-formed names are allowed.
"""

from __future__ import annotations

import re

PERMISSION_PATTERN = r"^(\*|[a-z][a-z0-9_\-]*):(\*|[a-z][a-z0-9_\-]*)$|^\*$"
_PERMISSION_RE = re.compile(PERMISSION_PATTERN)

CATALOGUE: dict[str, str] = {
    "pipeline:view": "read pipeline documents, versions, graphs, statistics",
    "pipeline:create": "create pipelines",
    "pipeline:edit": "save new versions, roll back",
    "pipeline:delete": "delete pipelines",
    "pipeline:deploy": "start and stop pipelines",
    "data:view": "read business data (samples, previews, quarantine contents)",
    "connector:manage": "create and change source/sink connections",
    "ops:view": "health, metrics, stage counters",
    "audit:view": "read the audit log",
    "imports:view": "see import jobs and their results",
    "jobs:manage": "trigger and cancel jobs",
    "schedules:manage": "create and change schedules",
    "alerts:manage": "alert rules and notifications",
    "metadata:view": "technical and business metadata, lineage",
    "metadata:manage": "edit business metadata",
    "standards:view": "read data standards, code sets, reviews, mappings and conformance",
    "standards:manage": "data standards and code sets: drafts, imports, submitting for review, field mappings",
    "standards:review": "approve or reject submitted standards (never one's own), retire published ones",
    "quality:manage": "quality rules and tickets",
    "users:manage": "users, groups, roles, API keys",
    "services:manage": "data services: service documents, drafts, submitting for review",
    "services:review": "publish or reject submitted services (never one's own), take versions offline",
    "services:apply": "list services, apply for them; the owner decides and revokes applications",
}

BUILTIN_ROLES: dict[str, dict] = {
    "admin": {"description": "everything inside the tenant, including users", "permissions": ["*"]},
    "operator": {
        "description": "runs and watches pipelines",
        "permissions": [
            "pipeline:view",
            "pipeline:deploy",
            "ops:view",
            "jobs:manage",
            "schedules:manage",
            "alerts:manage",
            "imports:view",
            "metadata:view",
        ],
    },
    "developer": {
        "description": "designs pipelines and connections",
        "permissions": [
            "pipeline:view",
            "pipeline:create",
            "pipeline:edit",
            "pipeline:delete",
            "connector:manage",
            "data:view",
            "ops:view",
            "imports:view",
            "metadata:view",
            "metadata:manage",
            "standards:view",
            "standards:manage",
            "quality:manage",
        ],
    },
    "viewer": {
        "description": "reads pipelines and operations",
        "permissions": ["pipeline:view", "ops:view", "imports:view", "metadata:view"],
    },
}


def is_valid(permission: str) -> bool:
    return bool(_PERMISSION_RE.match(permission))


def grants(held: frozenset[str] | set[str], permission: str) -> bool:
    """True when the held set covers `permission` directly or through a wildcard."""
    if permission in held or "*" in held:
        return True
    if ":" not in permission:
        return False
    resource, op = permission.split(":", 1)
    return f"{resource}:*" in held or f"*:{op}" in held
