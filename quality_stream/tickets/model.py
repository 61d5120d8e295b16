"""What a quality ticket is: its dimensions, states, resolutions, and the errors the domain raises
(each with an English and a Chinese message and the HTTP status it means)."""

from __future__ import annotations

DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness")
STATES = ("open", "assigned", "in_progress", "resolved", "verified", "closed", "reopened")
RESOLUTIONS = ("fixed_at_source", "fixed_in_platform_replayed", "waived")
LIVE = ("open", "assigned", "in_progress", "reopened")  # waiting for someone: the SLA runs
SYSTEM = "system"  # the actor of what the monitor does


class TicketError(Exception):
    status = 422

    def __init__(self, message: str, message_zh: str, field: str | None = None):
        super().__init__(message)
        self.message_zh = message_zh
        self.field = field

    def detail(self) -> dict:
        return {"message": str(self), "message_zh": self.message_zh, "field": self.field}


class BadInput(TicketError):
    status = 422


class NotFound(TicketError):
    status = 404


class IllegalTransition(TicketError):
    status = 409
