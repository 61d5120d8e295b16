"""E-mail delivery of alerts (the SMTP itself: deploy/mail.py). Channel shape (on the rule):

{"smtp_host": "mail.example", "smtp_port": 25, "from": "huiliu@example", "to": ["ops@example"],
 "starttls": false, "ssl": false, "username": null, "password": null, "timeout": 10}
"""

from __future__ import annotations

from deploy.mail import SmtpServer, send_mail


def send_email(
    channel: dict,
    subject: str,
    body: str,
    *,
    attachments: list[tuple[str, str, bytes]] = (),
    prefix: str = "[Huiliu alert]",
) -> None:
    """attachments: (file name, MIME type "maintype/subtype", bytes), e.g. a quality report's PDF."""
    to = channel.get("to") or []
    if isinstance(to, str):
        to = [to]
    if not to or not channel.get("smtp_host"):
        raise ValueError("e-mail channel needs smtp_host and to")
    server = SmtpServer(
        host=channel["smtp_host"],
        port=int(channel.get("smtp_port", 25)),
        starttls=bool(channel.get("starttls")),
        ssl=bool(channel.get("ssl")),
        user=channel.get("username") or "",
        password=channel.get("password") or "",
        sender=channel.get("from", "huiliu@localhost"),
        timeout=float(channel.get("timeout", 10)),
    )
    send_mail(server, to, f"{prefix} {subject}", body, attachments)
