"""Schema evolution in the running stream (issue 15): reserved.
Filled in by the work that owns it; until then it changes nothing.

Revision ID: 0013_schema_changes
Revises: 0012_service_sharing
"""

from __future__ import annotations

revision = "0013_schema_changes"
down_revision = "0012_service_sharing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
