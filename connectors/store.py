"""Connector configs, task status and snapshot requests in the control database.

The API writes configs and target states and bumps `version`; workers poll the table and act on
a changed version (the API only stores and signals). Each connector belongs to a tenant (`tenant`,
checked by the API; workers run every tenant's connectors). Configs are stored twice: encrypted in
full (`config_enc`, what workers run) and masked (`config_masked`, safe to show or log).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from connectors.document import ConnectorSpec
from connectors.secrets import Vault, mask
from deploy.control import engine_for, source_offsets

connect_metadata = MetaData()

connectors_table = Table(
    "connect_connectors",
    connect_metadata,
    Column("name", String(200), primary_key=True),
    Column("tenant", String(100), nullable=True, index=True, doc="owner; NULL = only all-tenant principals see it"),
    Column("kind", String(20), nullable=False),
    Column("plugin", String(200), nullable=False),
    Column("config_masked", Text, nullable=False),
    Column("config_enc", Text, nullable=False),
    Column("target_state", String(20), nullable=False, doc="RUNNING, PAUSED or STOPPED"),
    Column("version", Integer, nullable=False, doc="bumped by every change and restart; workers poll it"),
    Column("task_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

task_status_table = Table(
    "connect_task_status",
    connect_metadata,
    Column("connector", String(200), primary_key=True),
    Column("task", Integer, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("worker_id", String(200)),
    Column("detail", Text),
    Column("trace", Text),
    Column("version", Integer),
    Column("updated_at", Float, nullable=False),
)

snapshots_table = Table(
    "connect_snapshots",
    connect_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connector", String(200), nullable=False, index=True),
    Column("tables", Text, nullable=False, doc="JSON list; empty = every table"),
    Column("status", String(20), nullable=False, doc="PENDING or DONE"),
    Column("requested_at", Float, nullable=False),
    Column("done_at", Float),
    Column("cleared", Text, doc="JSON list of offset partitions cleared"),
)


KEEP = object()  # upsert: leave an existing connector's tenant as it is


# The last tenant that owned each connector name. A deleted connector's offsets, file tracking and
# import reports stay under its name, so the name stays its tenant's: another tenant's caller may
# not create a connector of that name (it would resume from them and see those reports).
name_owners_table = Table(
    "connect_name_owners",
    connect_metadata,
    Column("name", String(200), primary_key=True),
    Column("tenant", String(100), nullable=True, doc="NULL = the operator's (no tenant)"),
    Column("updated_at", Float, nullable=False),
)


class ConnectorExists(Exception):
    pass


@dataclass
class ConnectorRecord:
    name: str
    kind: str
    plugin: str
    config: dict[str, Any]  # plain: only workers and the validator see this
    target_state: str
    version: int
    task_count: int
    created_at: float
    updated_at: float
    tenant: str | None = None

    @property
    def masked_config(self) -> dict[str, Any]:
        return mask(self.config)


class ConnectorStore:
    def __init__(self, control_db_url: str, state_dir):
        self.engine = engine_for(control_db_url)
        self.vault = Vault(state_dir)

    @classmethod
    def for_settings(cls, settings) -> ConnectorStore:
        return cls(settings.resolved_control_db_url, settings.state_dir)

    # -- configs ------------------------------------------------------------------------------
    def _own_name(self, conn, name: str, tenant: str | None) -> None:
        where = name_owners_table.c.name == name
        if not conn.execute(
            update(name_owners_table).where(where).values(tenant=tenant, updated_at=time.time())
        ).rowcount:
            conn.execute(name_owners_table.insert().values(name=name, tenant=tenant, updated_at=time.time()))

    def last_owner(self, name: str) -> tuple[bool, str | None]:
        """(known, tenant): who owns or last owned the name (its offsets and reports are theirs)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(connectors_table.c.tenant).where(connectors_table.c.name == name)).first()
            if row is None:
                row = conn.execute(select(name_owners_table.c.tenant).where(name_owners_table.c.name == name)).first()
        return (row is not None, row.tenant if row else None)

    def _values(self, spec: ConnectorSpec) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "plugin": spec.plugin.name,
            "config_masked": json.dumps(mask(spec.config)),
            "config_enc": self.vault.encrypt(spec.config),
            "task_count": spec.task_count(),
            "updated_at": time.time(),
        }

    def create(self, spec: ConnectorSpec, tenant: str | None = None, target_state: str = "RUNNING") -> None:
        """`target_state`: RUNNING, PAUSED or STOPPED from the start (Kafka Connect's initial_state)."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    connectors_table.insert().values(
                        name=spec.name,
                        tenant=tenant,
                        target_state=target_state,
                        version=1,
                        created_at=now,
                        **self._values(spec),
                    )
                )
                self._own_name(conn, spec.name, tenant)
        except IntegrityError as exc:
            raise ConnectorExists(spec.name) from exc

    def upsert(self, spec: ConnectorSpec, tenant: Any = KEEP, only_tenant: bool = False) -> bool:
        """Create or replace the config; True when it was created. A new connector belongs to
        `tenant` (KEEP: none); an existing one keeps its tenant unless `tenant` is given (callers
        check that the caller sees both). With `only_tenant`, an existing connector of another
        tenant is left alone: ConnectorExists."""
        where, moved = connectors_table.c.name == spec.name, {}
        if tenant is not KEEP:
            moved = {"tenant": tenant}
            if only_tenant:
                where = where & (
                    connectors_table.c.tenant.is_(None) if tenant is None else connectors_table.c.tenant == tenant
                )
        with self.engine.begin() as conn:
            n = conn.execute(
                update(connectors_table)
                .where(where)
                .values(version=connectors_table.c.version + 1, **moved, **self._values(spec))
            ).rowcount
            if n and moved:
                self._own_name(conn, spec.name, tenant)
        if n:
            return False
        try:
            self.create(spec, None if tenant is KEEP else tenant)
            return True
        except ConnectorExists:  # created meanwhile by another request: update that one
            if only_tenant:
                raise
            return self.upsert(spec, tenant)

    def tenant_of(self, name: str) -> tuple[bool, str | None]:
        """(exists, tenant) of a connector, without decrypting its config."""
        with self.engine.connect() as conn:
            row = conn.execute(select(connectors_table.c.tenant).where(connectors_table.c.name == name)).first()
        return (row is not None, row.tenant if row else None)

    def _record(self, row) -> ConnectorRecord:
        return ConnectorRecord(
            row.name,
            row.kind,
            row.plugin,
            self.vault.decrypt(row.config_enc),
            row.target_state,
            row.version,
            row.task_count,
            row.created_at,
            row.updated_at,
            row.tenant,
        )

    def get(self, name: str) -> ConnectorRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(connectors_table).where(connectors_table.c.name == name)).first()
        return self._record(row) if row else None

    def all(self, tenants: set[str] | None = None) -> list[ConnectorRecord]:
        """Every connector, or those of `tenants` (None = all)."""
        q = select(connectors_table).order_by(connectors_table.c.name)
        if tenants is not None:
            q = q.where(connectors_table.c.tenant.in_(sorted(tenants)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [self._record(r) for r in rows]

    def names(self, tenants: set[str] | None = None, name_contains: str | None = None) -> list[str]:
        """Names by name; `name_contains` a case-insensitive substring."""
        q = self._matching(select(connectors_table.c.name), tenants, name_contains).order_by(connectors_table.c.name)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def page(
        self, tenants: set[str] | None, limit: int, offset: int, name_contains: str | None = None
    ) -> tuple[list[ConnectorRecord], int]:
        """One page of `all` (by name, optionally names containing `name_contains`) and the number
        of matching connectors in all pages, both in the query."""
        q = self._matching(select(connectors_table), tenants, name_contains)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            rows = conn.execute(q.order_by(connectors_table.c.name).limit(limit).offset(offset)).all()
        return [self._record(r) for r in rows], total

    def name_page(
        self, tenants: set[str] | None, limit: int, offset: int, name_contains: str | None = None
    ) -> tuple[list[str], int]:
        """`page` as names only (no configuration decrypted)."""
        q = self._matching(select(connectors_table.c.name), tenants, name_contains)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            names = conn.execute(q.order_by(connectors_table.c.name).limit(limit).offset(offset)).scalars()
            return list(names), total

    def named(self, names: list[str]) -> list[ConnectorRecord]:
        """The connectors of `names` (those that exist), by name."""
        q = select(connectors_table).where(connectors_table.c.name.in_(names)).order_by(connectors_table.c.name)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [self._record(r) for r in rows]

    @staticmethod
    def _matching(q, tenants: set[str] | None, name_contains: str | None):
        if tenants is not None:
            q = q.where(connectors_table.c.tenant.in_(sorted(tenants)))
        if name_contains:
            q = q.where(connectors_table.c.name.icontains(name_contains, autoescape=True))
        return q

    def signal(self, name: str, target_state: str | None = None) -> bool:
        """Bump the version (workers restart the tasks), optionally setting RUNNING / PAUSED / STOPPED."""
        values: dict[str, Any] = {"version": connectors_table.c.version + 1, "updated_at": time.time()}
        if target_state:
            values["target_state"] = target_state
        with self.engine.begin() as conn:
            return bool(
                conn.execute(update(connectors_table).where(connectors_table.c.name == name).values(**values)).rowcount
            )

    def delete(self, name: str) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(delete(connectors_table).where(connectors_table.c.name == name)).rowcount
            conn.execute(delete(task_status_table).where(task_status_table.c.connector == name))
            conn.execute(delete(snapshots_table).where(snapshots_table.c.connector == name))
        return bool(n)

    # -- task status --------------------------------------------------------------------------
    def set_task_status(
        self,
        connector: str,
        task: int,
        state: str,
        worker_id: str | None,
        detail: str | None = None,
        trace: str | None = None,
        version: int | None = None,
    ) -> None:
        values = {
            "state": state,
            "worker_id": worker_id,
            "detail": detail,
            "trace": trace,
            "version": version,
            "updated_at": time.time(),
        }
        where = (task_status_table.c.connector == connector) & (task_status_table.c.task == task)
        with self.engine.begin() as conn:
            if not conn.execute(select(connectors_table.c.name).where(connectors_table.c.name == connector)).first():
                return  # deleted meanwhile: leave no orphan status behind
            if not conn.execute(update(task_status_table).where(where).values(**values)).rowcount:
                conn.execute(task_status_table.insert().values(connector=connector, task=task, **values))

    def task_statuses(self, connector: str) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(task_status_table).where(task_status_table.c.connector == connector)).all()
        return {r.task: dict(r._mapping) for r in rows}

    # -- snapshots ----------------------------------------------------------------------------
    def request_snapshot(self, connector: str, tables: list[str]) -> dict[str, Any]:
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                snapshots_table.insert().values(
                    connector=connector, tables=json.dumps(tables), status="PENDING", requested_at=now
                )
            )
            snapshot_id = result.inserted_primary_key[0]
        self.signal(connector)
        return {"id": snapshot_id, "connector": connector, "tables": tables, "status": "PENDING", "requested_at": now}

    def pending_snapshots(self, connector: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(snapshots_table).where(
                    snapshots_table.c.connector == connector, snapshots_table.c.status == "PENDING"
                )
            ).all()
        return [{"id": r.id, "tables": json.loads(r.tables)} for r in rows]

    def snapshots(self, connector: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(snapshots_table).where(snapshots_table.c.connector == connector).order_by(snapshots_table.c.id)
            ).all()
        return [
            {
                "id": r.id,
                "tables": json.loads(r.tables),
                "status": r.status,
                "requested_at": r.requested_at,
                "done_at": r.done_at,
                "cleared": json.loads(r.cleared or "[]"),
            }
            for r in rows
        ]

    def run_snapshot(self, connector: str, snapshot_id: int, tables: list[str]) -> list[str]:
        """Clear the stored offsets of the chosen tables (all when empty): their task re-reads them."""
        with self.engine.begin() as conn:
            partitions = list(
                conn.execute(
                    select(source_offsets.c.partition).where(source_offsets.c.connector == connector)
                ).scalars()
            )
            chosen = [p for p in partitions if not tables or p in tables or p.rsplit(".", 1)[-1] in tables]
            if chosen:
                conn.execute(
                    delete(source_offsets).where(
                        source_offsets.c.connector == connector, source_offsets.c.partition.in_(chosen)
                    )
                )
            conn.execute(
                update(snapshots_table)
                .where(snapshots_table.c.id == snapshot_id)
                .values(status="DONE", done_at=time.time(), cleared=json.dumps(chosen))
            )
        return chosen
