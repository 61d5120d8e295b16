"""Data services (issue 17): ds_services (versioned service documents with their review state) and
ds_applications (an application's request for a service, the decision, its hashed app key).
Definitions in streams/dataservices/tables.py.

Revision ID: 0008_services
Revises: 0007_catalog_more
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_services"
down_revision = "0007_catalog_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ds_services",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "name", "version", name="uq_ds_services_scope_name_version"),
    )
    op.create_index("ix_ds_services_status", "ds_services", ["scope", "status"], unique=False)
    op.create_table(
        "ds_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("application", sa.String(length=100), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("fields_wanted", sa.Text(), nullable=False),
        sa.Column("applicant", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fields_granted", sa.Text(), nullable=True),
        sa.Column("row_filter", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id", name="uq_ds_applications_key_id"),
    )
    op.create_index("ix_ds_applications_service", "ds_applications", ["scope", "service"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ds_applications_service", table_name="ds_applications")
    op.drop_table("ds_applications")
    op.drop_index("ix_ds_services_status", table_name="ds_services")
    op.drop_table("ds_services")
