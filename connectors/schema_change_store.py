"""Table `schema_changes` (migration 0013): the schema changes capture tasks met, followed or hold
(connectors.schema_changes), and the operator's decision about a held one. Kept apart from the
logic so the migration check imports only the table."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, select, update

from deploy.control import engine_for

metadata = MetaData()

schema_changes = Table(
    "schema_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False, doc="tenant of the connector ('' for none)"),
    Column("connector", String(200), nullable=False),
    Column("table_name", String(300), nullable=False, doc="schema.table as the source names it"),
    Column("fingerprint", String(64), nullable=False, doc="hash of table + changes: one row per change"),
    Column("changes", Text, nullable=False, doc="JSON list of {kind, column, old_type, new_type, key}"),
    Column("compatible", Integer, nullable=False),
    Column("status", String(20), nullable=False, doc="applied | held | accepted"),
    Column("reason", Text),
    Column("mode", String(20), doc="accepted as: new_version | new_topic"),
    Column("topic", String(300), doc="the topic the table's events go to after the change"),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float),
    Column("decided_by", String(200)),
    Index("ix_schema_changes_connector", "connector", "table_name", "fingerprint"),
    Index("ix_schema_changes_created", "created_at"),
)

ACCEPT_MODES = ("new_version", "new_topic")


class UnknownSchemaChange(LookupError):
    pass


class NotHeld(ValueError):
    """Only a held change can be accepted."""


class SchemaChangeStore:
    def __init__(self, control_db_url: str):
        self.engine = engine_for(control_db_url)

    @staticmethod
    def _row(r) -> dict[str, Any]:
        return {
            "id": r.id,
            "connector": r.connector,
            "table": r.table_name,
            "changes": json.loads(r.changes),
            "compatible": bool(r.compatible),
            "status": r.status,
            "reason": r.reason,
            "mode": r.mode,
            "topic": r.topic,
            "created_at": r.created_at,
            "decided_at": r.decided_at,
            "decided_by": r.decided_by,
        }

    def find(self, connector: str, label: str, digest: str) -> dict[str, Any] | None:
        q = select(schema_changes).where(
            schema_changes.c.connector == connector,
            schema_changes.c.table_name == label,
            schema_changes.c.fingerprint == digest,
        )
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(schema_changes.c.id.desc())).first()
        return None if row is None else self._row(row)

    def add(self, scope: str, connector: str, label: str, digest: str, changes: list, **values) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                schema_changes.insert().values(
                    scope=scope,
                    connector=connector,
                    table_name=label,
                    fingerprint=digest,
                    changes=json.dumps(changes),
                    created_at=time.time(),
                    **values,
                )
            ).inserted_primary_key[0]

    def set(self, change_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(schema_changes).where(schema_changes.c.id == change_id).values(**values))

    def list(self, connector: str, status: str | None = None) -> list[dict[str, Any]]:
        q = select(schema_changes).where(schema_changes.c.connector == connector)
        if status:
            q = q.where(schema_changes.c.status == status)
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(q.order_by(schema_changes.c.id))]

    def recent(self, scopes: set[str] | None, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest changes of the connectors of `scopes` (None: every tenant's), newest first."""
        q = select(schema_changes)
        if scopes is not None:
            q = q.where(schema_changes.c.scope.in_(sorted(scopes)))
        if status:
            q = q.where(schema_changes.c.status == status)
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(q.order_by(schema_changes.c.id.desc()).limit(limit))]

    def since(self, created_after: float, scopes: set[str] | None = None) -> list[dict[str, Any]]:
        q = select(schema_changes).where(schema_changes.c.created_at > created_after)
        if scopes is not None:
            q = q.where(schema_changes.c.scope.in_(sorted(scopes)))
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(q.order_by(schema_changes.c.id))]

    def new_topics(self, connector: str) -> dict[str, str]:
        """table label -> the topic an accepted `new_topic` change moved it to (the latest wins)."""
        q = select(schema_changes.c.table_name, schema_changes.c.topic).where(
            schema_changes.c.connector == connector,
            schema_changes.c.mode == "new_topic",
            schema_changes.c.topic.is_not(None),
        )
        with self.engine.connect() as conn:
            return dict(conn.execute(q.order_by(schema_changes.c.id)).all())

    def accept(self, connector: str, change_id: int, mode: str, by: str) -> dict[str, Any]:
        """Mark a held change accepted; the caller restarts the connector so the task follows it."""
        if mode not in ACCEPT_MODES:
            raise ValueError(f"mode must be one of {list(ACCEPT_MODES)}; 模式须为 {' / '.join(ACCEPT_MODES)}")
        with self.engine.begin() as conn:
            row = conn.execute(
                select(schema_changes).where(schema_changes.c.id == change_id, schema_changes.c.connector == connector)
            ).first()
            if row is None:
                raise UnknownSchemaChange(f"schema change {change_id} of connector {connector} not found")
            if row.status != "held":
                raise NotHeld(
                    f"schema change {change_id} is {row.status}, only a held change can be accepted; "
                    f"该结构变更状态为 {row.status}，只有暂停中的变更可以接受"
                )
            conn.execute(
                update(schema_changes)
                .where(schema_changes.c.id == change_id)
                .values(status="accepted", mode=mode, decided_at=time.time(), decided_by=by)
            )
        return {**self._row(row), "status": "accepted", "mode": mode, "decided_by": by}


@lru_cache(maxsize=8)
def store_for(control_db_url: str) -> SchemaChangeStore:
    """One store (one engine and its pool) per control DB in a process, for the API and the alerts."""
    return SchemaChangeStore(control_db_url)
