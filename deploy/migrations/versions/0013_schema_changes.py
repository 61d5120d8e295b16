"""Schema evolution in the running stream (issue 15): schema_changes, the schema changes capture
tasks followed or hold and the operator's decision about a held one.
Definitions in connectors/schema_change_store.py.

Revision ID: 0013_schema_changes
Revises: 0012_service_sharing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_schema_changes"
down_revision = "0012_service_sharing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("connector", sa.String(length=200), nullable=False),
        sa.Column("table_name", sa.String(length=300), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("compatible", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mode", sa.String(length=20), nullable=True),
        sa.Column("topic", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_schema_changes_connector", "schema_changes", ["connector", "table_name", "fingerprint"], unique=False
    )
    op.create_index("ix_schema_changes_created", "schema_changes", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_schema_changes_created", table_name="schema_changes")
    op.drop_index("ix_schema_changes_connector", table_name="schema_changes")
    op.drop_table("schema_changes")
