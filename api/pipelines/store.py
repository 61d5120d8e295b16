"""Versioned pipeline documents with optimistic locking.

`pipelines` holds one row per name with its current version; `pipeline_versions` holds every
saved document, never changed. A save names the version it was based on; the row is moved on by
`UPDATE ... WHERE version = <base>`, so of two concurrent saves from the same base exactly one
wins and the other is refused (Stale) rather than silently overwriting it.
Names are global (they name topics and counters), tenants own them. Secrets in documents are
stored sealed (connectors.secrets.Vault); versions saved before that stay readable as they are.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.audit.log import utc_iso
from connectors.secrets import Vault
from deploy.control import engine_for

metadata = MetaData()

pipelines = Table(
    "pipelines",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("tenant", String(100), nullable=True, index=True),
    Column("owner", String(200), nullable=True),
    Column("version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", Text, nullable=False),
    Column("op", String(20), nullable=False, doc="create | update | rollback | delete"),
    Column("message", Text, nullable=False, default=""),
    Column("author", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)


class NotFound(LookupError):
    pass


class Exists(Exception):
    def __init__(self, tenant: str | None):
        super().__init__("pipeline exists")
        self.tenant = tenant


class Stale(Exception):
    def __init__(self, current: int):
        super().__init__(f"current version is {current}")
        self.current = current


def pipeline_store_for(settings) -> PipelineStore:
    return _store(settings.resolved_control_db_url, str(settings.state_dir))


@lru_cache(maxsize=8)
def _store(url: str, state_dir: str) -> PipelineStore:
    return PipelineStore(url, Vault(state_dir))


class PipelineStore:
    def __init__(self, url: str, vault: Vault):
        self.engine = engine_for(url)
        self.vault = vault

    def head(self, name: str, include_deleted: bool = False) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(pipelines).where(pipelines.c.name == name)).first()
        if row is None or (row._mapping["deleted"] and not include_deleted):
            return None
        return dict(row._mapping)

    def list(self, tenants: set[str] | None, name_contains: str | None = None) -> list[dict]:
        """Current heads by name, `tenants` None = all; `name_contains` a case-insensitive substring."""
        q = self._heads(tenants, name_contains).order_by(pipelines.c.name)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def page(
        self, tenants: set[str] | None, limit: int, offset: int, name_contains: str | None = None
    ) -> tuple[list[dict], int]:
        """One page of `list` (by name) and the number of heads in all pages, both in the query."""
        q = self._heads(tenants, name_contains)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            rows = conn.execute(q.order_by(pipelines.c.name).limit(limit).offset(offset))
            return [dict(r._mapping) for r in rows], total

    @staticmethod
    def _heads(tenants: set[str] | None, name_contains: str | None):
        q = select(pipelines).where(pipelines.c.deleted.is_(False))
        if tenants is not None:
            q = q.where(pipelines.c.tenant.in_(sorted(tenants)))
        if name_contains:
            q = q.where(pipelines.c.name.icontains(name_contains, autoescape=True))
        return q

    def document(self, name: str, version: int | None = None) -> dict | None:
        """{version, document, op, message, author, at} of a version (default: current)."""
        head = self.head(name, include_deleted=version is not None)
        if head is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pipeline_versions).where(
                    pipeline_versions.c.name == name, pipeline_versions.c.version == (version or head["version"])
                )
            ).first()
        if row is None:
            return None
        d = dict(row._mapping)
        d["document"] = self.vault.unseal(json.loads(d["document"]))
        return d

    def current_documents(self, tenants: set[str] | None) -> list[dict]:
        """The current document of every head `list` gives, in one query (not one `document` call
        per pipeline: pages that only need the documents, such as the topics a tenant may see)."""
        heads = self._heads(tenants, None).subquery()
        q = select(pipeline_versions.c.document).join(
            heads, (pipeline_versions.c.name == heads.c.name) & (pipeline_versions.c.version == heads.c.version)
        )
        with self.engine.connect() as conn:
            return [self.vault.unseal(json.loads(row.document)) for row in conn.execute(q.order_by(heads.c.name))]

    def versions(self, name: str) -> list[dict]:
        cols = [c for c in pipeline_versions.c if c.name != "document"]
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(*cols).where(pipeline_versions.c.name == name).order_by(pipeline_versions.c.version)
                )
            ]

    def create(self, name: str, document: dict[str, Any], author: str, message: str = "") -> int:
        """Version 1, or the next version when re-creating a deleted name of the same tenant."""
        tenant, now = document.get("tenant"), utc_iso()
        with self.engine.begin() as conn:
            row = conn.execute(select(pipelines).where(pipelines.c.name == name)).first()
            if row is not None:
                head = row._mapping
                if not head["deleted"] or head["tenant"] != tenant:
                    raise Exists(head["tenant"])
                version = head["version"] + 1
                moved = conn.execute(
                    update(pipelines)
                    .where(pipelines.c.name == name, pipelines.c.version == head["version"])
                    .values(
                        version=version, deleted=False, owner=document.get("owner"), updated_at=now, updated_by=author
                    )
                ).rowcount
                if not moved:
                    raise Exists(head["tenant"])
            else:
                version = 1
                try:
                    conn.execute(
                        insert(pipelines).values(
                            name=name,
                            tenant=tenant,
                            owner=document.get("owner"),
                            version=1,
                            deleted=False,
                            created_at=now,
                            updated_at=now,
                            updated_by=author,
                        )
                    )
                except IntegrityError:
                    raise Exists(None)
            self._add_version(conn, name, version, document, "create", message, author, now)
        return version

    def save(
        self,
        name: str,
        document: dict[str, Any],
        base_version: int,
        author: str,
        message: str = "",
        op: str = "update",
        deleted: bool = False,
    ) -> int:
        """A new version on top of `base_version`; Stale when someone saved since."""
        now = utc_iso()
        with self.engine.begin() as conn:
            head = self.head(name)
            if head is None:
                raise NotFound(name)
            moved = conn.execute(
                update(pipelines)
                .where(pipelines.c.name == name, pipelines.c.version == base_version, pipelines.c.deleted.is_(False))
                .values(
                    version=base_version + 1,
                    tenant=document.get("tenant"),
                    owner=document.get("owner"),
                    updated_at=now,
                    updated_by=author,
                    deleted=deleted,
                )
            ).rowcount
            if not moved:
                raise Stale(self.head(name, include_deleted=True)["version"])
            self._add_version(conn, name, base_version + 1, document, op, message, author, now)
        return base_version + 1

    def _add_version(self, conn, name, version, document, op, message, author, at) -> None:
        sealed = self.vault.seal(document)
        conn.execute(
            insert(pipeline_versions).values(
                name=name,
                version=version,
                document=json.dumps(sealed, sort_keys=True, ensure_ascii=False),
                op=op,
                message=message,
                author=author,
                at=at,
            )
        )
