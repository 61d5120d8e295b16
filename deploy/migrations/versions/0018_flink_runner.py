"""Reserved for helper F: Flink runner (issue 19): replace this docstring and fill upgrade/downgrade if a schema change is needed.

Revision ID: 0018_flink_runner
Revises: 0017_quality_mail
"""

from __future__ import annotations

revision = "0018_flink_runner"
down_revision = "0017_quality_mail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
