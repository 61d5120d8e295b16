"""The audit log: who did what, when, from where, with what outcome. Append-only."""
from api.audit.log import AuditLog, audit_log_for

__all__ = ["AuditLog", "audit_log_for"]
