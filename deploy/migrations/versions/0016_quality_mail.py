"""Notices by e-mail (issue 16): a person's e-mail address and the language of the notices they
receive (zh, the default, or en), as columns of identity_users. Quality tickets assigned to them,
opened at a threshold or overdue are mailed there (api/quality/ticket_mail.py). Definitions in
api/identity/tables.py.

Revision ID: 0016_quality_mail
Revises: 0015_services_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_quality_mail"
down_revision = "0015_services_access"
branch_labels = None
depends_on = None

COLUMNS = (
    ("email", sa.String(length=254)),
    ("lang", sa.String(length=8)),
)


def upgrade() -> None:
    with op.batch_alter_table("identity_users") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identity_users") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
