"""The data-services tables of the control DB (migration 0008_services). Rows are kept per `scope`:
the owning tenant ("" = no tenant, the operator's), as the catalogue and the standards do.

`ds_services` holds one row per (name, version); `body` is the service document as JSON (resource,
fields, filters, page sizes, masking, rate limit), so a version is kept and compared whole. A
published row is never edited (a change is a new draft version). `ds_applications` holds one
application for one service version: what was asked (purpose, fields), what was decided (fields
granted, the row filter bound to it) and, once approved, its app key: `key_id` in clear, only a
SHA-256 of the secret (`key_hash`, api/identity/apikeys.py's scheme).

Migration 0011_service_access adds the access controls of an approved application: `auth`
("key": a plain app key, "hmac": signed requests), the signing secret sealed (`secret_sealed`,
Fernet as connector secrets, connectors/secrets.py: the server must recompute signatures, so a hash
is not enough), `ip_allowlist` (JSON list of CIDRs, empty = anywhere), `quota_daily` /
`quota_monthly` (calls, NULL = none), `period_days` (asked for) and `expires_at` (decision + period).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

ds_services = Table(
    "ds_services",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # draft | in_review | published | offline
    Column("body", Text, nullable=False),  # the service document (JSON)
    Column("author", String(200), nullable=False),
    Column("reviewer", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "name", "version", name="uq_ds_services_scope_name_version"),
    Index("ix_ds_services_status", "scope", "status"),
)

ds_applications = Table(
    "ds_applications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("application", String(100), nullable=False),  # the consuming application's name
    Column("service", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("fields_wanted", Text, nullable=False),  # JSON list
    Column("applicant", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # pending | approved | rejected | revoked
    Column("fields_granted", Text, nullable=True),  # JSON list
    Column("row_filter", Text, nullable=True),  # JSON {field: value}, ANDed to every call
    Column("decided_by", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("key_id", String(40), nullable=True),
    Column("key_hash", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("auth", String(10), nullable=True),  # key | hmac (NULL: key, applications before 0011)
    Column("secret_sealed", Text, nullable=True),  # the hmac signing secret, Fernet-sealed
    Column("ip_allowlist", Text, nullable=True),  # JSON list of CIDRs
    Column("quota_daily", Integer, nullable=True),
    Column("quota_monthly", Integer, nullable=True),
    Column("period_days", Integer, nullable=True),
    Column("expires_at", Float, nullable=True),
    UniqueConstraint("key_id", name="uq_ds_applications_key_id"),
    Index("ix_ds_applications_service", "scope", "service"),
)

# Migration 0015_services_access: a request for access to any catalogue dataset (the "request access"
# action of the resource catalogue). The dataset's owner (its business metadata `owner`, a user or a
# group) decides; an approval becomes an approved `ds_applications` row (`application_id`) of a
# published service serving the dataset, so it grants what an application grants.
ds_access_requests = Table(
    "ds_access_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("dataset", String(1000), nullable=False),  # the catalogue URN
    Column("owner", String(200), nullable=True),  # the dataset's owner when asked (listing; decided by the current one)
    Column("application", String(100), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("fields_wanted", Text, nullable=False),  # JSON list of the dataset's field names
    Column("period_days", Integer, nullable=True),
    Column("auth", String(10), nullable=False),  # key | hmac
    Column("ip_allowlist", Text, nullable=True),  # JSON list of CIDRs
    Column("requester", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # pending | approved | rejected
    Column("fields_granted", Text, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("service", String(100), nullable=True),  # the service version the approval applies to
    Column("version", Integer, nullable=True),
    Column("application_id", Integer, nullable=True),  # the approved ds_applications row
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Index("ix_ds_access_requests_scope", "scope", "status"),
)
