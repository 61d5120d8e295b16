"""Alert rules over HTTP: e-mail to a local aiosmtpd server, message centre, throttling."""

from __future__ import annotations

import email
import time

import httpx
import pytest
from aiosmtpd.controller import Controller

from deploy.control import StageCounters
from tests.api_process import api_client, wait_for  # noqa: F401 - fixture: api

SMTP_PORT = 30310


@pytest.fixture(scope="module", name="stack_settings")
def own_state_settings(stack_settings, tmp_path_factory):
    """Own control DB (these tests write stage counters the API process reads back), and the local
    SMTP server on the allow-list of hosts alert e-mails may go to."""
    return stack_settings.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("own-state"),
            "control_db_url": "",
            "probe_allow": [f"127.0.0.1:{SMTP_PORT}"],
        }
    )


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self, containing: str = "") -> list[str]:
        return [m["Subject"] for m in self.messages if containing in m["Subject"]]


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield box
    controller.stop()


CHANNEL = {
    "smtp_host": "127.0.0.1",
    "smtp_port": SMTP_PORT,
    "from": "huiliu@test.local",
    "to": ["ops@test.local"],
    "password": "s3cret",
}


def test_failed_task_sends_an_email_and_a_message(api, inbox):
    r = api.post(
        "/alerts/rules",
        json={
            "name": "tasks-failing",
            "kind": "task_failed",
            "params": {"schedule": "nightly"},
            "channel": CHANNEL,
            "interval_seconds": 1,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["channel"]["password"] == "****"  # never handed back
    api.post("/schedules", json={"name": "nightly", "action": "fail", "params": {"message": "table locked"}})
    api.post("/schedules/nightly/run")
    wait_for(lambda: inbox.subjects("task failed: schedule nightly"), timeout=20)
    mail = [m for m in inbox.messages if "nightly" in m["Subject"]][0]
    assert mail["To"] == "ops@test.local" and "table locked" in mail.get_payload()
    msgs = api.get("/messages", params={"rule": "tasks-failing"}).json()
    assert msgs and msgs[0]["delivery"] == "sent" and msgs[0]["category"] == "alert"
    assert "table locked" in msgs[0]["body"]


def test_repeated_alerts_are_throttled(api, inbox, stack_settings):
    counters = StageCounters(stack_settings.resolved_control_db_url, "alert-q")
    counters.reset()
    counters.add("runner", {"read": 10, "valid": 6, "quarantined": 4, "quarantined.phone_format": 4})
    r = api.post(
        "/alerts/rules",
        json={
            "name": "quarantine-high",
            "kind": "quarantine_rate",
            "params": {"pipeline": "alert-q", "threshold_pct": 20},
            "channel": CHANNEL,
            "interval_seconds": 1,
            "throttle_seconds": 3600,
        },
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: inbox.subjects("pipeline alert-q"), timeout=15)
    time.sleep(3)  # evaluated ~3 more times: all throttled
    assert len(inbox.subjects("pipeline alert-q")) == 1
    assert api.post("/alerts/rules/quarantine-high/evaluate").json()["alerts"][0]["outcome"] == "throttled"
    assert len(api.get("/messages", params={"rule": "quarantine-high"}).json()) == 1
    body = api.get("/messages", params={"rule": "quarantine-high"}).json()[0]["body"]
    assert "40.0%" in body and "phone_format" in body
    # A short window lets it through again, and says how many repeats were held back.
    api.patch("/alerts/rules/quarantine-high", json={"throttle_seconds": 2})
    wait_for(lambda: len(inbox.subjects("pipeline alert-q")) == 2, timeout=15)
    latest = api.get("/messages", params={"rule": "quarantine-high"}).json()[0]
    assert "suppressed" in latest["body"]
    api.patch("/alerts/rules/quarantine-high", json={"enabled": False})


def test_rate_below_threshold_raises_nothing(api, stack_settings):
    counters = StageCounters(stack_settings.resolved_control_db_url, "alert-ok")
    counters.reset()
    counters.add("runner", {"valid": 99, "quarantined": 1})
    api.post(
        "/alerts/rules",
        json={
            "name": "quarantine-ok",
            "kind": "quarantine_rate",
            "enabled": False,
            "params": {"pipeline": "alert-ok", "threshold_pct": 5},
        },
    )
    assert api.post("/alerts/rules/quarantine-ok/evaluate").json() == {"alerts": []}


def test_sink_down_and_consumer_lag_rules_without_email(api):
    api.post(
        "/alerts/rules",
        json={
            "name": "sink-gone",
            "kind": "sink_down",
            "enabled": False,
            "params": {"pipeline": "never-started", "for_seconds": 0},
        },
    )
    out = api.post("/alerts/rules/sink-gone/evaluate").json()["alerts"]
    assert out[0]["subject"] == "sink down: never-started" and out[0]["delivery"] == "none"
    assert api.get("/messages", params={"rule": "sink-gone"}).json()[0]["subject"] == "sink down: never-started"
    api.post(
        "/alerts/rules",
        json={
            "name": "lag-wait",
            "kind": "sink_down",
            "enabled": False,
            "params": {"pipeline": "never-started", "for_seconds": 3600},
        },
    )
    assert api.post("/alerts/rules/lag-wait/evaluate").json() == {"alerts": []}  # not down long enough yet


def test_bad_rules_are_refused(api):
    assert api.post("/alerts/rules", json={"name": "r1", "kind": "cpu_hot"}).status_code == 422
    assert (
        api.post(
            "/alerts/rules", json={"name": "r2", "kind": "quarantine_rate", "params": {"pipeline": "p"}}
        ).status_code
        == 422
    )
    assert httpx.get(str(api.base_url) + "/messages").status_code == 401
