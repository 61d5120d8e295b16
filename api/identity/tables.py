"""Identity tables in the control database. Lists (roles, groups, grants) are JSON text columns:
the sets are small and always read whole, and this keeps the schema portable (SQLite, PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "identity_users",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("display_name", String(200), nullable=False, default=""),
    Column("tenant", String(100), nullable=True, doc="home tenant; NULL only for superusers"),
    Column("superuser", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("roles", Text, nullable=False, default="[]"),
    Column("groups", Text, nullable=False, default="[]"),
    Column("tenants", Text, nullable=False, default="[]", doc="extra tenants granted; ['*'] = all"),
    Column("grants", Text, nullable=False, default="[]", doc="data grants: pipeline:/table:/column:"),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", String(40), nullable=True),
    Column("created_at", String(40), nullable=False),
)

groups = Table(
    "identity_groups",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tenant", String(100), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("roles", Text, nullable=False, default="[]"),
)

roles = Table(
    "identity_roles",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("permissions", Text, nullable=False, default="[]"),
    Column("grants", Text, nullable=False, default="[]"),
    Column("builtin", Boolean, nullable=False, default=False),
)

api_keys = Table(
    "identity_api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("tenant", String(100), nullable=True),
    Column("roles", Text, nullable=False, default="[]"),
    Column("secret_hash", String(128), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40), nullable=True),
)

JSON_COLUMNS = {"roles", "groups", "tenants", "grants", "permissions"}
