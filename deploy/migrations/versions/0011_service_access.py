"""Data-service access controls and call log (issue 17): reserved.
Filled in by the work that owns it; until then it changes nothing.

Revision ID: 0011_service_access
Revises: 0010_quality_reports
"""

from __future__ import annotations

revision = "0011_service_access"
down_revision = "0010_quality_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
