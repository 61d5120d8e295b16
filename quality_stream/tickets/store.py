"""Tickets in the control DB (tables.py): opening, the workflow, comments, history, what the
monitor changes, thresholds, the monitor's counter samples, and the metrics.

    store = TicketStore(engine)
    ticket, created = store.open(scope, pipeline=..., dataset_urn=..., rule=..., ...)
    store.get(scopes, id) / list(scopes, ...) / events(id)
    store.transition(scopes, id, action, actor, assignee=, resolution=, reason=, base=(read, failed))
    store.comment(scopes, id, actor, text)
    store.metrics(scopes) -> {"by_owner": [...], "by_department": [...]}

`scopes` is the set of scopes the caller sees (None = all); a ticket outside them is NotFound.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from quality_stream.tickets import workflow
from quality_stream.tickets.model import LIVE, SYSTEM, NotFound
from quality_stream.tickets.tables import (
    quality_ticket_events as events_t,
)
from quality_stream.tickets.tables import (
    quality_ticket_samples as samples_t,
)
from quality_stream.tickets.tables import (
    quality_ticket_thresholds as thresholds_t,
)
from quality_stream.tickets.tables import (
    quality_tickets as tickets_t,
)
from quality_stream.tickets.thresholds import DEFAULT, Threshold

NO_OWNER = "unassigned: the catalogue names no owner for {urn}"
NO_OWNER_ZH = "未分派：目录中没有 {urn} 的负责人"


def _visible(column, scopes: set[str] | None):
    return True if scopes is None else column.in_(sorted(scopes))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def as_dict(r, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    out = {
        "id": r.id,
        "tenant": r.scope or None,
        "pipeline": r.pipeline,
        "dataset": r.dataset_urn,
        "rule": r.rule,
        "dimension": r.dimension,
        "state": r.state,
        "origin": r.origin,
        "assignee": r.assignee,
        "department": r.department,
        "resolution": r.resolution,
        "resolution_reason": r.resolution_reason,
        "failed": r.failed,
        "evaluated": r.evaluated,
        "ratio": round(r.failed / r.evaluated, 6) if r.evaluated else None,
        "samples": json.loads(r.samples),
        "opened_by": r.opened_by,
        "opened_at": r.opened_at,
        "due_at": r.due_at,
        "overdue": r.state in LIVE and now > r.due_at,
        "responded_at": r.responded_at,
        "resolved_at": r.resolved_at,
        "verified_at": r.verified_at,
        "closed_at": r.closed_at,
        "escalated_at": r.escalated_at,
        "updated_at": r.updated_at,
        "actions": workflow.allowed(r.state, r.resolution),
        "base": (r.base_read or 0, r.base_failed or 0),  # the runner's counters at resolution
    }
    if not r.assignee:
        out["assignee_note"] = NO_OWNER.format(urn=r.dataset_urn)
        out["assignee_note_zh"] = NO_OWNER_ZH.format(urn=r.dataset_urn)
    return out


class TicketStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- reading
    def _row(self, conn, scopes: set[str] | None, ticket_id: int):
        row = conn.execute(
            select(tickets_t).where(tickets_t.c.id == ticket_id, _visible(tickets_t.c.scope, scopes))
        ).first()
        if row is None:
            raise NotFound(f"no ticket {ticket_id}", f"没有工单 {ticket_id}", "id")
        return row

    def get(self, scopes: set[str] | None, ticket_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return as_dict(self._row(conn, scopes, ticket_id))

    def scope_of(self, ticket_id: int) -> str | None:
        """The owning scope whoever asks (for the audit of refused attempts), or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(tickets_t.c.scope).where(tickets_t.c.id == ticket_id)).scalar()

    def list(
        self,
        scopes: set[str] | None,
        state: str | None = None,
        assignee: str | None = None,
        pipeline: str | None = None,
        rule: str | None = None,
        dimension: str | None = None,
        overdue: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        now = time.time()
        where = [_visible(tickets_t.c.scope, scopes)]
        for col, value in (("state", state), ("assignee", assignee), ("pipeline", pipeline), ("rule", rule)):
            if value:
                where.append(tickets_t.c[col] == value)
        if dimension:
            where.append(tickets_t.c.dimension == dimension)
        if overdue:
            where += [tickets_t.c.state.in_(LIVE), tickets_t.c.due_at < now]
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(tickets_t).where(and_(*where))).scalar()
            rows = conn.execute(
                select(tickets_t).where(and_(*where)).order_by(tickets_t.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return total, [as_dict(r, now) for r in rows]

    def events(self, ticket_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events_t).where(events_t.c.ticket_id == ticket_id).order_by(events_t.c.id)).all()
        out = []
        for e in rows:
            body = e.body
            if e.kind != "comment" and body:
                body = json.loads(body)
            out.append(
                {"at": e.at, "actor": e.actor, "kind": e.kind, "from": e.from_state, "to": e.to_state, "body": body}
            )
        return out

    def latest(self, scope: str, dataset_urn: str, rule: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tickets_t)
                .where(tickets_t.c.scope == scope, tickets_t.c.dataset_urn == dataset_urn, tickets_t.c.rule == rule)
                .order_by(tickets_t.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else as_dict(row)

    def resolved_of(self, pipeline: str) -> list[dict[str, Any]]:
        """Tickets of a pipeline waiting for verification (not waived)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tickets_t).where(
                    tickets_t.c.pipeline == pipeline,
                    tickets_t.c.state == "resolved",
                    tickets_t.c.resolution != "waived",
                )
            ).all()
        return [as_dict(r) for r in rows]

    # -- writing
    @staticmethod
    def _event(conn, ticket_id: int, actor: str, kind: str, frm=None, to=None, body: Any = None) -> None:
        text = body if isinstance(body, str) or body is None else _dumps(body)
        conn.execute(
            insert(events_t).values(
                ticket_id=ticket_id, at=time.time(), actor=actor, kind=kind, from_state=frm, to_state=to, body=text
            )
        )

    def open(
        self,
        scope: str,
        *,
        pipeline: str,
        dataset_urn: str,
        rule: str,
        dimension: str,
        failed: int,
        evaluated: int,
        samples: list[dict],
        assignee: str | None,
        department: str | None,
        actor: str,
        origin: str,
        sla_hours: float,
    ) -> tuple[dict[str, Any], bool]:
        """A new ticket, or (when one is live for the dataset and rule) that one with the counts added."""
        now = time.time()
        state = "assigned" if assignee else "open"
        values = dict(
            scope=scope,
            pipeline=pipeline,
            dataset_urn=dataset_urn,
            rule=rule,
            dimension=dimension,
            state=state,
            active="1",
            origin=origin,
            assignee=assignee,
            department=department,
            failed=failed,
            evaluated=evaluated,
            samples=_dumps(samples[:20]),
            opened_by=actor,
            opened_at=now,
            due_at=now + sla_hours * 3600,
            updated_at=now,
        )
        try:
            with self.engine.begin() as conn:
                tid = conn.execute(insert(tickets_t).values(**values)).inserted_primary_key[0]
                detail = {"failed": failed, "evaluated": evaluated, "origin": origin}
                if not assignee:
                    detail["note"] = NO_OWNER.format(urn=dataset_urn)
                self._event(conn, tid, actor, "opened", None, "open", detail)
                if assignee:
                    self._event(conn, tid, SYSTEM, "transition", "open", "assigned", {"assignee": assignee})
                return as_dict(self._row(conn, None, tid)), True
        except IntegrityError:
            pass  # a live ticket for this dataset and rule exists: count into it
        with self.engine.begin() as conn:
            row = conn.execute(
                select(tickets_t).where(
                    tickets_t.c.scope == scope,
                    tickets_t.c.dataset_urn == dataset_urn,
                    tickets_t.c.rule == rule,
                    tickets_t.c.active == "1",
                )
            ).first()
            merged = (json.loads(row.samples) + samples)[:20]
            conn.execute(
                update(tickets_t)
                .where(tickets_t.c.id == row.id)
                .values(
                    failed=row.failed + failed,
                    evaluated=row.evaluated + evaluated,
                    samples=_dumps(merged),
                    updated_at=now,
                )
            )
            self._event(conn, row.id, actor, "counts", body={"failed": failed, "evaluated": evaluated})
            return as_dict(self._row(conn, None, row.id)), False

    def add_counts(self, ticket_id: int, failed: int, evaluated: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(tickets_t)
                .where(tickets_t.c.id == ticket_id)
                .values(
                    failed=tickets_t.c.failed + failed,
                    evaluated=tickets_t.c.evaluated + evaluated,
                    updated_at=time.time(),
                )
            )

    def _set(self, conn, row, actor: str, changes: dict, event_body: dict | None = None) -> None:
        now = time.time()
        state = changes.get("state", row.state)
        stamps = {"resolved": "resolved_at", "verified": "verified_at", "closed": "closed_at"}
        if state in stamps and state != row.state:
            changes[stamps[state]] = now
        if state == "reopened":
            changes["escalated_at"] = None  # a new SLA; resolved_at keeps the last resolution (metrics)
        changes["active"] = None if state == "closed" else "1"
        if actor != SYSTEM and row.responded_at is None:
            changes["responded_at"] = now
        conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(updated_at=now, **changes))
        if state != row.state:
            self._event(conn, row.id, actor, "transition", row.state, state, event_body or {})

    def transition(
        self,
        scopes: set[str] | None,
        ticket_id: int,
        action: str,
        actor: str,
        assignee: str | None = None,
        resolution: str | None = None,
        reason: str | None = None,
        base: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._row(conn, scopes, ticket_id)
            changes = workflow.apply(as_dict(row), action, assignee, resolution, reason)
            if action == "resolve" and base is not None:
                changes.update(base_read=base[0], base_failed=base[1])
            if action == "reopen":
                changes.update(base_read=None, base_failed=None, due_at=self._due_again(conn, row))
            detail = {"action": action, **{k: v for k, v in (("assignee", assignee), ("reason", reason)) if v}}
            if resolution:
                detail["resolution"] = resolution
            if action == "assign" and row.state == "assigned":
                conn.execute(
                    update(tickets_t).where(tickets_t.c.id == row.id).values(assignee=assignee, updated_at=time.time())
                )
                self._event(conn, row.id, actor, "transition", row.state, row.state, detail)
            else:
                self._set(conn, row, actor, changes, detail)
            return as_dict(self._row(conn, None, ticket_id))

    @staticmethod
    def _due_again(conn, row) -> float:
        """A reopened ticket gets the SLA it had, counted from now."""
        return time.time() + (row.due_at - row.opened_at)

    def comment(self, scopes: set[str] | None, ticket_id: int, actor: str, text: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._row(conn, scopes, ticket_id)
            self._event(conn, row.id, actor, "comment", body=text)
            values: dict[str, Any] = {"updated_at": time.time()}
            if row.responded_at is None and actor != row.opened_by:
                values["responded_at"] = time.time()
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
        return {"at": time.time(), "actor": actor, "kind": "comment", "body": text}

    # -- what the monitor does
    def verify(self, ticket_id: int, checked: int) -> None:
        with self.engine.begin() as conn:
            row = self._row(conn, None, ticket_id)
            self._set(conn, row, SYSTEM, {"state": "verified"}, {"passed_records": checked})

    def reopen(self, ticket_id: int, failed: int, evaluated: int) -> None:
        with self.engine.begin() as conn:
            row = self._row(conn, None, ticket_id)
            changes = {
                "state": "reopened",
                "resolution": None,
                "resolution_reason": None,
                "verified_at": None,
                "closed_at": None,
                "base_read": None,
                "base_failed": None,
                "failed": row.failed + failed,
                "evaluated": row.evaluated + evaluated,
                "due_at": self._due_again(conn, row),
            }
            self._set(conn, row, SYSTEM, changes, {"failures_came_back": failed})

    def overdue_unescalated(self) -> list[dict[str, Any]]:
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tickets_t).where(
                    tickets_t.c.state.in_(LIVE), tickets_t.c.due_at < now, tickets_t.c.escalated_at.is_(None)
                )
            ).all()
        return [as_dict(r, now) for r in rows]

    def mark_escalated(self, ticket_id: int, message_id: int | None) -> bool:
        """Once: False when another process escalated it first."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(tickets_t)
                .where(tickets_t.c.id == ticket_id, tickets_t.c.escalated_at.is_(None))
                .values(escalated_at=time.time())
            ).rowcount
            if done:
                self._event(conn, ticket_id, SYSTEM, "escalated", body={"message_id": message_id})
        return bool(done)

    def note(self, ticket_id: int, kind: str, body: dict) -> None:
        with self.engine.begin() as conn:
            self._event(conn, ticket_id, SYSTEM, kind, body=body)

    # -- thresholds
    def thresholds(self, scopes: set[str] | None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(thresholds_t).where(_visible(thresholds_t.c.scope, scopes)).order_by(thresholds_t.c.id)
            ).all()
        return [
            {
                "tenant": r.scope or None,
                "pipeline": r.pipeline or None,
                "rule": r.rule or None,
                **json.loads(r.body),
                "updated_by": r.updated_by,
                "updated_at": r.updated_at,
            }
            for r in rows
        ]

    def set_threshold(self, scope: str, pipeline: str, rule: str, threshold: Threshold, actor: str) -> None:
        body = threshold.model_dump_json()
        with self.engine.begin() as conn:
            where = (thresholds_t.c.scope == scope, thresholds_t.c.pipeline == pipeline, thresholds_t.c.rule == rule)
            done = conn.execute(
                update(thresholds_t).where(*where).values(body=body, updated_by=actor, updated_at=time.time())
            ).rowcount
            if not done:
                conn.execute(
                    insert(thresholds_t).values(
                        scope=scope, pipeline=pipeline, rule=rule, body=body, updated_by=actor, updated_at=time.time()
                    )
                )

    def threshold_for(self, scope: str, pipeline: str, rule: str) -> Threshold:
        """The most specific: pipeline and rule, pipeline, rule, the scope's, the default."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(thresholds_t).where(thresholds_t.c.scope == scope)).all()
        best = None
        for r in rows:
            if r.pipeline not in ("", pipeline) or r.rule not in ("", rule):
                continue
            rank = (r.pipeline != "") * 2 + (r.rule != "")
            if best is None or rank > best[0]:
                best = (rank, r)
        return Threshold.model_validate_json(best[1].body) if best else DEFAULT

    # -- the monitor's samples of the runners' counters
    def add_sample(self, pipeline: str, counts: dict[str, int], keep_seconds: float) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(insert(samples_t).values(pipeline=pipeline, taken_at=now, counts=_dumps(counts)))
            # keep the newest sample older than the longest window, drop those before it
            cut = conn.execute(
                select(func.max(samples_t.c.taken_at)).where(
                    samples_t.c.pipeline == pipeline, samples_t.c.taken_at < now - keep_seconds
                )
            ).scalar()
            if cut is not None:
                conn.execute(samples_t.delete().where(samples_t.c.pipeline == pipeline, samples_t.c.taken_at < cut))

    def samples(self, pipeline: str) -> list[tuple[float, dict]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(samples_t.c.taken_at, samples_t.c.counts)
                .where(samples_t.c.pipeline == pipeline)
                .order_by(samples_t.c.taken_at)
            ).all()
        return [(t, json.loads(c)) for t, c in rows]

    # -- metrics
    def metrics(self, scopes: set[str] | None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tickets_t).where(_visible(tickets_t.c.scope, scopes))).all()

        def summary(group: list) -> dict[str, Any]:
            respond = [r.responded_at - r.opened_at for r in group if r.responded_at]
            resolve = [r.resolved_at - r.opened_at for r in group if r.resolved_at]
            return {
                "tickets": len(group),
                "open": sum(r.state in LIVE for r in group),
                "overdue": sum(r.state in LIVE and time.time() > r.due_at for r in group),
                "responded": len(respond),
                "resolved": len(resolve),
                "time_to_respond_s": _stats(respond),
                "time_to_resolve_s": _stats(resolve),
            }

        out: dict[str, Any] = {"total": summary(list(rows))}
        for key, attr in (("by_owner", "assignee"), ("by_department", "department")):
            groups: dict[str | None, list] = {}
            for r in rows:
                groups.setdefault(getattr(r, attr), []).append(r)
            name = "owner" if attr == "assignee" else "department"
            out[key] = [{name: k, **summary(v)} for k, v in sorted(groups.items(), key=lambda kv: kv[0] or "")]
        return out


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "mean": round(statistics.fmean(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }
