"""Data services (issue 17): ds_access_requests, requests for access to any catalogue dataset
(purpose, fields wanted, period), decided by the dataset's owner; an approval links the approved
ds_applications row it created. Definitions in streams/dataservices/tables.py.

Revision ID: 0015_services_access
Revises: 0014_processor_kind
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_services_access"
down_revision = "0014_processor_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ds_access_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("dataset", sa.String(length=1000), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("application", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("fields_wanted", sa.Text(), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=True),
        sa.Column("auth", sa.String(length=10), nullable=False),
        sa.Column("ip_allowlist", sa.Text(), nullable=True),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fields_granted", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ds_access_requests_scope", "ds_access_requests", ["scope", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ds_access_requests_scope", table_name="ds_access_requests")
    op.drop_table("ds_access_requests")
