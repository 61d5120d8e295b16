"""Quality tickets (issue 16): reserved for the tickets tables.
Filled in by the work that owns it; until then it changes nothing.

Revision ID: 0009_quality_tickets
Revises: 0008_services
"""

from __future__ import annotations

revision = "0009_quality_tickets"
down_revision = "0008_services"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
