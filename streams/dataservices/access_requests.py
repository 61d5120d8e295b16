"""Requests for access to any catalogue dataset (the resource catalogue's "request access" action).

    requests = AccessRequests(engine, service_store)
    req = requests.ask(scope, urn, application, purpose, fields, requester, auth, period_days, ip_allowlist)
    requests.listing(scope, identities)        # what I asked, and what waits for me as owner
    out = requests.decide(scope, req_id, actor, identities, approve, fields, comment, service, version, row_filter)

A person with services:apply asks for a dataset (purpose, the dataset's fields wanted, a period). The
dataset's owner decides: its business metadata `owner` in the catalogue, a user name or a group
(`group:<name>` or the bare group name; `identities` are the deciding person's name and groups). The
owner grants the fields asked or fewer, or rejects, with a comment. An approval becomes an approved
application (store.py) of a published service version serving the dataset (`dataset` in its
document; the owner may name it, else the newest one exposing every granted field), so it grants
what the application flow grants: an app key (or a signing secret) scoped to that version and those
fields, masked by classification, with the same expiry, IP allowlist and revocation. A dataset that
no published service serves cannot be approved yet (409 saying so): a service must be published.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine

from schemas.catalog.store import CatalogStore, NotInCatalogue
from streams.dataservices.model import Conflict, NotFound, Refused, ServiceError, ServiceSpec, problem
from streams.dataservices.store import ServiceStore, asked_access
from streams.dataservices.tables import ds_access_requests, ds_services


def _row(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset": row.dataset,
        "owner": row.owner,
        "application": row.application,
        "purpose": row.purpose,
        "fields_wanted": json.loads(row.fields_wanted),
        "period_days": row.period_days,
        "auth": row.auth,
        "ip_allowlist": json.loads(row.ip_allowlist) if row.ip_allowlist else [],
        "requester": row.requester,
        "status": row.status,
        "fields_granted": json.loads(row.fields_granted) if row.fields_granted else None,
        "decided_by": row.decided_by,
        "comment": row.comment,
        "service": row.service,
        "version": row.version,
        "application_id": row.application_id,
        "created_at": row.created_at,
        "decided_at": row.decided_at,
    }


def owned_by(owner: str | None, identities: set[str]) -> bool:
    """The owner named in the catalogue is this person or one of their groups."""
    if not owner:
        return False
    return owner in identities or owner.removeprefix("group:") in {
        i.removeprefix("group:") for i in identities if i.startswith("group:")
    }


class AccessRequests:
    def __init__(self, engine: Engine, services: ServiceStore):
        self.engine = engine
        self.services = services
        self.catalog = CatalogStore(engine)

    def _dataset(self, scope: str, urn: str) -> dict[str, Any]:
        try:
            return self.catalog.dataset({scope}, urn)
        except NotInCatalogue:
            raise NotFound(f"no dataset {urn} in the catalogue / 目录中没有数据集 {urn}") from None

    def ask(
        self,
        scope: str,
        urn: str,
        application: str,
        purpose: str,
        fields: list[str],
        requester: str,
        auth: str = "key",
        period_days: int | None = None,
        ip_allowlist: list[str] | None = None,
    ) -> dict[str, Any]:
        period_days, allow = asked_access(auth, period_days, ip_allowlist)
        ds = self._dataset(scope, urn)
        known = {f["name"] for f in ds["fields"]}
        unknown = [f for f in fields if f not in known]
        if unknown or not fields:
            raise ServiceError(
                [problem("fields", f"not fields of the dataset: {unknown[:10]}", f"数据集没有这些字段：{unknown[:10]}")]
            )
        owner = ds["business"].get("owner")
        if not owner:
            raise Conflict(
                [
                    problem(
                        "owner",
                        "the dataset has no owner in the catalogue to decide; ask its steward to name one",
                        "该数据集在目录中没有所有者，无人审批；请数据管理员先指定所有者",
                    )
                ]
            )
        with self.engine.begin() as conn:
            req_id = conn.execute(
                insert(ds_access_requests).values(
                    scope=scope,
                    dataset=urn,
                    owner=owner,
                    application=application,
                    purpose=purpose,
                    fields_wanted=json.dumps(list(dict.fromkeys(fields)), ensure_ascii=False),
                    period_days=period_days,
                    auth=auth,
                    ip_allowlist=json.dumps(allow),
                    requester=requester,
                    status="pending",
                    created_at=time.time(),
                )
            ).inserted_primary_key[0]
        return self.get(scope, req_id)

    def get(self, scope: str, req_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ds_access_requests).where(ds_access_requests.c.scope == scope, ds_access_requests.c.id == req_id)
            ).first()
        if row is None:
            raise NotFound(f"no access request {req_id} / 没有访问申请 {req_id}")
        return _row(row)

    def listing(self, scope: str, identities: set[str], dataset: str | None = None) -> list[dict[str, Any]]:
        """The requests this person made or may decide (as owner, by name or group), newest first."""
        owners = set(identities) | {i.removeprefix("group:") for i in identities}
        query = select(ds_access_requests).where(
            ds_access_requests.c.scope == scope,
            or_(ds_access_requests.c.requester.in_(identities), ds_access_requests.c.owner.in_(owners)),
        )
        if dataset:
            query = query.where(ds_access_requests.c.dataset == dataset)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(ds_access_requests.c.id.desc()).limit(1000)).all()
        return [_row(r) for r in rows]

    def _serving(self, scope: str, urn: str, granted: list[str], name: str | None, version: int | None):
        """(name, version) of the published service version the grant applies to."""
        query = select(ds_services.c.name, ds_services.c.version, ds_services.c.body).where(
            ds_services.c.scope == scope, ds_services.c.status == "published"
        )
        if name:
            query = query.where(ds_services.c.name == name)
            if version:
                query = query.where(ds_services.c.version == version)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(ds_services.c.id.desc())).all()
        for row in rows:
            spec = ServiceSpec.model_validate({**json.loads(row.body), "name": row.name})
            if spec.dataset == urn and all(f in spec.fields for f in granted):
                return row.name, row.version
        named = f"service {name!r}" + (f" version {version}" if version else "") if name else "no published service"
        raise Conflict(
            [
                problem(
                    "service",
                    f"{named} serves this dataset with the fields {granted[:20]}; publish a service for it first",
                    f"没有已发布的服务以这些字段提供该数据集：{granted[:20]}；请先发布服务",
                )
            ]
        )

    def _claim(self, req_id: int, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(ds_access_requests)
                .where(ds_access_requests.c.id == req_id, ds_access_requests.c.status == "pending")
                .values(**values)
            ).rowcount
        if not done:
            raise Conflict(
                [problem("status", f"request {req_id} was decided meanwhile", f"申请 {req_id} 已被他人审批")]
            )

    def _release(self, req_id: int) -> None:
        cleared = dict.fromkeys(("decided_by", "comment", "decided_at", "fields_granted", "service", "version"))
        with self.engine.begin() as conn:
            conn.execute(
                update(ds_access_requests).where(ds_access_requests.c.id == req_id).values(status="pending", **cleared)
            )

    def decide(
        self,
        scope: str,
        req_id: int,
        actor: str,
        identities: set[str],
        approve: bool,
        fields: list[str] | None = None,
        comment: str = "",
        service: str | None = None,
        version: int | None = None,
        row_filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        req = self.get(scope, req_id)
        owner = self._dataset(scope, req["dataset"])["business"].get("owner")  # the owner now, not when asked
        if not owned_by(owner, identities):
            raise Refused(
                [
                    problem(
                        "decided_by",
                        "only the dataset's owner decides its access requests",
                        "只有数据集的所有者可以审批",
                    )
                ]
            )
        if req["status"] != "pending":
            raise Conflict(
                [
                    problem(
                        "status", f"request {req_id} is already {req['status']}", f"申请 {req_id} 已是 {req['status']}"
                    )
                ]
            )
        values: dict[str, Any] = {"decided_by": actor, "comment": comment, "decided_at": time.time()}
        out: dict[str, Any] = {}
        name = ver = granted = None
        if approve:
            granted = req["fields_wanted"] if fields is None else list(dict.fromkeys(fields))
            extra = [f for f in granted if f not in req["fields_wanted"]]
            if extra or not granted:
                raise ServiceError(
                    [
                        problem(
                            "fields",
                            f"grant a non-empty part of the fields asked for (not asked: {extra[:10]})",
                            f"批准的字段须为申请字段中的非空部分（未申请：{extra[:10]}）",
                        )
                    ]
                )
            name, ver = self._serving(scope, req["dataset"], granted, service, version)
            values |= {
                "status": "approved",
                "fields_granted": json.dumps(granted, ensure_ascii=False),
                "service": name,
                "version": ver,
            }
        else:
            values["status"] = "rejected"
        self._claim(req_id, values)  # first: two owners deciding at once get one application, not two
        if approve:
            app = None
            try:
                app = self.services.apply(
                    scope,
                    name,
                    ver,
                    req["application"],
                    req["purpose"],
                    granted,
                    req["requester"],
                    req["auth"],
                    req["period_days"],
                    req["ip_allowlist"],
                )
                out = self.services.settle_application(scope, app["id"], actor, True, granted, row_filter, comment)
            except BaseException:
                if app is not None:  # e.g. a bad row filter: the half-made application is closed
                    with suppress(Exception):
                        self.services.settle_application(scope, app["id"], actor, False, comment="not approved")
                self._release(req_id)  # the request waits again, as if not decided
                raise
            with self.engine.begin() as conn:
                conn.execute(
                    update(ds_access_requests).where(ds_access_requests.c.id == req_id).values(application_id=app["id"])
                )
        decided = self.get(scope, req_id)
        for shown_once in ("key", "secret", "key_id", "expires_at"):  # the credential, in this answer only
            if shown_once in out:
                decided[shown_once] = out[shown_once]
        return decided
