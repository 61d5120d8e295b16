"""Quality ticket notices by e-mail: the assignee's address and language from the identity store,
the text from quality_stream/tickets/notices.py, the server from the SMTP settings (deploy/mail.py).

    mail_ticket(settings, store, "assigned" | "opened" | "escalated", ticket) -> {"to", "sent", ...} | None
    announce_assignment(settings, store, ticket)   # message centre + e-mail, after a person assigns it

Off (None, nothing noted) while HUILIU_SMTP_HOST is unset. Otherwise the outcome is noted in the
ticket's history ("mailed": who, sent or why not; never the address or the server's password). Only
a person of the ticket's tenant is mailed: an assignee name that is someone else's account elsewhere
gets nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from api.identity.store import store_for
from deploy.mail import send_mail, smtp_server
from deploy.messages import post_message
from quality_stream.tickets.notices import notice
from quality_stream.tickets.store import TicketStore

log = logging.getLogger(__name__)


def _recipient(settings, username: str, scope: str) -> tuple[dict | None, str]:
    """(the user, "") when they may be mailed about a ticket of `scope`, else (None, why not)."""
    user = store_for(settings.resolved_control_db_url).user(username)
    if user is None or user["disabled"]:
        return None, "no such user"
    in_tenant = user["superuser"] or user["tenant"] == (scope or None) or {"*", scope} & set(user["tenants"])
    if not in_tenant:
        return None, "not a user of the ticket's tenant"
    if not user.get("email"):
        return None, "no e-mail address"
    return user, ""


def mail_ticket(settings, store: TicketStore, event: str, ticket: dict[str, Any]) -> dict | None:
    server = smtp_server(settings)
    if server is None or not ticket.get("assignee"):
        return None
    user, why = _recipient(settings, ticket["assignee"], ticket.get("tenant") or "")
    outcome: dict[str, Any] = {"event": event, "to": ticket["assignee"], "sent": False}
    if user is None:
        outcome["why"] = why
    else:
        subject, body = notice(event, ticket, user.get("lang"))
        try:
            send_mail(server, [user["email"]], subject, body)
            outcome["sent"] = True
        except Exception as exc:  # a mail server down never fails the ticket's change
            log.warning("quality ticket %s: e-mail to %s failed: %s", ticket["id"], ticket["assignee"], exc)
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
    store.note(ticket["id"], "mailed", outcome)
    return outcome


def announce_assignment(settings, store: TicketStore, ticket: dict[str, Any]) -> dict | None:
    """A person assigned the ticket: the tenant's message centre (both languages) and the assignee's
    mailbox (their language) hear of it."""
    zh, en = notice("assigned", ticket, "zh"), notice("assigned", ticket, "en")
    post_message(
        settings.resolved_control_db_url,
        "quality",
        "info",
        f"{zh[0]} / {en[0]}",
        f"{zh[1]}\n\n{en[1]}",
        tenant=ticket.get("tenant"),
    )
    return mail_ticket(settings, store, "assigned", ticket)
