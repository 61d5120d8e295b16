"""The audit log: who did what, when, from where, with what outcome. Append-only."""

from api.audit.log import AuditLog, audit_log_for


def audit_as(request, action: str, **detail) -> None:
    """Name the request's audit entry and give its details (the middleware writes the entry)."""
    request.state.audit_action = action
    request.state.audit_detail = detail


__all__ = ["AuditLog", "audit_as", "audit_log_for"]
