"""Data-service downloads (issue 17): ds_downloads, the export jobs applications ask for (state,
rows, the file and its link's expiry). Definitions in streams/dataservices/download_store.py.

Revision ID: 0012_service_sharing
Revises: 0011_service_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_service_sharing"
down_revision = "0011_service_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ds_downloads",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("application", sa.String(length=100), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("link_ttl_s", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ds_downloads_key", "ds_downloads", ["key_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ds_downloads_key", table_name="ds_downloads")
    op.drop_table("ds_downloads")
