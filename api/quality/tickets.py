"""Wiring of quality tickets (quality_stream/tickets) into the API: the store, what the monitor
watches (each runner connector's pipeline, its input topic's catalogue URN and its stage counters),
the catalogue owner of a dataset, downstream owners from lineage, quarantine samples, the message
centre, e-mail to the assignee (api/quality/ticket_mail.py), and the monitor's background loop
(started with the other loops, api/scheduling/runtime.py).

    ticket_store(settings) -> TicketStore
    TicketLoop(settings).start() / stop() / tick()   # every HUILIU_QUALITY_TICKETS_TICK seconds (30)
    runner_counts_of(settings, pipeline) -> (read, {rule: failed})
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache

from api.metadata import catalog_store
from api.quality.ticket_mail import mail_ticket
from api.scoping import connector_store
from deploy.control import StageCounters, engine_for
from deploy.messages import post_message
from quality_stream.tickets.monitor import PREFIX, Context, Monitor, Watched
from quality_stream.tickets.store import TicketStore
from schemas.catalog.lineage import traverse
from schemas.catalog.store import scope_of
from schemas.catalog.urns import topic_urn
from schemas.naming import quarantine_topic

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _store(url: str) -> TicketStore:
    return TicketStore(engine_for(url))


def ticket_store(settings) -> TicketStore:
    return _store(settings.resolved_control_db_url)


def runner_counts_of(settings, pipeline: str) -> tuple[int, dict[str, int]]:
    counts = StageCounters(settings.resolved_control_db_url, pipeline).read().get("runner", {})
    return int(counts.get("read", 0)), {k[len(PREFIX) :]: int(v) for k, v in counts.items() if k.startswith(PREFIX)}


def watched(settings) -> list[Watched]:
    """Every runner connector's pipeline with its counters (one entry per pipeline: its first input)."""
    out: dict[str, Watched] = {}
    for record in connector_store(settings).all(None):
        pipeline = record.config.get("pipeline")
        topics = [t for t in record.config.get("topics") or [] if isinstance(t, str)]
        if not record.plugin.startswith("runner.") or not isinstance(pipeline, str) or not topics or pipeline in out:
            continue
        counts = StageCounters(settings.resolved_control_db_url, pipeline).read().get("runner", {})
        urn = topic_urn(settings.kafka_bootstrap, topics[0])
        out[pipeline] = Watched(scope_of(record.tenant), pipeline, urn, {k: int(v) for k, v in counts.items()})
    return list(out.values())


def owner_of(settings, scope: str, urn: str) -> tuple[str | None, str | None]:
    """The dataset's owner and department from the catalogue; without an owner there, the nearest
    upstream dataset's (the source the data comes from), else (None, department)."""
    store = catalog_store(settings)
    department = None
    try:
        business = store.dataset({scope}, urn)["business"]
        if business.get("owner"):
            return business["owner"], business.get("department")
        department = business.get("department")
    except LookupError:
        pass
    graph = traverse(store.engine, {scope}, urn, direction="upstream", depth=3)
    for node in graph["nodes"]:
        if node["hops"] and node.get("owner"):
            up = store.dataset({scope}, node["dataset"])["business"]
            return node["owner"], up.get("department") or department
    return None, department


def downstream_of(settings, scope: str, urn: str) -> list[dict]:
    graph = traverse(catalog_store(settings).engine, {scope}, urn, direction="downstream", depth=5)
    return [{"dataset": n["dataset"], "owner": n.get("owner")} for n in graph["nodes"] if n["hops"]]


def quarantine_samples(settings, pipeline: str, rule: str, limit: int = 5) -> list[dict]:
    from streams.quarantine_read import read_quarantine

    for record in connector_store(settings).all(None):
        if record.plugin.startswith("runner.") and record.config.get("pipeline") == pipeline:
            topic = quarantine_topic(record.config["topics"][0])
            page = read_quarantine(
                settings.kafka_bootstrap, settings.schema_registry_url, topic, rule, None, None, limit, 0
            )
            return page["items"]
    return []


def context(settings) -> Context:
    url = settings.resolved_control_db_url

    def post(scope: str, level: str, subject: str, body: str) -> int:
        return post_message(url, "quality", level, subject, body, tenant=scope or None)

    def keep(scope: str) -> float:
        return max([3600.0] + [t["window_seconds"] for t in ticket_store(settings).thresholds({scope})])

    return Context(
        owner=lambda scope, urn: owner_of(settings, scope, urn),
        downstream=lambda scope, urn: downstream_of(settings, scope, urn),
        samples=lambda pipeline, rule: quarantine_samples(settings, pipeline, rule),
        post=post,
        mail=lambda event, ticket: mail_ticket(settings, ticket_store(settings), event, ticket),
        window_keep=keep,
    )


class TicketLoop:
    def __init__(self, settings):
        self.settings = settings
        self.interval = float(os.environ.get("HUILIU_QUALITY_TICKETS_TICK", "30"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> dict:
        return Monitor(ticket_store(self.settings), context(self.settings)).tick(watched(self.settings))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the next tick tries again
                log.exception("quality ticket monitor failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="quality-tickets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)


def ticket_loop_for(app) -> TicketLoop:
    loop = getattr(app.state, "quality_tickets", None)
    if loop is None:
        loop = app.state.quality_tickets = TicketLoop(app.state.settings)
    return loop
