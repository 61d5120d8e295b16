"""The caller's to-do list (issue 16), composed from the stores each part lives in; a section
appears only when the caller holds the permission to act on it.

    workbench(app, principal) -> {"user", "tenant", "counts": {section: n}, section: [...]}

Sections: `reviews` (open standards reviews of the caller's tenant submitted by someone else:
`standards:review`), `returned` (the caller's own rejected submissions whose items are still the
rejected drafts, to rework: `standards:manage`), `failed_jobs` (jobs the caller started that failed), `alerts` (unread
messages of the caller's tenants: `ops:view`), `tickets_assigned` (quality tickets assigned to the caller still waiting
for work) and `tickets_overdue` (tickets of the caller's tenants past their SLA): `metadata:view`.
"""

from __future__ import annotations

from typing import Any

from api.alerts import alert_engine_for
from api.jobs import job_manager
from api.quality.tickets import ticket_store
from api.standards import scope_of, standards_store
from quality_stream.tickets.model import LIVE

LIMIT = 50


def _still_returned(store, scope: str, review: dict[str, Any]) -> bool:
    """Some item of the rejected review is still the draft it was (not reworked and resubmitted)."""
    for item in review["items"]:
        try:
            latest = store.get(scope, item["kind"], item["code"])
        except LookupError:
            continue
        if latest["status"] == "draft" and latest["version"] == item["version"]:
            return True
    return False


def workbench(app, principal) -> dict[str, Any]:
    out: dict[str, Any] = {"user": principal.name, "tenant": principal.tenant}
    settings = app.state.settings
    if principal.can("standards:review"):
        open_reviews = standards_store(settings).reviews(scope_of(principal), "open", 1000)
        out["reviews"] = [r for r in open_reviews if r["author"] != principal.name][:LIMIT]
    if principal.can("standards:manage"):
        store, scope = standards_store(settings), scope_of(principal)
        rejected = [r for r in store.reviews(scope, "rejected", 1000) if r["author"] == principal.name]
        out["returned"] = [r for r in rejected if _still_returned(store, scope, r)][:LIMIT]
    failed = job_manager(app).store.list(state="failed", operator=principal.name, limit=LIMIT)
    out["failed_jobs"] = [{k: j.get(k) for k in ("id", "type", "error", "finished_at")} for j in failed]
    if principal.can("ops:view"):
        store = alert_engine_for(app).store
        out["alerts"] = store.messages(unread=True, limit=LIMIT, tenants=principal.visible_tenants())
    if principal.can("metadata:view"):
        tickets, scopes = ticket_store(settings), principal.visible_tenants()
        mine = tickets.list(scopes, assignee=principal.name, limit=200)[1]
        out["tickets_assigned"] = [t for t in mine if t["state"] in LIVE][:LIMIT]
        out["tickets_overdue"] = tickets.list(scopes, overdue=True, limit=LIMIT)[1]
        for t in out["tickets_assigned"] + out["tickets_overdue"]:
            t.pop("samples", None)  # the ticket page shows them, masked as the caller may see
            t.pop("base", None)
    out["counts"] = {k: len(v) for k, v in out.items() if isinstance(v, list)}
    return out
