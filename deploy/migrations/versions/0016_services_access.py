"""Reserved for helper E: data services (issue 17): replace this docstring and fill upgrade/downgrade if a schema change is needed.

Revision ID: 0016_services_access
Revises: 0015_catalog_events
"""

from __future__ import annotations

revision = "0016_services_access"
down_revision = "0015_catalog_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
