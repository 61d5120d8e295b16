"""Quality reports, scorecards and profiles (issue 16): reserved.
Filled in by the work that owns it; until then it changes nothing.

Revision ID: 0010_quality_reports
Revises: 0009_quality_tickets
"""

from __future__ import annotations

revision = "0010_quality_reports"
down_revision = "0009_quality_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
