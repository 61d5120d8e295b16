"""E-mail delivery of alerts over SMTP (smtplib). Channel shape (on the rule):

{"smtp_host": "mail.example", "smtp_port": 25, "from": "huiliu@example", "to": ["ops@example"],
 "starttls": false, "ssl": false, "username": null, "password": null, "timeout": 10}
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage


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
    msg = EmailMessage()
    msg["Subject"] = f"{prefix} {subject}"
    msg["From"] = channel.get("from", "huiliu@localhost")
    msg["To"] = ", ".join(to)
    msg.set_content(body)
    for name, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    cls = smtplib.SMTP_SSL if channel.get("ssl") else smtplib.SMTP
    with cls(
        channel["smtp_host"], int(channel.get("smtp_port", 25)), timeout=float(channel.get("timeout", 10))
    ) as smtp:
        if channel.get("starttls"):
            smtp.starttls()
        if channel.get("username"):
            smtp.login(channel["username"], channel.get("password") or "")
        smtp.send_message(msg)
