"""Baseline: the control DB as release 0.1.0 (eaa9ece) created it with metadata.create_all.

A control DB made by that release has these tables and no alembic_version table; deploy.migrate
stamps it with this revision and upgrades from here, so its data is kept.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    'alert_rules',
    'alert_throttle',
    'audit_log',
    'connect_connectors',
    'connect_snapshots',
    'connect_task_status',
    'file_imports',
    'identity_api_keys',
    'identity_groups',
    'identity_roles',
    'identity_users',
    'jobs',
    'messages',
    'pipeline_versions',
    'pipelines',
    'schedule_runs',
    'schedules',
    'source_offsets',
    'stage_counters',
)


def upgrade() -> None:
    # A DB made by 0.1.0 has some or all of these already (each store created its own): keep them.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'alert_rules' not in existing:
        op.create_table(
            'alert_rules',
            sa.Column('id', sa.String(length=40), nullable=False),
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.Column('kind', sa.String(length=40), nullable=False),
            sa.Column('params', sa.Text(), nullable=False),
            sa.Column('channel', sa.Text(), nullable=True),
            sa.Column('throttle_seconds', sa.Integer(), nullable=False),
            sa.Column('interval_seconds', sa.Integer(), nullable=False),
            sa.Column('enabled', sa.Integer(), nullable=False),
            sa.Column('created_by', sa.String(length=200), nullable=True),
            sa.Column('created_at', sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('name'),
        )
    if 'alert_throttle' not in existing:
        op.create_table(
            'alert_throttle',
            sa.Column('rule_id', sa.String(length=40), nullable=False),
            sa.Column('subject', sa.String(length=500), nullable=False),
            sa.Column('last_sent_at', sa.Float(), nullable=False),
            sa.Column('suppressed', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('rule_id', 'subject'),
        )
    if 'audit_log' not in existing:
        op.create_table(
            'audit_log',
            sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
            sa.Column('at', sa.String(length=40), nullable=False),
            sa.Column('actor', sa.String(length=200), nullable=False),
            sa.Column('actor_kind', sa.String(length=20), nullable=False),
            sa.Column('tenant', sa.String(length=100), nullable=True),
            sa.Column('action', sa.String(length=200), nullable=False),
            sa.Column('permission', sa.String(length=100), nullable=True),
            sa.Column('method', sa.String(length=10), nullable=False),
            sa.Column('path', sa.Text(), nullable=False),
            sa.Column('status', sa.Integer(), nullable=False),
            sa.Column('outcome', sa.String(length=20), nullable=False),
            sa.Column('client_ip', sa.String(length=64), nullable=True),
            sa.Column('request_id', sa.String(length=64), nullable=True),
            sa.Column('detail', sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint('id'),
        )
        with op.batch_alter_table('audit_log', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
            batch_op.create_index(batch_op.f('ix_audit_log_actor'), ['actor'], unique=False)
            batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
    if 'connect_connectors' not in existing:
        op.create_table(
            'connect_connectors',
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.Column('kind', sa.String(length=20), nullable=False),
            sa.Column('plugin', sa.String(length=200), nullable=False),
            sa.Column('config_masked', sa.Text(), nullable=False),
            sa.Column('config_enc', sa.Text(), nullable=False),
            sa.Column('target_state', sa.String(length=20), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.Column('task_count', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.Float(), nullable=False),
            sa.Column('updated_at', sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint('name'),
        )
    if 'connect_snapshots' not in existing:
        op.create_table(
            'connect_snapshots',
            sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
            sa.Column('connector', sa.String(length=200), nullable=False),
            sa.Column('tables', sa.Text(), nullable=False),
            sa.Column('status', sa.String(length=20), nullable=False),
            sa.Column('requested_at', sa.Float(), nullable=False),
            sa.Column('done_at', sa.Float(), nullable=True),
            sa.Column('cleared', sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
        )
        with op.batch_alter_table('connect_snapshots', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_connect_snapshots_connector'), ['connector'], unique=False)
    if 'connect_task_status' not in existing:
        op.create_table(
            'connect_task_status',
            sa.Column('connector', sa.String(length=200), nullable=False),
            sa.Column('task', sa.Integer(), nullable=False),
            sa.Column('state', sa.String(length=20), nullable=False),
            sa.Column('worker_id', sa.String(length=200), nullable=True),
            sa.Column('detail', sa.Text(), nullable=True),
            sa.Column('trace', sa.Text(), nullable=True),
            sa.Column('version', sa.Integer(), nullable=True),
            sa.Column('updated_at', sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint('connector', 'task'),
        )
    if 'file_imports' not in existing:
        op.create_table(
            'file_imports',
            sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
            sa.Column('connector', sa.String(length=200), nullable=False),
            sa.Column('path', sa.String(length=1000), nullable=False),
            sa.Column('size', sa.BigInteger(), nullable=False),
            sa.Column('mtime', sa.Float(), nullable=False),
            sa.Column('checksum', sa.String(length=64), nullable=True),
            sa.Column('status', sa.String(length=20), nullable=False),
            sa.Column('rows_read', sa.BigInteger(), nullable=False),
            sa.Column('rows_ok', sa.BigInteger(), nullable=False),
            sa.Column('rows_bad', sa.BigInteger(), nullable=False),
            sa.Column('errors', sa.Text(), nullable=True),
            sa.Column('message', sa.Text(), nullable=True),
            sa.Column('started_at', sa.DateTime(), nullable=False),
            sa.Column('finished_at', sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
        )
        with op.batch_alter_table('file_imports', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_file_imports_connector'), ['connector'], unique=False)
    if 'identity_api_keys' not in existing:
        op.create_table(
            'identity_api_keys',
            sa.Column('id', sa.String(length=40), nullable=False),
            sa.Column('name', sa.String(length=100), nullable=False),
            sa.Column('tenant', sa.String(length=100), nullable=True),
            sa.Column('roles', sa.Text(), nullable=False),
            sa.Column('secret_hash', sa.String(length=128), nullable=False),
            sa.Column('created_by', sa.String(length=200), nullable=False),
            sa.Column('created_at', sa.String(length=40), nullable=False),
            sa.Column('revoked_at', sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint('id'),
        )
    if 'identity_groups' not in existing:
        op.create_table(
            'identity_groups',
            sa.Column('name', sa.String(length=100), nullable=False),
            sa.Column('tenant', sa.String(length=100), nullable=True),
            sa.Column('description', sa.Text(), nullable=False),
            sa.Column('roles', sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint('name'),
        )
    if 'identity_roles' not in existing:
        op.create_table(
            'identity_roles',
            sa.Column('name', sa.String(length=100), nullable=False),
            sa.Column('description', sa.Text(), nullable=False),
            sa.Column('permissions', sa.Text(), nullable=False),
            sa.Column('grants', sa.Text(), nullable=False),
            sa.Column('builtin', sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint('name'),
        )
    if 'identity_users' not in existing:
        op.create_table(
            'identity_users',
            sa.Column('username', sa.String(length=100), nullable=False),
            sa.Column('password_hash', sa.Text(), nullable=False),
            sa.Column('display_name', sa.String(length=200), nullable=False),
            sa.Column('tenant', sa.String(length=100), nullable=True),
            sa.Column('superuser', sa.Boolean(), nullable=False),
            sa.Column('disabled', sa.Boolean(), nullable=False),
            sa.Column('roles', sa.Text(), nullable=False),
            sa.Column('groups', sa.Text(), nullable=False),
            sa.Column('tenants', sa.Text(), nullable=False),
            sa.Column('grants', sa.Text(), nullable=False),
            sa.Column('failed_logins', sa.Integer(), nullable=False),
            sa.Column('locked_until', sa.String(length=40), nullable=True),
            sa.Column('created_at', sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint('username'),
        )
    if 'jobs' not in existing:
        op.create_table(
            'jobs',
            sa.Column('id', sa.String(length=40), nullable=False),
            sa.Column('type', sa.String(length=100), nullable=False),
            sa.Column('operator', sa.String(length=200), nullable=False),
            sa.Column('state', sa.String(length=20), nullable=False),
            sa.Column('progress', sa.Float(), nullable=False),
            sa.Column('message', sa.Text(), nullable=True),
            sa.Column('result', sa.Text(), nullable=True),
            sa.Column('error', sa.Text(), nullable=True),
            sa.Column('owner', sa.String(length=200), nullable=True),
            sa.Column('cancel_requested', sa.Integer(), nullable=False),
            sa.Column('created_at', sa.Float(), nullable=False),
            sa.Column('started_at', sa.Float(), nullable=True),
            sa.Column('finished_at', sa.Float(), nullable=True),
            sa.Column('heartbeat_at', sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
        )
    if 'messages' not in existing:
        op.create_table(
            'messages',
            sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
            sa.Column('created_at', sa.Float(), nullable=False),
            sa.Column('category', sa.String(length=40), nullable=False),
            sa.Column('level', sa.String(length=20), nullable=False),
            sa.Column('rule_id', sa.String(length=40), nullable=True),
            sa.Column('subject', sa.String(length=500), nullable=False),
            sa.Column('body', sa.Text(), nullable=True),
            sa.Column('delivery', sa.String(length=500), nullable=True),
            sa.Column('read', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('id'),
        )
        with op.batch_alter_table('messages', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_messages_created_at'), ['created_at'], unique=False)
    if 'pipeline_versions' not in existing:
        op.create_table(
            'pipeline_versions',
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.Column('document', sa.Text(), nullable=False),
            sa.Column('op', sa.String(length=20), nullable=False),
            sa.Column('message', sa.Text(), nullable=False),
            sa.Column('author', sa.String(length=200), nullable=False),
            sa.Column('at', sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint('name', 'version'),
        )
    if 'pipelines' not in existing:
        op.create_table(
            'pipelines',
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.Column('tenant', sa.String(length=100), nullable=True),
            sa.Column('owner', sa.String(length=200), nullable=True),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.Column('deleted', sa.Boolean(), nullable=False),
            sa.Column('created_at', sa.String(length=40), nullable=False),
            sa.Column('updated_at', sa.String(length=40), nullable=False),
            sa.Column('updated_by', sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint('name'),
        )
        with op.batch_alter_table('pipelines', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_pipelines_tenant'), ['tenant'], unique=False)
    if 'schedule_runs' not in existing:
        op.create_table(
            'schedule_runs',
            sa.Column('id', sa.String(length=40), nullable=False),
            sa.Column('schedule_id', sa.String(length=40), nullable=False),
            sa.Column('fire_key', sa.String(length=200), nullable=False),
            sa.Column('trigger', sa.String(length=20), nullable=False),
            sa.Column('operator', sa.String(length=200), nullable=True),
            sa.Column('status', sa.String(length=20), nullable=False),
            sa.Column('job_id', sa.String(length=40), nullable=True),
            sa.Column('started_at', sa.Float(), nullable=False),
            sa.Column('finished_at', sa.Float(), nullable=True),
            sa.Column('duration_ms', sa.Integer(), nullable=True),
            sa.Column('counts', sa.Text(), nullable=True),
            sa.Column('result', sa.Text(), nullable=True),
            sa.Column('error', sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('schedule_id', 'fire_key', name='uq_schedule_fire'),
        )
        with op.batch_alter_table('schedule_runs', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_schedule_runs_schedule_id'), ['schedule_id'], unique=False)
    if 'schedules' not in existing:
        op.create_table(
            'schedules',
            sa.Column('id', sa.String(length=40), nullable=False),
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.Column('action', sa.String(length=100), nullable=False),
            sa.Column('params', sa.Text(), nullable=False),
            sa.Column('cron', sa.String(length=120), nullable=True),
            sa.Column('depends_on', sa.Text(), nullable=False),
            sa.Column('enabled', sa.Integer(), nullable=False),
            sa.Column('created_by', sa.String(length=200), nullable=True),
            sa.Column('created_at', sa.Float(), nullable=False),
            sa.Column('updated_at', sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('name'),
        )
    if 'source_offsets' not in existing:
        op.create_table(
            'source_offsets',
            sa.Column('connector', sa.String(length=200), nullable=False),
            sa.Column('partition', sa.String(length=400), nullable=False),
            sa.Column('offset', sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint('connector', 'partition'),
        )
    if 'stage_counters' not in existing:
        op.create_table(
            'stage_counters',
            sa.Column('pipeline', sa.String(length=200), nullable=False),
            sa.Column('stage', sa.String(length=50), nullable=False),
            sa.Column('metric', sa.String(length=100), nullable=False),
            sa.Column('value', sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint('pipeline', 'stage', 'metric'),
        )


def downgrade() -> None:
    op.drop_table('stage_counters')
    op.drop_table('source_offsets')
    op.drop_table('schedules')
    op.drop_table('schedule_runs')
    op.drop_table('pipelines')
    op.drop_table('pipeline_versions')
    op.drop_table('messages')
    op.drop_table('jobs')
    op.drop_table('identity_users')
    op.drop_table('identity_roles')
    op.drop_table('identity_groups')
    op.drop_table('identity_api_keys')
    op.drop_table('file_imports')
    op.drop_table('connect_task_status')
    op.drop_table('connect_snapshots')
    op.drop_table('connect_connectors')
    op.drop_table('audit_log')
    op.drop_table('alert_throttle')
    op.drop_table('alert_rules')
