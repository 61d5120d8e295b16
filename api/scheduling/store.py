"""Schedules and their run history in the control DB.

`schedule_runs` has a unique (schedule_id, fire_key): every firing inserts its row first, so two
API processes ticking the same cron second (or a third-party scheduler retrying a trigger with
the same key) start the run only once.

A schedule belongs to a tenant (`tenant`); names are unique per tenant. Secrets in `params`
(connection URLs, password-like keys) are stored sealed (connectors.secrets.Vault, `enc:<token>`)
when the store has the state dir's key; `get`/`list` hand them back opened, for the scheduler.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError

from api.jobs.store import iso_time
from connectors.secrets import Vault
from deploy.control import engine_for

metadata = MetaData()

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(100), nullable=True, index=True, doc="owner; NULL = the operator's (all-tenant only)"),
    Column("name", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("params", Text, nullable=False, default="{}", doc="JSON, secrets sealed (enc:<Fernet token>)"),
    Column("cron", String(120), doc="5 fields, or 6 with seconds last; NULL = manual/dependency only"),
    Column("depends_on", Text, nullable=False, default="[]", doc="JSON list of schedule ids"),
    Column("enabled", Integer, nullable=False, default=1),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant", "name", name="uq_schedule_tenant_name"),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("schedule_id", String(40), nullable=False, index=True),
    Column("fire_key", String(200), nullable=False),
    Column("trigger", String(20), nullable=False, doc="cron|manual|http|dependency"),
    Column("operator", String(200)),
    Column("status", String(20), nullable=False, doc="running|succeeded|failed|cancelled|interrupted"),
    Column("job_id", String(40)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("duration_ms", Integer),
    Column("counts", Text),
    Column("result", Text),
    Column("error", Text),
    UniqueConstraint("schedule_id", "fire_key", name="uq_schedule_fire"),
)


def _schedule(row, vault: Vault | None = None) -> dict[str, Any]:
    d = dict(row._mapping)
    d["params"] = json.loads(d["params"] or "{}")
    if vault is not None:
        d["params"] = vault.unseal(d["params"])
    d["depends_on"] = json.loads(d["depends_on"] or "[]")
    d["enabled"] = bool(d["enabled"])
    d["created_at"], d["updated_at"] = iso_time(d["created_at"]), iso_time(d["updated_at"])
    return d


def _run(row) -> dict[str, Any]:
    d = dict(row._mapping)
    for k in ("counts", "result"):
        d[k] = json.loads(d[k]) if d[k] else None
    d["started_at"], d["finished_at"] = iso_time(d["started_at"]), iso_time(d["finished_at"])
    return d


class ScheduleStore:
    def __init__(self, url: str, state_dir=None):
        """Without `state_dir` the store cannot open sealed params (counts and names only)."""
        self.engine = engine_for(url)
        self.vault = Vault(state_dir) if state_dir is not None else None

    def _sealed(self, params: dict) -> str:
        if self.vault is None:
            raise RuntimeError("ScheduleStore needs the state dir to store params (secrets are sealed)")
        return json.dumps(self.vault.seal(params))

    # -- schedules
    def create(
        self,
        name: str,
        action: str,
        params: dict,
        cron: str | None,
        depends_on: list[str],
        enabled: bool,
        created_by: str,
        tenant: str | None = None,
    ) -> dict:
        now, sid = time.time(), uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(
                schedules.insert().values(
                    id=sid,
                    tenant=tenant,
                    name=name,
                    action=action,
                    params=self._sealed(params),
                    cron=cron,
                    depends_on=json.dumps(depends_on),
                    enabled=int(enabled),
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get(sid)

    def update(self, sid: str, **values) -> dict | None:
        if "params" in values:
            values["params"] = self._sealed(values["params"])
        if "depends_on" in values:
            values["depends_on"] = json.dumps(values["depends_on"])
        if "enabled" in values:
            values["enabled"] = int(values["enabled"])
        with self.engine.begin() as conn:
            conn.execute(schedules.update().where(schedules.c.id == sid).values(updated_at=time.time(), **values))
        return self.get(sid)

    def delete(self, sid: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(schedules.delete().where(schedules.c.id == sid)).rowcount > 0

    def get(self, sid: str, tenant: Any = None, any_tenant: bool = True) -> dict | None:
        """By id, else by name (of `tenant` unless `any_tenant`; an id match comes first)."""
        found = self.lookup(sid)
        by_id = [s for s in found if s["id"] == sid]
        if by_id:
            return by_id[0]
        named = [s for s in found if any_tenant or s["tenant"] == tenant]
        return named[0] if named else None

    def lookup(self, ref: str) -> list[dict]:
        """Every schedule whose id or name is `ref` (names are unique per tenant only)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schedules).where((schedules.c.id == ref) | (schedules.c.name == ref)).order_by(schedules.c.id)
            ).all()
        return [_schedule(r, self.vault) for r in rows]

    def list(self, tenants: set[str] | None = None) -> list[dict]:
        """Every schedule, or those of `tenants` (None = all)."""
        q = select(schedules).order_by(schedules.c.name, schedules.c.tenant)
        if tenants is not None:
            q = q.where(schedules.c.tenant.in_(sorted(tenants)))
        with self.engine.connect() as conn:
            return [_schedule(r, self.vault) for r in conn.execute(q).all()]

    # -- runs
    def insert_run(self, schedule_id: str, fire_key: str, trigger: str, operator: str) -> dict | None:
        """The run row, or None when this (schedule, fire_key) already fired (here or in another process)."""
        rid = uuid.uuid4().hex[:16]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    schedule_runs.insert().values(
                        id=rid,
                        schedule_id=schedule_id,
                        fire_key=fire_key,
                        trigger=trigger,
                        operator=operator,
                        status="running",
                        started_at=time.time(),
                    )
                )
        except IntegrityError:
            return None
        return self.get_run(rid)

    def finish_run(self, rid: str, status: str, result: Any = None, error: str | None = None) -> None:
        counts = (
            {k: v for k, v in (result or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if isinstance(result, dict)
            else {}
        )
        now = time.time()
        with self.engine.begin() as conn:
            started = conn.execute(select(schedule_runs.c.started_at).where(schedule_runs.c.id == rid)).scalar()
            conn.execute(
                schedule_runs.update()
                .where(schedule_runs.c.id == rid)
                .values(
                    status=status,
                    finished_at=now,
                    duration_ms=int((now - (started or now)) * 1000),
                    counts=json.dumps(counts),
                    result=json.dumps(result, default=str) if result is not None else None,
                    error=error,
                )
            )

    def set_job(self, rid: str, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(schedule_runs.update().where(schedule_runs.c.id == rid).values(job_id=job_id))

    def get_run(self, rid: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schedule_runs).where(schedule_runs.c.id == rid)).first()
        return _run(row) if row else None

    def get_run_by_key(self, schedule_id: str, fire_key: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schedule_runs).where(
                    schedule_runs.c.schedule_id == schedule_id, schedule_runs.c.fire_key == fire_key
                )
            ).first()
        return _run(row) if row else None

    def runs(
        self, schedule_id: str | None = None, status: str | None = None, limit: int = 50, since: float | None = None
    ) -> list[dict]:
        q = select(schedule_runs).order_by(schedule_runs.c.started_at.desc()).limit(limit)
        if schedule_id:
            q = q.where(schedule_runs.c.schedule_id == schedule_id)
        if status:
            q = q.where(schedule_runs.c.status == status)
        if since is not None:
            q = q.where(schedule_runs.c.finished_at >= since)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(q).all()]

    def latest_status(self, schedule_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(schedule_runs.c.status)
                .where(schedule_runs.c.schedule_id == schedule_id)
                .order_by(schedule_runs.c.started_at.desc())
                .limit(1)
            ).scalar()

    def status_counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            rows = conn.execute(select(schedule_runs.c.status, func.count()).group_by(schedule_runs.c.status)).all()
        return {s: int(n) for s, n in rows}
