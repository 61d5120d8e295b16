"""Quality tickets by e-mail (issue 16), received by a real SMTP server (aiosmtpd, with AUTH) on the
test port block: a ticket opened at its rule's threshold mails its assignee (in their language,
Chinese by default); assigning one through the API mails the new assignee and posts to the message
centre; the API's monitor mails the assignee of an overdue ticket once. Addresses come from the
identity store (`email`, `lang` on the user); a user of another tenant is never mailed; the SMTP
password appears in no outcome and no log. The catalogue owner, lineage and quarantine samples are
the monitor Context's functions here (tests/test_quality_tickets.py drives the real ones)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import logging
import os
import time
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from api.quality.ticket_mail import mail_ticket
from api.quality.tickets import context, ticket_store
from quality_stream.tickets.monitor import Monitor, Watched
from quality_stream.tickets.thresholds import Threshold
from tests.api_process import api_client, wait_for  # noqa: F401 - fixture: api
from tests.conftest import PORT_BASE

SMTP_PORT = PORT_BASE + 725
SMTP_USER, SMTP_PASSWORD = "huiliu-notices", "Smtp-Granite-8812"
RUN = uuid.uuid4().hex[:6]
TENANT, OTHER = f"tm{RUN}", f"tx{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
URN = f"hl:dataset:kafka://b:9092/huiliu.hr.public.people_{RUN}"


class Inbox:
    def __init__(self):
        self.mails: list[tuple[list[str], email.message.EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str, containing: str = "") -> list[email.message.EmailMessage]:
        return [m for rcpt, m in self.mails if address in rcpt and containing in m["Subject"]]


def _authenticate(inbox: Inbox):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # refused: the server answers 535

    return check


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=SMTP_PORT, authenticator=_authenticate(box), auth_require_tls=False
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module", name="stack_settings")
def own_state_settings(stack_settings, tmp_path_factory):
    """Own SQLite control DB (the test opens tickets in it directly, as the monitor does) and the
    deployment's SMTP settings pointing at the local server."""
    os.environ["HUILIU_QUALITY_TICKETS_TICK"] = "1"  # the API's monitor looks every second
    yield stack_settings.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("ticket-mail"),
            "control_db_url": "",
            "smtp_host": "127.0.0.1",
            "smtp_port": SMTP_PORT,
            "smtp_user": SMTP_USER,
            "smtp_password": SecretStr(SMTP_PASSWORD),
            "smtp_from": "huiliu@gov.test",
        }
    )
    os.environ.pop("HUILIU_QUALITY_TICKETS_TICK", None)


def _person(api, name: str, tenant: str, **fields) -> str:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, **fields})
    assert r.status_code == 201, r.text
    return name


def _monitor(settings, owner: str) -> Monitor:
    """The API's own monitor wiring (store, message centre, e-mail) with the catalogue owner given."""
    ctx = dataclasses.replace(
        context(settings),
        owner=lambda scope, urn: (owner, "户籍科"),
        downstream=lambda scope, urn: [],
        samples=lambda pipeline, rule: [],
    )
    return Monitor(ticket_store(settings), ctx)


def _open(settings, owner: str, pipeline: str, rule: str, sla_hours: float = 72) -> int:
    store = ticket_store(settings)
    store.set_threshold(TENANT, pipeline, rule, Threshold(min_failed=3, sla_hours=sla_hours), "admin")
    counts = {"read": 40, "quarantined": 3, f"quarantined.{rule}": 3}
    out = _monitor(settings, owner).tick([Watched(TENANT, pipeline, URN, counts)])
    assert len(out["opened"]) == 1, out
    return out["opened"][0]


def _mailed(settings, ticket_id: int) -> list[dict]:
    return [e for e in ticket_store(settings).events(ticket_id) if e["kind"] == "mailed"]


def test_threshold_assignment_and_overdue_are_mailed(api, inbox, stack_settings):
    ana = _person(api, f"{TENANT}-ana", TENANT, email=f"ana.{RUN}@gov.test")  # no lang: Chinese
    ben = _person(api, f"{TENANT}-ben", TENANT, email=f"ben.{RUN}@gov.test", lang="en")
    eve = _person(api, f"{OTHER}-eve", OTHER, email=f"eve.{RUN}@gov.test")
    assert api.get(f"/users/{ben}").json()["email"] == f"ben.{RUN}@gov.test"
    bad = api.patch(f"/users/{ana}", json={"email": "ana at gov"})
    assert bad.status_code == 422 and "email" in bad.text

    # a rule's failures cross the threshold: the ticket opens assigned to the owner, who is mailed
    ticket_id = _open(stack_settings, ana, f"pm{RUN}", "r.code")
    opened = wait_for(lambda: inbox.to(f"ana.{RUN}@gov.test", f"#{ticket_id}"), 10)
    assert "失败超过阈值" in opened[0]["Subject"] and opened[0]["From"] == "huiliu@gov.test"
    body = opened[0].get_content()
    assert f"#{ticket_id}" in body and URN in body and "r.code" in body and "有效性" in body
    assert inbox.logins and inbox.logins[-1] == SMTP_USER

    # assigned through the API: the new assignee hears in English, the message centre in both
    r = api.post(f"/quality/tickets/{ticket_id}/transitions", json={"action": "assign", "assignee": ben})
    assert r.status_code == 200, r.text
    assigned = wait_for(lambda: inbox.to(f"ben.{RUN}@gov.test", f"#{ticket_id}"), 10)
    assert assigned[0]["Subject"] == f"[Huiliu] Quality ticket #{ticket_id} is assigned to you"
    assert "Rule: r.code (validity)" in assigned[0].get_content()
    messages = api.get("/messages", params={"limit": 50}).json()
    items = messages["items"] if isinstance(messages, dict) else messages
    assert any(f"#{ticket_id}" in m["subject"] and "已分派给您" in m["subject"] for m in items), items

    # a name that is an account of another tenant: nobody there is mailed, the history says why
    r = api.post(f"/quality/tickets/{ticket_id}/transitions", json={"action": "assign", "assignee": eve})
    assert r.status_code == 200, r.text
    last = wait_for(lambda: [e for e in _mailed(stack_settings, ticket_id) if e["body"]["to"] == eve], 10)
    assert last[0]["body"] == {
        "event": "assigned",
        "to": eve,
        "sent": False,
        "why": "not a user of the ticket's tenant",
    }
    assert not inbox.to(f"eve.{RUN}@gov.test")

    # overdue: the API's monitor (every second) escalates once and mails the assignee in Chinese
    late_id = _open(stack_settings, ana, f"pl{RUN}", "r.late", sla_hours=0.0005)  # due in 1.8 s
    overdue = wait_for(lambda: inbox.to(f"ana.{RUN}@gov.test", f"#{late_id} 已超期"), 30, 0.5)
    assert f"#{late_id}" in overdue[0].get_content() and "r.late" in overdue[0].get_content()
    time.sleep(2.5)  # two more monitor passes: still one mail
    assert len(inbox.to(f"ana.{RUN}@gov.test", f"#{late_id} 已超期")) == 1
    sent = [e["body"] for e in _mailed(stack_settings, late_id)]
    assert {"event": "escalated", "to": ana, "sent": True} in sent


def test_refused_login_is_noted_without_the_password(inbox, stack_settings, caplog):
    wrong = stack_settings.model_copy(update={"smtp_password": SecretStr("Not-The-Password-5521")})
    ticket = {"id": 0, "tenant": TENANT, "assignee": None}
    assert mail_ticket(wrong, ticket_store(wrong), "assigned", ticket) is None  # nobody to tell
    owner = f"{TENANT}-cai"
    from api.identity.store import store_for

    store_for(wrong.resolved_control_db_url).create_user(owner, PASSWORD, tenant=TENANT, email=f"cai.{RUN}@gov.test")
    ticket_id = _open(wrong, owner, f"pw{RUN}", "r.pw")  # the monitor's own mail fails the same way
    with caplog.at_level(logging.WARNING):
        outcome = mail_ticket(wrong, ticket_store(wrong), "assigned", ticket_store(wrong).get(None, ticket_id))
    assert outcome["sent"] is False and "SMTPAuthenticationError" in outcome["error"], outcome
    assert "Not-The-Password-5521" not in outcome["error"] and "Not-The-Password-5521" not in caplog.text
    assert not inbox.to(f"cai.{RUN}@gov.test")
    off = stack_settings.model_copy(update={"smtp_host": ""})
    assert mail_ticket(off, ticket_store(off), "assigned", ticket_store(off).get(None, ticket_id)) is None
