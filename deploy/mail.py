"""Sending e-mail over SMTP (smtplib): the one place that speaks SMTP, for alert channels
(api/alerts/notify.py) and for notices to people (quality tickets, api/quality/ticket_mail.py).

    server = smtp_server(settings)          # None while HUILIU_SMTP_HOST is unset: e-mail is off
    send_mail(server, ["a@x.cn"], subject, body, attachments=[("r.pdf", "application/pdf", b"...")])

The password is handed to the server's AUTH only; `SmtpServer`'s repr and every error raised here
leave it out, so logging a failure never shows it.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False  # SMTP over TLS from the first byte (port 465)
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "huiliu@localhost"
    timeout: float = 10.0


def smtp_server(settings) -> SmtpServer | None:
    """The deployment's mail server from its settings, or None when e-mail is off."""
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    return SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        user=settings.smtp_user,
        password=password,
        sender=settings.smtp_from,
        timeout=settings.smtp_timeout_s,
    )


def send_mail(
    server: SmtpServer,
    to: list[str],
    subject: str,
    body: str,
    attachments: list[tuple[str, str, bytes]] | tuple = (),
) -> None:
    """attachments: (file name, MIME type "maintype/subtype", bytes). Raises OSError or
    smtplib.SMTPException when the server cannot be reached or refuses the message."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = server.sender
    msg["To"] = ", ".join(to)
    msg.set_content(body)
    for name, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    cls = smtplib.SMTP_SSL if server.ssl else smtplib.SMTP
    with cls(server.host, server.port, timeout=server.timeout) as smtp:
        if server.starttls:
            smtp.starttls()
        if server.user:
            try:
                smtp.login(server.user, server.password)
            except smtplib.SMTPAuthenticationError as exc:  # the reply, never the password sent
                raise smtplib.SMTPAuthenticationError(exc.smtp_code, f"login as {server.user} refused") from None
        smtp.send_message(msg)
