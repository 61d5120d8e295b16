"""Audit entries in the control database, written only by INSERT.

A database trigger refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL), so not even a bug in
this service, or someone with the service's own DB login, can rewrite history unnoticed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, insert, or_, select, text

from api.request_ids import MAX_LENGTH as REQUEST_ID_LENGTH
from deploy.control import engine_for

log = logging.getLogger(__name__)
metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False, index=True, doc="UTC, ISO 8601 with microseconds"),
    Column("actor", String(200), nullable=False, index=True),
    Column("actor_kind", String(20), nullable=False),
    Column("tenant", String(100), nullable=True),
    Column("action", String(200), nullable=False, index=True),
    Column("permission", String(100), nullable=True),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("client_ip", String(64), nullable=True),
    Column("request_id", String(REQUEST_ID_LENGTH), nullable=True),
    Column("detail", Text, nullable=False, default="{}"),
    # The tenant whose object the request touched (found or refused), when not the caller's own:
    # the attacked tenant sees the attempt in its own audit log.
    Column("affected_tenant", String(100), nullable=True, index=True),
)

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for op in ("UPDATE", "DELETE")
]
_PG_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]


def outcome_of(status: int) -> str:
    if status in (401, 403, 423, 429):
        return "denied"
    if status >= 500:
        return "error"
    return "rejected" if status >= 400 else "success"


def utc_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=8)
def audit_log_for(url: str) -> AuditLog:
    return AuditLog(url)


BATCH_S = 0.2
_BATCHER_LOCK = threading.Lock()


class _Batcher:
    """Queued entries inserted by a daemon thread every BATCH_S in one transaction. A batch that
    fails is kept and retried (bounded: beyond 100,000 queued entries the oldest are dropped and
    logged), so a short control-DB outage loses nothing."""

    def __init__(self, engine):
        self.engine = engine
        self.queue: list[dict] = []
        self.lock = threading.Lock()  # guards the queue
        self.writing = threading.Lock()  # one writer at a time (the thread, or a reader's flush)
        threading.Thread(target=self._loop, name="audit-batches", daemon=True).start()

    def add(self, values: dict) -> None:
        with self.lock:
            self.queue.append(values)
            if len(self.queue) > 100_000:
                dropped, self.queue = len(self.queue) - 100_000, self.queue[-100_000:]
                log.error("audit batch queue full: %d entries dropped", dropped)

    def flush(self) -> None:
        with self.writing:
            with self.lock:
                rows, self.queue = self.queue, []
            if not rows:
                return
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(audit_log), rows)
            except Exception:
                log.exception("audit batch of %d entries not written; retried", len(rows))
                with self.lock:
                    self.queue = rows + self.queue

    def _loop(self) -> None:
        while True:
            time.sleep(BATCH_S)
            try:
                self.flush()
            except Exception:  # never let the writer die
                log.exception("audit batch writer")


class AuditLog:
    def __init__(self, url: str):
        self.engine = engine_for(url)
        self.batcher: _Batcher | None = None
        triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(self.engine.dialect.name, [])
        try:
            with self.engine.begin() as conn:
                for ddl in triggers:
                    conn.execute(text(ddl))
        except Exception:  # a concurrent process installed them; the next start retries
            log.warning("could not (re)install audit_log triggers", exc_info=True)

    def record(
        self,
        *,
        actor: str,
        actor_kind: str,
        action: str,
        method: str,
        path: str,
        status: int,
        tenant: str | None = None,
        affected_tenant: str | None = None,
        permission: str | None = None,
        client_ip: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
        batched: bool = False,
    ) -> None:
        """One entry, inserted now; `batched` (data-API calls, served to applications at a high
        rate): queued and inserted with others within `BATCH_S` (one transaction per batch)."""
        values = dict(
            at=utc_iso(),
            actor=actor,
            actor_kind=actor_kind,
            tenant=tenant,
            affected_tenant=affected_tenant,
            action=action,
            permission=permission,
            method=method,
            path=path,
            status=status,
            outcome=outcome_of(status),
            client_ip=client_ip,
            request_id=request_id,
            detail=json.dumps(detail or {}, default=str),
        )
        # Values a caller chooses (a method, an unknown route's path as action, a typed user name)
        # are cut to their column: PostgreSQL refuses longer ones, and the request would go unaudited.
        for name, value in values.items():
            limit = getattr(audit_log.c[name].type, "length", None)
            if limit and isinstance(value, str) and len(value) > limit:
                values[name] = value[: limit - 1] + "…"
        if batched:
            self._batcher().add(values)
            return
        with self.engine.begin() as conn:
            conn.execute(insert(audit_log).values(**values))

    def _batcher(self) -> _Batcher:
        if self.batcher is None:
            with _BATCHER_LOCK:
                if self.batcher is None:
                    self.batcher = _Batcher(self.engine)
        return self.batcher

    def flush(self) -> None:
        """Write the queued entries now (a reader of the log sees every entry answered before)."""
        if self.batcher is not None:
            self.batcher.flush()

    def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        tenants: set[str] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict]:
        """Newest first. `action` ending in '*' matches a prefix; `tenants` None = all tenants,
        else entries of those tenants' callers or touching those tenants (affected_tenant)."""
        self.flush()
        q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if actor:
            q = q.where(audit_log.c.actor == actor)
        if action:
            q = q.where(
                audit_log.c.action.startswith(action[:-1], autoescape=True)
                if action.endswith("*")
                else audit_log.c.action == action
            )
        if outcome:
            q = q.where(audit_log.c.outcome == outcome)
        if since:
            q = q.where(audit_log.c.at >= utc_iso(since))
        if until:
            q = q.where(audit_log.c.at < utc_iso(until))
        if tenants is not None:
            q = q.where(or_(audit_log.c.tenant.in_(sorted(tenants)), audit_log.c.affected_tenant.in_(sorted(tenants))))
        if before_id:
            q = q.where(audit_log.c.id < before_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows
