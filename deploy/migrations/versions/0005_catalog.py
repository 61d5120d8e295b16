"""Metadata catalogue (issue 15).

Tables catalog_systems, catalog_datasets, catalog_versions (one row per shape change, with its
structured diff), catalog_search_docs (one row per system, dataset and field: what search reads),
catalog_jobs and catalog_edges (lineage, dataset and field level). The search index is per dialect:
SQLite gets an FTS5 trigram table over catalog_search_docs.body kept in step by triggers (Chinese
needs n-grams: `身份证` inside `公民身份证号码`); PostgreSQL gets pg_trgm and a GIN trigram index
(when the extension cannot be created, search still works, without the index).

Revision ID: 0005_catalog
Revises: 0004_file_import_rows
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005_catalog"
down_revision = "0004_file_import_rows"
branch_labels = None
depends_on = None
log = logging.getLogger(__name__)

SCOPE = sa.String(length=100)
URN = sa.String(length=1000)

FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_search_fts USING fts5("
    "body, content='catalog_search_docs', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS catalog_search_docs_ai AFTER INSERT ON catalog_search_docs BEGIN "
    "INSERT INTO catalog_search_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_search_docs_ad AFTER DELETE ON catalog_search_docs BEGIN "
    "INSERT INTO catalog_search_fts(catalog_search_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_search_docs_au AFTER UPDATE ON catalog_search_docs BEGIN "
    "INSERT INTO catalog_search_fts(catalog_search_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO catalog_search_fts(rowid, body) VALUES (new.id, new.body); END",
]


def _tables() -> None:
    op.create_table(
        "catalog_systems",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("urn", URN, nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("harvested_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "urn", name="uq_catalog_systems_scope_urn"),
    )
    op.create_table(
        "catalog_datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("urn", URN, nullable=False),
        sa.Column("system_urn", URN, nullable=False),
        sa.Column("name", URN, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shape_hash", sa.String(length=64), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("business", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("harvested_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "urn", name="uq_catalog_datasets_scope_urn"),
    )
    op.create_index("ix_catalog_datasets_system", "catalog_datasets", ["scope", "system_urn"], unique=False)
    op.create_table(
        "catalog_versions",
        sa.Column("dataset_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shape", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("harvested_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "version"),
    )
    op.create_table(
        "catalog_search_docs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("urn", URN, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=500), nullable=True),
        sa.Column("system_urn", URN, nullable=False),
        sa.Column("name", URN, nullable=False),
        sa.Column("type", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("classification", sa.String(length=40), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_catalog_search_docs_dataset", "catalog_search_docs", ["dataset_id"], unique=False)
    op.create_index("ix_catalog_search_docs_scope", "catalog_search_docs", ["scope", "kind"], unique=False)
    op.create_table(
        "catalog_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("urn", URN, nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "urn", name="uq_catalog_jobs_scope_urn"),
    )
    op.create_table(
        "catalog_edges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("job_urn", URN, nullable=False),
        sa.Column("source_urn", URN, nullable=False),
        sa.Column("target_urn", URN, nullable=False),
        sa.Column("source_field", sa.String(length=500), nullable=True),
        sa.Column("target_field", sa.String(length=500), nullable=True),
        sa.Column("transformation", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_catalog_edges_source", "catalog_edges", ["scope", "source_urn"], unique=False)
    op.create_index("ix_catalog_edges_target", "catalog_edges", ["scope", "target_urn"], unique=False)
    op.create_index("ix_catalog_edges_origin", "catalog_edges", ["scope", "origin"], unique=False)


def _search_index() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in FTS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():  # a refused CREATE EXTENSION must not abort the migration
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except sa.exc.DBAPIError as exc:
            log.warning("pg_trgm unavailable (%s): catalogue search runs without its index", exc.orig)
            return
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_catalog_search_trgm ON catalog_search_docs USING gin (body gin_trgm_ops)"
        )


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("catalog_systems"):
        _tables()
    _search_index()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS catalog_search_docs_{trigger}")
        op.execute("DROP TABLE IF EXISTS catalog_search_fts")
    for table in (
        "catalog_edges",
        "catalog_jobs",
        "catalog_search_docs",
        "catalog_versions",
        "catalog_datasets",
        "catalog_systems",
    ):
        op.drop_table(table)
