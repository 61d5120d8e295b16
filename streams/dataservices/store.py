"""Services and applications in the control DB: versions, review, applications, app keys.

    store = ServiceStore(engine)
    store.save_draft(scope, spec, author)             # new service v1, the draft edited, or the next version
    store.submit(scope, name, actor)                  # the draft -> in_review
    store.decide(scope, name, reviewer, approve, comment)   # -> published (or back to draft); not by the author
    store.offline(scope, name, version, actor)        # published -> offline (no longer served)
    store.get(scope, name, version=None) / .versions(scope, name) / .services(scope)
    app = store.apply(scope, name, version, application, purpose, fields, applicant)
    store.decide_application(scope, app_id, actor, approve, fields, row_filter, comment) -> {..., "key"}
    store.revoke(scope, app_id, actor)
    store.grant(key_id) -> the application row and its service version, read on every call
    store.signing_secret(key_id) -> the hmac secret of a signing application (unsealed), or None

Access controls (migration 0011): an application asks for `auth` ("key" or "hmac"), a `period_days`
and an `ip_allowlist`; the owner's approval may shorten the period, set the allowlist and daily /
monthly quotas. An "hmac" application gets its signing secret once (stored sealed with the vault
the API passes in, `ServiceStore(engine, vault)`), a "key" application its app key.

Lifecycle: draft -> in_review -> published -> offline. The reviewer may not be the author (the
review pattern of quality_stream/governance/store.py). Only the service's owner (the author of its
first version) decides applications; a key is shown once and stored hashed (api/identity/apikeys.py's
`hlk_<id>_<secret>` shape under the `hls_` prefix, SHA-256 of the secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from streams.dataservices.access import parse_cidrs
from streams.dataservices.model import Conflict, NotFound, Refused, ServiceError, ServiceSpec, problem
from streams.dataservices.tables import ds_applications, ds_services

KEY_PREFIX = "hls_"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def new_key() -> tuple[str, str, str]:
    """(key_id, the full key to show once, the hash to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    if not key or not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    return (key_id, secret) if sep and key_id and secret else None


def key_matches(stored_hash: str | None, secret: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(stored_hash, digest(secret))


def _service(row) -> dict[str, Any]:
    return {
        **json.loads(row.body),
        "name": row.name,
        "version": row.version,
        "status": row.status,
        "author": row.author,
        "reviewer": row.reviewer,
        "comment": row.comment,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _application(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "application": row.application,
        "service": row.service,
        "version": row.version,
        "purpose": row.purpose,
        "fields_wanted": json.loads(row.fields_wanted),
        "applicant": row.applicant,
        "status": row.status,
        "fields_granted": json.loads(row.fields_granted) if row.fields_granted else None,
        "row_filter": json.loads(row.row_filter) if row.row_filter else None,
        "decided_by": row.decided_by,
        "comment": row.comment,
        "key_id": row.key_id,
        "created_at": row.created_at,
        "decided_at": row.decided_at,
        "revoked_at": row.revoked_at,
        "auth": row.auth or "key",
        "ip_allowlist": json.loads(row.ip_allowlist) if row.ip_allowlist else [],
        "quota_daily": row.quota_daily,
        "quota_monthly": row.quota_monthly,
        "period_days": row.period_days,
        "expires_at": row.expires_at,
    }


def _state(what: str, zh: str) -> Conflict:
    return Conflict([problem("status", what, zh)])


AUTH_SCHEMES = ("key", "hmac")
MAX_PERIOD_DAYS = 3660


def _cidrs(values: list[str] | None) -> list[str]:
    try:
        return parse_cidrs(values)
    except ValueError as exc:
        raise ServiceError([problem("ip_allowlist", str(exc), f"不是有效的 IP 地址或网段：{exc}")]) from None


def _count(field: str, value: int | None, top: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ServiceError(
            [problem(field, f"{field} must be a whole number 1..{top}", f"{field} 须为 1..{top} 的整数")]
        )
    return value


def asked_access(auth: str, period_days: int | None, ip_allowlist: list[str] | None) -> tuple[int | None, list[str]]:
    """What an application (or an access request) asks, checked: (period_days, CIDRs)."""
    if auth not in AUTH_SCHEMES:
        raise ServiceError([problem("auth", "auth is key or hmac", "auth 须为 key 或 hmac")])
    return _count("period_days", period_days, MAX_PERIOD_DAYS), _cidrs(ip_allowlist)


class ServiceStore:
    def __init__(self, engine: Engine, vault=None):
        self.engine = engine
        self.vault = vault  # connectors.secrets.Vault (or anything with encrypt/decrypt): seals hmac secrets

    # -- services ---------------------------------------------------------------------------
    def _latest(self, conn, scope: str, name: str):
        return conn.execute(
            select(ds_services)
            .where(ds_services.c.scope == scope, ds_services.c.name == name)
            .order_by(ds_services.c.version.desc())
            .limit(1)
        ).first()

    def save_draft(self, scope: str, spec: ServiceSpec, author: str) -> dict[str, Any]:
        body = json.dumps(spec.model_dump(exclude={"name"}), ensure_ascii=False, sort_keys=True)
        now = time.time()
        with self.engine.begin() as conn:
            latest = self._latest(conn, scope, spec.name)
            if latest is not None and latest.status == "in_review":
                raise _state(
                    f"service {spec.name!r} version {latest.version} is in review; wait for its decision",
                    f"服务 {spec.name!r} 第 {latest.version} 版正在审核，请等待审核结果",
                )
            if latest is not None and latest.status == "draft":
                conn.execute(update(ds_services).where(ds_services.c.id == latest.id).values(body=body, updated_at=now))
                version = latest.version
            else:
                version = 1 if latest is None else latest.version + 1
                conn.execute(
                    insert(ds_services).values(
                        scope=scope,
                        name=spec.name,
                        version=version,
                        status="draft",
                        body=body,
                        author=author,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return self.get(scope, spec.name, version)

    def get(self, scope: str, name: str, version: int | None = None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            if version is None:
                row = self._latest(conn, scope, name)
            else:
                row = conn.execute(
                    select(ds_services).where(
                        ds_services.c.scope == scope, ds_services.c.name == name, ds_services.c.version == version
                    )
                ).first()
        if row is None:
            if version is None:
                raise NotFound(f"no service {name!r} / 没有服务 {name!r}")
            raise NotFound(f"service {name!r} has no version {version} / 服务 {name!r} 没有第 {version} 版")
        return _service(row)

    def versions(self, scope: str, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ds_services)
                .where(ds_services.c.scope == scope, ds_services.c.name == name)
                .order_by(ds_services.c.version)
            ).all()
        if not rows:
            raise NotFound(f"no service {name!r} / 没有服务 {name!r}")
        return [_service(r) for r in rows]

    def services(self, scope: str, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """The latest version of each service by name; `limit`/`offset`: one page of them."""
        latest = (
            select(ds_services.c.name, func.max(ds_services.c.version).label("v"))
            .where(ds_services.c.scope == scope)
            .group_by(ds_services.c.name)
            .subquery()
        )
        query = (
            select(ds_services)
            .join(latest, (ds_services.c.name == latest.c.name) & (ds_services.c.version == latest.c.v))
            .where(ds_services.c.scope == scope)
            .order_by(ds_services.c.name)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit) if limit else query).all()
        return [_service(r) for r in rows]

    def service_count(self, scope: str) -> int:
        """How many services (names) the scope has."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count(func.distinct(ds_services.c.name))).where(ds_services.c.scope == scope)
            ).scalar_one()

    def owner(self, scope: str, name: str) -> str:
        return self.get(scope, name, 1)["author"] if self._has(scope, name) else ""

    def _has(self, scope: str, name: str) -> bool:
        with self.engine.connect() as conn:
            return self._latest(conn, scope, name) is not None

    def _move(self, scope: str, name: str, version: int | None, frm: str, values: dict) -> dict[str, Any]:
        current = self.get(scope, name, version)
        if current["status"] != frm:
            raise _state(
                f"service {name!r} version {current['version']} is {current['status']}, not {frm}",
                f"服务 {name!r} 第 {current['version']} 版状态为 {current['status']}，不是 {frm}",
            )
        with self.engine.begin() as conn:
            conn.execute(
                update(ds_services)
                .where(
                    ds_services.c.scope == scope,
                    ds_services.c.name == name,
                    ds_services.c.version == current["version"],
                    ds_services.c.status == frm,
                )
                .values(**values, updated_at=time.time())
            )
        return self.get(scope, name, current["version"])

    def submit(self, scope: str, name: str, actor: str) -> dict[str, Any]:
        return self._move(scope, name, None, "draft", {"status": "in_review"})

    def decide(self, scope: str, name: str, reviewer: str, approve: bool, comment: str = "") -> dict[str, Any]:
        current = self.get(scope, name)
        if current["status"] == "in_review" and current["author"] == reviewer:
            raise Refused(
                [problem("reviewer", "the author of a service cannot review it", "服务的作者不能审核自己的服务")]
            )
        status = "published" if approve else "draft"
        return self._move(scope, name, None, "in_review", {"status": status, "reviewer": reviewer, "comment": comment})

    def offline(self, scope: str, name: str, version: int, actor: str) -> dict[str, Any]:
        return self._move(scope, name, version, "published", {"status": "offline"})

    def published(self, scope: str, name: str, version: int) -> ServiceSpec:
        current = self.get(scope, name, version)
        if current["status"] != "published":
            raise NotFound(f"service {name!r} version {version} is not published / 服务 {name!r} 第 {version} 版未发布")
        return ServiceSpec.model_validate({k: v for k, v in current.items() if k in ServiceSpec.model_fields})

    # -- applications -------------------------------------------------------------------------
    def apply(
        self,
        scope: str,
        name: str,
        version: int,
        application: str,
        purpose: str,
        fields: list[str],
        applicant: str,
        auth: str = "key",
        period_days: int | None = None,
        ip_allowlist: list[str] | None = None,
    ) -> dict[str, Any]:
        period_days, allow = asked_access(auth, period_days, ip_allowlist)
        spec = self.published(scope, name, version)
        unknown = [f for f in fields if f not in spec.fields]
        if unknown:
            raise ServiceError(
                [
                    problem(
                        "fields", f"not exposed by the service: {unknown[:10]}", f"服务未开放这些字段：{unknown[:10]}"
                    )
                ]
            )
        with self.engine.begin() as conn:
            app_id = conn.execute(
                insert(ds_applications).values(
                    scope=scope,
                    application=application,
                    service=name,
                    version=version,
                    purpose=purpose,
                    fields_wanted=json.dumps(fields, ensure_ascii=False),
                    applicant=applicant,
                    status="pending",
                    created_at=time.time(),
                    auth=auth,
                    period_days=period_days,
                    ip_allowlist=json.dumps(allow),
                )
            ).inserted_primary_key[0]
        return self.application(scope, app_id)

    def application(self, scope: str, app_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ds_applications).where(ds_applications.c.scope == scope, ds_applications.c.id == app_id)
            ).first()
        if row is None:
            raise NotFound(f"no application {app_id} / 没有申请 {app_id}")
        return _application(row)

    def applications(self, scope: str, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ds_applications)
                .where(ds_applications.c.scope == scope, ds_applications.c.service == name)
                .order_by(ds_applications.c.id)
            ).all()
        return [_application(r) for r in rows]

    def decide_application(self, scope: str, app_id: int, actor: str, approve: bool, *args, **kwargs) -> dict[str, Any]:
        """The service owner's decision: settle_application's arguments (fields, row_filter,
        comment, quotas, ip_allowlist, period_days)."""
        app = self.application(scope, app_id)
        if self.owner(scope, app["service"]) != actor:
            raise Refused(
                [
                    problem(
                        "decided_by",
                        "only the service's owner decides its applications",
                        "只有服务的所有者可以审批申请",
                    )
                ]
            )
        return self.settle_application(scope, app_id, actor, approve, *args, **kwargs)

    def settle_application(
        self,
        scope: str,
        app_id: int,
        actor: str,
        approve: bool,
        fields: list[str] | None = None,
        row_filter: dict[str, Any] | None = None,
        comment: str = "",
        quota_daily: int | None = None,
        quota_monthly: int | None = None,
        ip_allowlist: list[str] | None = None,
        period_days: int | None = None,
    ) -> dict[str, Any]:
        """The decision itself, once the caller's right to decide was checked (by the service's owner
        above; by the dataset's owner for a request of access_requests.py)."""
        app = self.application(scope, app_id)
        if app["status"] != "pending":
            raise _state(f"application {app_id} is already {app['status']}", f"申请 {app_id} 已是 {app['status']}")
        values: dict[str, Any] = {"decided_by": actor, "comment": comment, "decided_at": time.time()}
        key = None
        if approve:
            granted = app["fields_wanted"] if fields is None else fields
            extra = [f for f in granted if f not in app["fields_wanted"]]
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
            bad = [k for k in (row_filter or {}) if not _IDENT.match(k)]
            odd = [
                k for k, v in (row_filter or {}).items() if not isinstance(v, str | int | float) or isinstance(v, bool)
            ]
            if bad or odd:
                raise ServiceError(
                    [
                        problem(
                            "row_filter",
                            "row_filter maps column names to one text or number each",
                            "row_filter 应为列名到单个文本或数值的映射",
                        )
                    ]
                )
            values |= self._access(app, quota_daily, quota_monthly, ip_allowlist, period_days)
            key_id, key, hashed = new_key()
            values |= {
                "status": "approved",
                "fields_granted": json.dumps(granted, ensure_ascii=False),
                "row_filter": json.dumps(row_filter or {}, ensure_ascii=False),
                "key_id": key_id,
                "key_hash": hashed,
            }
            if app["auth"] == "hmac":
                if self.vault is None:
                    raise RuntimeError("signing applications need the store's vault")
                values["secret_sealed"] = self.vault.encrypt(split_key(key)[1])
        else:
            values["status"] = "rejected"
        with self.engine.begin() as conn:
            done = conn.execute(
                update(ds_applications)
                .where(ds_applications.c.id == app_id, ds_applications.c.status == "pending")
                .values(**values)
            ).rowcount
        if not done:
            raise _state(f"application {app_id} was decided meanwhile", f"申请 {app_id} 已被他人审批")
        out = self.application(scope, app_id)
        if key and out["auth"] == "hmac":
            out["secret"] = split_key(key)[1]  # shown once: kept sealed, to recompute signatures
        elif key:
            out["key"] = key  # shown once: only its hash is kept
        return out

    def _access(self, app, quota_daily, quota_monthly, ip_allowlist, period_days) -> dict[str, Any]:
        """The access controls of an approval: the owner's values, else what the application asked."""
        days = _count("period_days", period_days, MAX_PERIOD_DAYS)
        if days is not None and app["period_days"] and days > app["period_days"]:
            raise ServiceError([problem("period_days", "longer than the period asked for", "有效期不能长于申请的期限")])
        days = days or app["period_days"]
        return {
            "quota_daily": _count("quota_daily", quota_daily, 1_000_000_000),
            "quota_monthly": _count("quota_monthly", quota_monthly, 1_000_000_000),
            "ip_allowlist": json.dumps(_cidrs(ip_allowlist) if ip_allowlist is not None else app["ip_allowlist"]),
            "period_days": days,
            "expires_at": time.time() + days * 86400 if days else None,
        }

    def signing_secret(self, key_id: str) -> str | None:
        """The hmac secret of a signing application, unsealed; never logged or answered."""
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(ds_applications.c.secret_sealed).where(ds_applications.c.key_id == key_id)
            ).scalar()
        return self.vault.decrypt(sealed) if sealed and self.vault is not None else None

    def revoke(self, scope: str, app_id: int, actor: str) -> dict[str, Any]:
        app = self.application(scope, app_id)
        if actor not in (self.owner(scope, app["service"]), app["applicant"]):
            raise Refused(
                [
                    problem(
                        "revoked_by",
                        "only the service's owner or the applicant revokes",
                        "只有服务所有者或申请人可以撤销",
                    )
                ]
            )
        if app["status"] != "approved":
            raise _state(
                f"application {app_id} is {app['status']}, not approved",
                f"申请 {app_id} 状态为 {app['status']}，未获批准",
            )
        with self.engine.begin() as conn:
            conn.execute(
                update(ds_applications)
                .where(ds_applications.c.id == app_id)
                .values(status="revoked", revoked_at=time.time())
            )
        return self.application(scope, app_id)

    def grant(self, key_id: str) -> tuple[str, dict[str, Any], str | None] | None:
        """(scope, the application, its stored key hash) for a key id, or None; read on every call,
        so a revocation applies to the next one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ds_applications).where(ds_applications.c.key_id == key_id)).first()
        return None if row is None else (row.scope, _application(row), row.key_hash)
