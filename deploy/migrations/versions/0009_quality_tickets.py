"""Quality tickets (issue 16): quality_tickets (one row per ticket, its latest state),
quality_ticket_events (history and comments), quality_ticket_thresholds (when the monitor opens a
ticket) and quality_ticket_samples (the runners' counters as the monitor saw them, its window).
Definitions in quality_stream/tickets/tables.py.

Revision ID: 0009_quality_tickets
Revises: 0008_services
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_quality_tickets"
down_revision = "0008_services"
branch_labels = None
depends_on = None

SCOPE = sa.String(length=100)


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("quality_tickets"):
        return
    op.create_table(
        "quality_tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("dataset_urn", sa.String(length=1000), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("active", sa.String(length=1), nullable=True),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.String(length=40), nullable=True),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("evaluated", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Text(), nullable=False),
        sa.Column("base_read", sa.BigInteger(), nullable=True),
        sa.Column("base_failed", sa.BigInteger(), nullable=True),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("responded_at", sa.Float(), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("verified_at", sa.Float(), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("escalated_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "dataset_urn", "rule", "active", name="uq_quality_tickets_live"),
    )
    op.create_index("ix_quality_tickets_state", "quality_tickets", ["scope", "state"], unique=False)
    op.create_index("ix_quality_tickets_assignee", "quality_tickets", ["scope", "assignee"], unique=False)
    op.create_table(
        "quality_ticket_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_ticket_events_ticket", "quality_ticket_events", ["ticket_id"], unique=False)
    op.create_table(
        "quality_ticket_thresholds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "pipeline", "rule", name="uq_quality_ticket_thresholds"),
    )
    op.create_table(
        "quality_ticket_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("taken_at", sa.Float(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_quality_ticket_samples_pipeline", "quality_ticket_samples", ["pipeline", "taken_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_quality_ticket_samples_pipeline", table_name="quality_ticket_samples")
    op.drop_table("quality_ticket_samples")
    op.drop_table("quality_ticket_thresholds")
    op.drop_index("ix_quality_ticket_events_ticket", table_name="quality_ticket_events")
    op.drop_table("quality_ticket_events")
    op.drop_index("ix_quality_tickets_assignee", table_name="quality_tickets")
    op.drop_index("ix_quality_tickets_state", table_name="quality_tickets")
    op.drop_table("quality_tickets")
