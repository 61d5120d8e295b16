"""The alert loop: evaluates each enabled rule every `interval_seconds`, records a message in the
message centre and e-mails it, unless the same (rule, subject) was sent within `throttle_seconds`
(throttled repeats are counted and mentioned in the next message).

A rule acts in its tenant: its messages carry the rule's tenant, and a rule whose params point at
another tenant's pipeline, schedule, connector or consumer group (say, the pipeline moved) is not
evaluated (api.scoping.target_problem)."""

from __future__ import annotations

import logging
import threading
import time

from api.alerts.notify import send_email
from api.alerts.rules import KINDS
from api.alerts.store import AlertStore
from api.scoping import target_problem
from connectors.probes import HostRefused, check_host
from deploy.settings import Settings

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(self, settings: Settings, tick_seconds: float = 1.0):
        self.settings = settings
        self.store = AlertStore(settings.resolved_control_db_url, settings.state_dir)
        self.tick_seconds = tick_seconds
        self._last_eval: dict[str, float] = {}
        self._memory: dict[str, dict] = {}  # per rule, e.g. when a sink was first seen down
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.time()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            now = time.time()
            for rule in self.store.rules(redact=False):
                if rule["enabled"] and now - self._last_eval.get(rule["id"], 0) >= rule["interval_seconds"]:
                    try:
                        self.evaluate(rule)
                    except Exception:  # one broken rule must not silence the others
                        log.exception("alert rule %s failed to evaluate", rule["name"])

    def evaluate(self, rule: dict) -> list[dict]:
        """Evaluate one rule now; returns what happened to each alert (sent / throttled)."""
        now = time.time()
        since = self._last_eval.get(rule["id"], self._started)
        self._last_eval[rule["id"]] = now
        tenant = rule.get("tenant")
        problem = target_problem(self.settings, tenant, rule["params"])
        if problem:
            log.warning("alert rule %s not evaluated: %s", rule["name"], problem, extra={"tenant": tenant})
            return [{"outcome": "refused", "reason": problem}]
        alerts = KINDS[rule["kind"]](rule, self.settings, self._memory.setdefault(rule["id"], {}), since)
        outcomes = []
        for alert in alerts:
            suppressed = self.store.claim(rule["id"], alert.subject, rule["throttle_seconds"])
            if suppressed is None:
                outcomes.append({"subject": alert.subject, "outcome": "throttled"})
                continue
            body = alert.body + (f"\n\n({suppressed} repeat(s) suppressed since the last notice)" if suppressed else "")
            mid = self.store.add_message("alert", alert.level, alert.subject, body, rule["id"], "pending", tenant)
            delivery = "none"
            if rule["channel"]:
                try:
                    # the SMTP host is the rule's choice: only on the tenant's allow-list (issue 20)
                    channel = rule["channel"]
                    port = int(channel.get("smtp_port", 25))
                    check_host(self.settings, tenant, str(channel.get("smtp_host") or ""), port, "channel.smtp_host")
                    send_email(channel, alert.subject, f"Rule: {rule['name']}\n\n{body}")
                    delivery = "sent"
                except HostRefused as exc:
                    delivery = f"refused: {exc}"
                except Exception as exc:  # recorded on the message; the alert is still in the centre
                    # no driver text: refused / timed out / not SMTP must look alike (no port probing)
                    delivery = "failed: the e-mail could not be delivered"
                    log.warning(
                        "alert e-mail for rule %s failed: %s",
                        rule["name"],
                        type(exc).__name__,
                        extra={"tenant": tenant},
                    )
            self.store.set_delivery(mid, delivery)
            log.warning("alert %s: %s (%s)", rule["name"], alert.subject, delivery, extra={"tenant": tenant})
            outcomes.append({"subject": alert.subject, "outcome": "sent", "message_id": mid, "delivery": delivery})
        return outcomes
