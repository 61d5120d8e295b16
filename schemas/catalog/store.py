"""The catalogue in the control DB: systems, datasets with their versions, business metadata.

    store = CatalogStore(engine)                       # the caller hands the engine (deploy.control.engine_for)
    outcome = store.record(harvest, scope="civil")     # new versions only where the shape changed
    store.datasets(scopes, system=None, kind=None)     # scopes: None = every tenant, else a set of tenants
    store.dataset(scopes, urn) / .versions(...) / .version(...) / .diff(scopes, urn, a, b)
    store.update_business(scopes, urn, BusinessPatch)  # -> the dataset after the edit

`scope` is the owning tenant ("" = none). Search documents (schemas.catalog.search) are rewritten
for a dataset whenever its shape or business metadata changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from schemas.catalog import business as biz
from schemas.catalog import diff as diffs
from schemas.catalog.model import DatasetInfo, Harvest
from schemas.catalog.tables import catalog_datasets, catalog_search_docs, catalog_systems, catalog_versions


class NotInCatalogue(LookupError):
    pass


class NoSuchVersion(LookupError):
    pass


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def shape_hash(shape: dict[str, Any]) -> str:
    return hashlib.sha256(_dumps(shape).encode()).hexdigest()


def scope_of(tenant: str | None) -> str:
    return tenant or ""


def _visible(column, scopes: set[str] | None):
    """scopes None: every tenant (and the operator's own entries); else those tenants only."""
    return True if scopes is None else column.in_(sorted(scopes))


@dataclass
class Outcome:
    system: str
    datasets: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "datasets": self.datasets,
            "new": len(self.new),
            "changed": self.changed,
            "unchanged": self.unchanged,
            "errors": self.errors,
        }


def search_docs(scope: str, dataset_id: int, ds: dict[str, Any]) -> list[dict[str, Any]]:
    """One document for the dataset, one per field: what a query is matched against."""
    b = ds["business"]
    tags = b.get("tags") or []
    props = ds["properties"]
    common = {"scope": scope, "urn": ds["urn"], "dataset_id": dataset_id, "system_urn": ds["system_urn"]}
    text = [ds["name"], props.get("comment"), b.get("description"), b.get("owner"), b.get("department"), *tags]
    docs = [
        {
            **common,
            "kind": "dataset",
            "field": None,
            "name": ds["name"],
            "type": ds["kind"],
            "tags": _dumps(tags) if tags else None,
            "classification": b.get("classification"),
            "owner": b.get("owner"),
            "body": " ".join(t for t in text if t),
        }
    ]
    per_field = b.get("fields") or {}
    for f in ds["fields"]:
        fb = per_field.get(f["name"], {})
        ftags = fb.get("tags") or []
        words = [f["name"], f.get("comment"), fb.get("description"), *ftags, ds["name"]]
        docs.append(
            {
                **common,
                "kind": "field",
                "field": f["name"],
                "name": f["name"],
                "type": (f.get("type") or "")[:200],
                "tags": _dumps(ftags) if ftags else None,
                "classification": fb.get("classification") or b.get("classification"),
                "owner": b.get("owner"),
                "body": " ".join(t for t in words if t),
            }
        )
    return docs


class CatalogStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- harvest
    def record(self, harvest: Harvest, scope: str, now: float | None = None) -> Outcome:
        now = now or time.time()
        system = harvest.system
        outcome = Outcome(system=system.urn, errors=list(harvest.errors))
        with self.engine.begin() as conn:
            self._system(conn, scope, harvest, now)
            known = {
                r.urn: r
                for r in conn.execute(
                    select(
                        catalog_datasets.c.id,
                        catalog_datasets.c.urn,
                        catalog_datasets.c.version,
                        catalog_datasets.c.shape_hash,
                        catalog_datasets.c.business,
                    ).where(catalog_datasets.c.scope == scope, catalog_datasets.c.system_urn == system.urn)
                )
            }
            touched = []
            for ds in harvest.datasets:
                outcome.datasets += 1
                shape = ds.shape()
                digest = shape_hash(shape)
                row = known.get(ds.urn)
                if row is not None and row.shape_hash == digest:
                    outcome.unchanged += 1
                    touched.append({"i": row.id, "p": _dumps(ds.properties), "h": now})
                    continue
                if row is None:
                    dataset_id = self._insert(conn, scope, system.urn, ds, digest, now)
                    outcome.new.append(ds.urn)
                    business = {}
                else:
                    dataset_id = row.id
                    self._new_version(conn, row, ds, shape, digest, now)
                    outcome.changed.append(ds.urn)
                    business = json.loads(row.business)
                self._reindex(conn, scope, dataset_id, self._plain(ds, system.urn, business))
            if touched:
                conn.execute(
                    update(catalog_datasets)
                    .where(catalog_datasets.c.id == bindparam("i"))
                    .values(properties=bindparam("p"), harvested_at=bindparam("h")),
                    touched,
                )
        return outcome

    def _system(self, conn, scope: str, harvest: Harvest, now: float) -> None:
        s = harvest.system
        values = {"name": s.name, "kind": s.kind, "properties": _dumps(s.properties), "harvested_at": now}
        found = conn.execute(
            select(catalog_systems.c.id).where(catalog_systems.c.scope == scope, catalog_systems.c.urn == s.urn)
        ).scalar()
        if found is None:
            conn.execute(insert(catalog_systems).values(scope=scope, urn=s.urn, **values))
            conn.execute(
                insert(catalog_search_docs).values(
                    scope=scope,
                    kind="system",
                    urn=s.urn,
                    dataset_id=None,
                    field=None,
                    system_urn=s.urn,
                    name=s.name,
                    type=s.kind,
                    body=f"{s.name} {s.urn}",
                )
            )
        else:
            conn.execute(update(catalog_systems).where(catalog_systems.c.id == found).values(**values))

    @staticmethod
    def _plain(ds: DatasetInfo, system_urn: str, business: dict) -> dict[str, Any]:
        return {
            "urn": ds.urn,
            "name": ds.name,
            "kind": ds.kind,
            "system_urn": system_urn,
            "properties": ds.properties,
            "fields": [f.as_dict() for f in ds.fields],
            "business": business,
        }

    def _insert(self, conn, scope: str, system_urn: str, ds: DatasetInfo, digest: str, now: float) -> int:
        dataset_id = conn.execute(
            insert(catalog_datasets).values(
                scope=scope,
                urn=ds.urn,
                system_urn=system_urn,
                name=ds.name,
                kind=ds.kind,
                version=1,
                shape_hash=digest,
                properties=_dumps(ds.properties),
                business="{}",
                created_at=now,
                updated_at=now,
                harvested_at=now,
            )
        ).inserted_primary_key[0]
        shape = ds.shape()
        first = diffs.diff_shapes(None, shape)
        conn.execute(
            insert(catalog_versions).values(
                dataset_id=dataset_id,
                version=1,
                shape=_dumps(shape),
                diff=_dumps(first),
                summary="first harvest",
                harvested_at=now,
            )
        )
        return dataset_id

    def _new_version(self, conn, row, ds: DatasetInfo, shape: dict, digest: str, now: float) -> None:
        previous = conn.execute(
            select(catalog_versions.c.shape).where(
                catalog_versions.c.dataset_id == row.id, catalog_versions.c.version == row.version
            )
        ).scalar()
        change = diffs.diff_shapes(json.loads(previous) if previous else None, shape)
        version = row.version + 1
        conn.execute(
            insert(catalog_versions).values(
                dataset_id=row.id,
                version=version,
                shape=_dumps(shape),
                diff=_dumps(change),
                summary=diffs.summary(change)[:500],
                harvested_at=now,
            )
        )
        conn.execute(
            update(catalog_datasets)
            .where(catalog_datasets.c.id == row.id)
            .values(
                version=version,
                shape_hash=digest,
                kind=ds.kind,
                name=ds.name,
                properties=_dumps(ds.properties),
                updated_at=now,
                harvested_at=now,
            )
        )

    @staticmethod
    def _reindex(conn, scope: str, dataset_id: int, ds: dict[str, Any]) -> None:
        conn.execute(delete(catalog_search_docs).where(catalog_search_docs.c.dataset_id == dataset_id))
        conn.execute(insert(catalog_search_docs), search_docs(scope, dataset_id, ds))

    # -- reading
    def systems(self, scopes: set[str] | None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(catalog_systems).where(_visible(catalog_systems.c.scope, scopes)).order_by(catalog_systems.c.urn)
            ).all()
        return [
            {
                "urn": r.urn,
                "name": r.name,
                "kind": r.kind,
                "tenant": r.scope or None,
                "properties": json.loads(r.properties),
                "harvested_at": r.harvested_at,
            }
            for r in rows
        ]

    def datasets(
        self,
        scopes: set[str] | None,
        system: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        where = [_visible(catalog_datasets.c.scope, scopes)]
        if system:
            where.append(catalog_datasets.c.system_urn == system)
        if kind:
            where.append(catalog_datasets.c.kind == kind)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(catalog_datasets).where(and_(*where))).scalar()
            rows = conn.execute(
                select(catalog_datasets)
                .where(and_(*where))
                .order_by(catalog_datasets.c.urn, catalog_datasets.c.scope)
                .limit(limit)
                .offset(offset)
            ).all()
        return total, [self._summary(r) for r in rows]

    @staticmethod
    def _summary(r) -> dict[str, Any]:
        props = json.loads(r.properties)
        return {
            "urn": r.urn,
            "name": r.name,
            "kind": r.kind,
            "system": r.system_urn,
            "tenant": r.scope or None,
            "version": r.version,
            "comment": props.get("comment"),
            "rows": props.get("rows"),
            "business": json.loads(r.business),
            "updated_at": r.updated_at,
            "harvested_at": r.harvested_at,
        }

    def _row(self, conn, scopes: set[str] | None, urn: str):
        row = conn.execute(
            select(catalog_datasets)
            .where(catalog_datasets.c.urn == urn, _visible(catalog_datasets.c.scope, scopes))
            .order_by(catalog_datasets.c.scope)
            .limit(1)
        ).first()
        if row is None:
            raise NotInCatalogue(f"no dataset {urn} in the catalogue")
        return row

    def owner(self, urn: str) -> str | None:
        """The tenant of a dataset whoever holds it (for the audit of refused attempts), or None."""
        with self.engine.connect() as conn:
            scope = conn.execute(
                select(catalog_datasets.c.scope).where(catalog_datasets.c.urn == urn).limit(1)
            ).scalar()
        return scope or None

    def dataset(self, scopes: set[str] | None, urn: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._row(conn, scopes, urn)
            shape = conn.execute(
                select(catalog_versions.c.shape).where(
                    catalog_versions.c.dataset_id == row.id, catalog_versions.c.version == row.version
                )
            ).scalar()
        out = self._summary(row)
        out["properties"] = json.loads(row.properties)
        out["fields"] = json.loads(shape)["fields"]
        per_field = out["business"].get("fields") or {}
        for f in out["fields"]:
            f["business"] = per_field.get(f["name"], {})
        out["created_at"] = row.created_at
        return out

    def versions(self, scopes: set[str] | None, urn: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            row = self._row(conn, scopes, urn)
            rows = conn.execute(
                select(catalog_versions.c.version, catalog_versions.c.summary, catalog_versions.c.harvested_at)
                .where(catalog_versions.c.dataset_id == row.id)
                .order_by(catalog_versions.c.version.desc())
            ).all()
        return [{"version": r.version, "summary": r.summary, "harvested_at": r.harvested_at} for r in rows]

    def version(self, scopes: set[str] | None, urn: str, version: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._row(conn, scopes, urn)
            v = conn.execute(
                select(catalog_versions).where(
                    catalog_versions.c.dataset_id == row.id, catalog_versions.c.version == version
                )
            ).first()
        if v is None:
            raise NoSuchVersion(f"dataset {urn} has no version {version} (versions 1..{row.version})")
        return {
            "version": v.version,
            "shape": json.loads(v.shape),
            "diff": json.loads(v.diff),
            "summary": v.summary,
            "harvested_at": v.harvested_at,
        }

    def diff(self, scopes: set[str] | None, urn: str, a: int, b: int) -> dict[str, Any]:
        old, new = self.version(scopes, urn, a), self.version(scopes, urn, b)
        change = diffs.diff_shapes(old["shape"], new["shape"])
        return {"urn": urn, "from": a, "to": b, "summary": diffs.summary(change), "diff": change}

    # -- business metadata
    def update_business(self, scopes: set[str] | None, urn: str, patch: biz.BusinessPatch) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._row(conn, scopes, urn)
            shape = json.loads(
                conn.execute(
                    select(catalog_versions.c.shape).where(
                        catalog_versions.c.dataset_id == row.id, catalog_versions.c.version == row.version
                    )
                ).scalar()
            )
            unknown = sorted(set(patch.fields or {}) - {f["name"] for f in shape["fields"]})
            if unknown:
                raise ValueError(f"fields: the dataset has no field {', '.join(unknown)}")
            business = biz.apply(json.loads(row.business), patch)
            conn.execute(
                update(catalog_datasets)
                .where(catalog_datasets.c.id == row.id)
                .values(business=_dumps(business), updated_at=time.time())
            )
            plain = {
                "urn": row.urn,
                "name": row.name,
                "kind": row.kind,
                "system_urn": row.system_urn,
                "properties": json.loads(row.properties),
                "fields": shape["fields"],
                "business": business,
            }
            self._reindex(conn, row.scope, row.id, plain)
        return self.dataset({row.scope}, urn) if row.scope else self.dataset(None, urn)
