"""Identity tables in the control database. Lists (roles, groups, grants) are JSON text columns:
the sets are small and always read whole, and this keeps the schema portable (SQLite, PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, text

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
    Column("failed_logins", Integer, nullable=False, default=0, doc="unused since the per-source throttle"),
    Column("locked_until", String(40), nullable=True, doc="unused since the per-source throttle"),
    Column("created_at", String(40), nullable=False),
    # Tokens carry both: a token of a deleted-then-recreated user (new user_id) or issued before a
    # password change, disabling or a change of roles/groups/tenants/grants (generation bumped) is refused.
    Column("user_id", String(40), nullable=True, doc="random per created account; NULL only on rows of old releases"),
    Column("generation", Integer, nullable=False, default=0, server_default=text("0")),
    # Notices by e-mail (migration 0016): where, and in which language (NULL = zh)
    Column("email", String(254), nullable=True),
    Column("lang", String(8), nullable=True),
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
    Column("tenant", String(100), nullable=True, doc="owner tenant; NULL = global (built-in or a superuser's)"),
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
    Column("expires_at", String(40), nullable=True, doc="UTC ISO; NULL = no expiry"),
    Column("owner", String(200), nullable=True, doc="user answerable for the key; NULL = created_by"),
)

# Failed sign-ins per (source address, account name), for the exponential back-off. The account
# name is whatever was typed (known or not), so the throttle never tells whether a user exists.
login_throttle = Table(
    "identity_login_throttle",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("account", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_failure", String(40), nullable=False),
    Column("blocked_until", String(40), nullable=True),
)

JSON_COLUMNS = {"roles", "groups", "tenants", "grants", "permissions"}
