"""Data-service access controls (issue 17): per application the credential scheme (plain key or
HMAC-signed requests, the signing secret sealed), IP allowlist, daily/monthly quota and expiry, as
columns of ds_applications. Definitions in streams/dataservices/tables.py. (The call log itself is
a ClickHouse table, streams/dataservices/calllog.py, not a control-DB one.)

Revision ID: 0011_service_access
Revises: 0010_quality_reports
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_service_access"
down_revision = "0010_quality_reports"
branch_labels = None
depends_on = None

COLUMNS = (
    ("auth", sa.String(length=10)),
    ("secret_sealed", sa.Text()),
    ("ip_allowlist", sa.Text()),
    ("quota_daily", sa.Integer()),
    ("quota_monthly", sa.Integer()),
    ("period_days", sa.Integer()),
    ("expires_at", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("ds_applications") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ds_applications") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
