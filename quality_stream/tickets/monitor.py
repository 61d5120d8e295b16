"""The ticket monitor: one pass over what the runners counted. Per pipeline and rule it opens a
ticket when the rule's failures in the window cross the threshold, counts new failures into the
live ticket (never one ticket per record), verifies a resolved ticket once new records passed the
rule, reopens one whose failures came back, and escalates overdue tickets once. The assignee of a ticket
opened at the threshold and of an escalated one is also told by `Context.mail` (e-mail).

The wiring hands in what lives above the domain (catalogue owners, lineage, the quarantine topic,
the message centre) as a `Context`:

    Watched(scope, pipeline, dataset_urn, counts)   # counts: the runner stage's cumulative counters
    Monitor(store, context).tick(watched_list) -> {"opened": [...], "verified": [...], ...}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quality_stream.tickets.model import DIMENSIONS, LIVE, SYSTEM
from quality_stream.tickets.store import TicketStore
from quality_stream.tickets.thresholds import delta, window

log = logging.getLogger(__name__)
PREFIX = "quarantined."
SAMPLE_EVERY = 300.0  # seconds: a sample is also kept when nothing changed, so windows have a start


@dataclass
class Watched:
    scope: str
    pipeline: str
    dataset_urn: str
    counts: dict[str, int]


@dataclass
class Context:
    owner: Callable[[str, str], tuple[str | None, str | None]]  # (scope, urn) -> (owner, department)
    downstream: Callable[[str, str], list[dict]]  # (scope, urn) -> [{"dataset", "owner"}]
    samples: Callable[[str, str], list[dict]]  # (pipeline, rule) -> quarantined records, newest first
    post: Callable[[str, str, str, str], int]  # (scope, level, subject, body) -> message id
    # (event, ticket): tell the person the ticket concerns by e-mail (notices.EVENTS); no-op: no e-mail
    mail: Callable[[str, dict], Any] = field(default=lambda event, ticket: None)
    window_keep: Callable[[str], float] = field(default=lambda scope: 3600.0)


def dimension_of(records: list[dict], rule: str) -> str:
    for rec in records:
        for v in rec.get("violations") or []:
            if v.get("rule_id") == rule and v.get("dimension") in DIMENSIONS:
                return v["dimension"]
    return "validity"


class Monitor:
    def __init__(self, store: TicketStore, context: Context):
        self.store = store
        self.ctx = context

    def tick(self, watched: list[Watched]) -> dict[str, list]:
        out: dict[str, list] = {"opened": [], "counted": [], "verified": [], "reopened": [], "escalated": []}
        for w in watched:
            try:
                self._pipeline(w, out)
            except Exception:  # one pipeline's trouble must not stop the others
                log.exception("quality tickets: pipeline %s not checked", w.pipeline)
        for ticket in self.store.overdue_unescalated():
            if self.store.mark_escalated(ticket["id"], None):
                mid = self.ctx.post(ticket["tenant"] or "", "warning", *escalation_text(ticket))
                self.store.note(ticket["id"], "escalated", {"message_id": mid})
                self._mail("escalated", ticket)
                out["escalated"].append(ticket["id"])
        return out

    def _pipeline(self, w: Watched, out: dict[str, list]) -> None:
        samples = self.store.samples(w.pipeline)
        prev = samples[-1][1] if samples else None
        now_ts = samples[-1][0] if samples else 0.0
        rules = {k[len(PREFIX) :] for k in w.counts if k.startswith(PREFIX)}
        now = time.time()
        for rule in sorted(rules):
            key = PREFIX + rule
            threshold = self.store.threshold_for(w.scope, w.pipeline, rule)
            latest = self.store.latest(w.scope, w.dataset_urn, rule)
            new_failed, new_read = delta(w.counts, prev, key), delta(w.counts, prev, "read")
            if latest and latest["state"] in LIVE:
                if new_failed:
                    self.store.add_counts(latest["id"], new_failed, new_read)
                    out["counted"].append(latest["id"])
                continue
            if latest and latest["resolution"] == "waived":
                continue  # accepted: its failures neither reopen it nor open another
            if latest and latest["state"] in ("resolved", "verified", "closed"):
                self._after_resolution(w, latest, key, threshold.verify_min_records, out)
                continue
            base = window(samples, now, threshold.window_seconds)
            failed, read = delta(w.counts, base, key), delta(w.counts, base, "read")
            if threshold.crossed(failed, read):
                self._open(w, rule, failed, read, threshold.sla_hours, out)
        for latest in self.store.resolved_of(w.pipeline):  # rules with no failure counted at all
            if PREFIX + latest["rule"] not in w.counts and latest["dataset"] == w.dataset_urn:
                self._after_resolution(w, latest, PREFIX + latest["rule"], 1, out)
        if prev != w.counts or now - now_ts >= SAMPLE_EVERY:
            self.store.add_sample(w.pipeline, w.counts, self.ctx.window_keep(w.scope))

    def _after_resolution(self, w: Watched, ticket: dict, key: str, verify_min: int, out) -> None:
        base_read, base_failed = ticket["base"]
        failed_now, read_now = int(w.counts.get(key, 0)), int(w.counts.get("read", 0))
        came_back = failed_now - base_failed if failed_now >= base_failed else failed_now
        passed = read_now - base_read if read_now >= base_read else read_now
        if came_back > 0:
            self.store.reopen(ticket["id"], came_back, passed)
            self._notify(ticket, reopened=True)
            out["reopened"].append(ticket["id"])
        elif ticket["state"] == "resolved" and passed >= verify_min:
            self.store.verify(ticket["id"], passed)
            out["verified"].append(ticket["id"])

    def _open(self, w: Watched, rule: str, failed: int, read: int, sla_hours: float, out) -> None:
        try:
            records = self.ctx.samples(w.pipeline, rule)
        except Exception:  # the ticket opens without samples rather than not at all
            log.warning("quality tickets: no samples of %s / %s", w.pipeline, rule, exc_info=True)
            records = []
        owner, department = self.ctx.owner(w.scope, w.dataset_urn)
        ticket, created = self.store.open(
            w.scope,
            pipeline=w.pipeline,
            dataset_urn=w.dataset_urn,
            rule=rule,
            dimension=dimension_of(records, rule),
            failed=failed,
            evaluated=read,
            samples=records[:5],
            assignee=owner,
            department=department,
            actor=SYSTEM,
            origin="auto",
            sla_hours=sla_hours,
        )
        if created:
            self._notify(ticket)
            if ticket["assignee"]:
                self._mail("opened", ticket)
            out["opened"].append(ticket["id"])
        else:
            out["counted"].append(ticket["id"])

    def _mail(self, event: str, ticket: dict) -> None:
        try:
            self.ctx.mail(event, ticket)
        except Exception:  # a mail server's trouble never stops the monitor
            log.warning("quality tickets: ticket %s not mailed (%s)", ticket["id"], event, exc_info=True)

    def _notify(self, ticket: dict, reopened: bool = False) -> list[str]:
        return notify_downstream(self.store, self.ctx, ticket, reopened)


def notify_downstream(store: TicketStore, ctx: Context, ticket: dict, reopened: bool = False) -> list[str]:
    """A message to each owner of a dataset downstream of the ticket's (other than its assignee)."""
    owners: dict[str, list[str]] = {}
    for node in ctx.downstream(ticket["tenant"] or "", ticket["dataset"]):
        if node.get("owner") and node["owner"] != ticket["assignee"] and node["dataset"] != ticket["dataset"]:
            owners.setdefault(node["owner"], []).append(node["dataset"])
    ids = []
    for owner, datasets in sorted(owners.items()):
        verb, verb_zh = ("reopened", "重新打开") if reopened else ("opened", "新建")
        subject = (
            f"上游数据质量工单 #{ticket['id']} {verb_zh}（{owner} 负责的下游数据）/ "
            f"Upstream quality ticket #{ticket['id']} {verb} for {owner}'s downstream data"
        )
        body = (
            f"工单 / ticket #{ticket['id']}: {ticket['dataset']} rule {ticket['rule']} ({ticket['dimension']})\n"
            f"下游数据 / your downstream datasets: {', '.join(datasets)}"
        )
        ids.append(ctx.post(ticket["tenant"] or "", "info", subject, body))
    if owners:
        store.note(ticket["id"], "notified", {"owners": sorted(owners), "message_ids": ids})
    return sorted(owners)


def escalation_text(ticket: dict[str, Any]) -> tuple[str, str]:
    who = ticket["assignee"] or "未分派 / unassigned"
    subject = f"质量工单 #{ticket['id']} 已超期 / Quality ticket #{ticket['id']} is overdue ({who})"
    body = (
        f"{ticket['dataset']} rule {ticket['rule']} ({ticket['dimension']}), state {ticket['state']}, "
        f"failed {ticket['failed']}; SLA due at {ticket['due_at']:.0f} (epoch s)"
    )
    return subject, body
