"""Data-service downloads, subscriptions and detection (issue 17): reserved.
Filled in by the work that owns it; until then it changes nothing.

Revision ID: 0012_service_sharing
Revises: 0011_service_access
"""

from __future__ import annotations

revision = "0012_service_sharing"
down_revision = "0011_service_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
