"""Reserved for helper A: catalogue (issue 15): replace this docstring and fill upgrade/downgrade if a schema change is needed.

Revision ID: 0015_catalog_events
Revises: 0014_processor_kind
"""

from __future__ import annotations

revision = "0015_catalog_events"
down_revision = "0014_processor_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
