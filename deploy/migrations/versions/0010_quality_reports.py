"""Quality reports, report subscriptions and column profiles (issue 16): quality_reports (the
history: figures, HTML, PDF), quality_report_subscriptions (who gets them by e-mail),
quality_profiles (a catalogue dataset version's column statistics). Definitions in
quality_stream/reports/tables.py.

Revision ID: 0010_quality_reports
Revises: 0009_quality_tickets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_quality_reports"
down_revision = "0009_quality_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Float(), nullable=False),
        sa.Column("period_end", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_reports_scope", "quality_reports", ["scope", "created_at"], unique=False)
    op.create_table(
        "quality_report_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_quality_report_subscriptions_scope",
        "quality_report_subscriptions",
        ["scope", "kind", "target", "period"],
        unique=False,
    )
    op.create_table(
        "quality_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("dataset_urn", sa.String(length=1000), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=500), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_profiles_dataset", "quality_profiles", ["scope", "dataset_urn"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_quality_profiles_dataset", table_name="quality_profiles")
    op.drop_table("quality_profiles")
    op.drop_index("ix_quality_report_subscriptions_scope", table_name="quality_report_subscriptions")
    op.drop_table("quality_report_subscriptions")
    op.drop_index("ix_quality_reports_scope", table_name="quality_reports")
    op.drop_table("quality_reports")
