"""Runner connectors are `processor` plugins now (they were registered as sinks): their stored
`kind` follows, so every place that asks a connector's kind gets the same answer as its plugin.
Kafka Connect's REST `type` stays "sink" for them (connectors.plugins.connect_type).

Revision ID: 0014_processor_kind
Revises: 0013_schema_changes
"""

from __future__ import annotations

from alembic import op

revision = "0014_processor_kind"
down_revision = "0013_schema_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE connect_connectors SET kind = 'processor' WHERE plugin LIKE 'runner.%'")


def downgrade() -> None:
    op.execute("UPDATE connect_connectors SET kind = 'sink' WHERE kind = 'processor'")
