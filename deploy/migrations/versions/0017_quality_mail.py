"""Reserved for helper D: standards and quality (issue 16): replace this docstring and fill upgrade/downgrade if a schema change is needed.

Revision ID: 0017_quality_mail
Revises: 0016_services_access
"""

from __future__ import annotations

revision = "0017_quality_mail"
down_revision = "0016_services_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
