"""Identity and audit hardening (issue 20).

Adds identity_users.user_id (random per created account) and .generation (bumped when tokens must
die), identity_roles.tenant (owner tenant; NULL = global), identity_api_keys.expires_at and .owner,
audit_log.affected_tenant (indexed), and the table identity_login_throttle (failed sign-ins per
source address and typed name). Existing rows: users get their user_id from the application at
start (api.identity.store), keys created by a user get that user as owner, roles stay global.
Columns an application of this release added before this revision existed are left as they are.

Revision ID: 0003_identity_audit
Revises: 0002_tenant_scope
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_identity_audit"
down_revision = "0002_tenant_scope"
branch_labels = None
depends_on = None

COLUMNS = {
    "identity_users": [
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False, server_default=sa.text("0")),
    ],
    "identity_roles": [sa.Column("tenant", sa.String(length=100), nullable=True)],
    "identity_api_keys": [
        sa.Column("expires_at", sa.String(length=40), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
    ],
    # Added in place (no table copy): audit_log's triggers refuse the DELETE a copy would need.
    "audit_log": [sa.Column("affected_tenant", sa.String(length=100), nullable=True)],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    if "ix_audit_log_affected_tenant" not in {i["name"] for i in inspector.get_indexes("audit_log")}:
        op.create_index("ix_audit_log_affected_tenant", "audit_log", ["affected_tenant"], unique=False)
    if not inspector.has_table("identity_login_throttle"):
        op.create_table(
            "identity_login_throttle",
            sa.Column("source", sa.String(length=64), nullable=False),
            sa.Column("account", sa.String(length=200), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.Column("last_failure", sa.String(length=40), nullable=False),
            sa.Column("blocked_until", sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint("source", "account"),
        )


def downgrade() -> None:
    op.drop_table("identity_login_throttle")
    op.drop_index("ix_audit_log_affected_tenant", table_name="audit_log")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
