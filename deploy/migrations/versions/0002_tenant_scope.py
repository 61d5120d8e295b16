"""Tenant scope (issue 20): connectors, schedules, alert rules and messages belong to a tenant.

Adds `tenant` (nullable, indexed) to connect_connectors, schedules, alert_rules and messages, and
fills it where the owner is known: a schedule's or rule's from the user who created it, a pipeline's
deployed connectors (`<pipeline>-source|runner|sink`) from the pipeline, a message from its rule.
Other rows stay without a tenant (only all-tenant principals see them: give them one by UPDATE).
Schedule and alert rule names become unique per tenant: UNIQUE(name) -> UNIQUE(tenant, name).
New table connect_name_owners: the tenant that owns (or last owned) each connector name, so a
deleted connector's offsets and import reports never pass to another tenant's new connector.
Secrets in schedules.params and alert_rules.params/channel are sealed by the application when a
row is next saved; rows stored in plain text by older releases still load.

Revision ID: 0002_tenant_scope
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_tenant_scope"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("connect_connectors", "schedules", "alert_rules", "messages")
PER_TENANT_NAMES = {"schedules": "uq_schedule_tenant_name", "alert_rules": "uq_alert_rule_tenant_name"}
# SQLite reflects UNIQUE(name) without a name; batch mode names it by this convention to drop it.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


BACKFILL = (
    "UPDATE schedules SET tenant = (SELECT u.tenant FROM identity_users u WHERE u.username = schedules.created_by)"
    " WHERE tenant IS NULL",
    "UPDATE alert_rules SET tenant = (SELECT u.tenant FROM identity_users u"
    " WHERE u.username = alert_rules.created_by) WHERE tenant IS NULL",
    "UPDATE connect_connectors SET tenant = (SELECT p.tenant FROM pipelines p WHERE connect_connectors.name"
    " IN (p.name || '-source', p.name || '-runner', p.name || '-sink')) WHERE tenant IS NULL",
    "UPDATE messages SET tenant = (SELECT r.tenant FROM alert_rules r WHERE r.id = messages.rule_id)"
    " WHERE tenant IS NULL",
)


def _unique_on(table: str, columns: list[str]) -> list[str | None]:
    inspector = sa.inspect(op.get_bind())
    return [u["name"] for u in inspector.get_unique_constraints(table) if u["column_names"] == columns]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "connect_name_owners" not in inspector.get_table_names():
        op.create_table(
            "connect_name_owners",
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("tenant", sa.String(length=100), nullable=True),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    for table in TENANT_TABLES:
        if "tenant" in {c["name"] for c in inspector.get_columns(table)}:
            continue  # added by an application that ran before this revision existed
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant", sa.String(length=100), nullable=True))
        op.create_index(f"ix_{table}_tenant", table, ["tenant"], unique=False)
    for statement in BACKFILL:
        op.execute(statement)
    for table, constraint in PER_TENANT_NAMES.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            for name in _unique_on(table, ["name"]):
                batch.drop_constraint(name or f"uq_{table}_name", type_="unique")
            if not _unique_on(table, ["tenant", "name"]):
                batch.create_unique_constraint(constraint, ["tenant", "name"])


def downgrade() -> None:
    op.drop_table("connect_name_owners")
    for table, constraint in PER_TENANT_NAMES.items():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(constraint, type_="unique")
            batch.create_unique_constraint(f"uq_{table}_name", ["name"])
    for table in TENANT_TABLES:
        op.drop_index(f"ix_{table}_tenant", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
