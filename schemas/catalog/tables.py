"""The catalogue's control-DB tables (migration 0005_catalog). Rows are kept per `scope`: the tenant
that owns the connector or pipeline the entity was found through ("" = no tenant, the operator's),
so two tenants reading the same database each have their own entries and business metadata.

The search index beside `catalog_search_docs` is dialect-specific and made by the migration alone:
an FTS5 trigram table `catalog_search_fts` on SQLite, a pg_trgm GIN index on PostgreSQL
(deploy/migrations/tables.py leaves them out of the definitions-equal-migrations check).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()
URN = 1000

catalog_systems = Table(
    "catalog_systems",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("urn", String(URN), nullable=False),
    Column("name", String(500), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("properties", Text, nullable=False),
    Column("harvested_at", Float, nullable=False),
    UniqueConstraint("scope", "urn", name="uq_catalog_systems_scope_urn"),
)

catalog_datasets = Table(
    "catalog_datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("urn", String(URN), nullable=False),
    Column("system_urn", String(URN), nullable=False),
    Column("name", String(URN), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("shape_hash", String(64), nullable=False),
    Column("properties", Text, nullable=False),  # shape properties and statistics (rows, bytes)
    Column("business", Text, nullable=False),  # description, owner, steward, tags, ... (PATCH)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("harvested_at", Float, nullable=False),
    UniqueConstraint("scope", "urn", name="uq_catalog_datasets_scope_urn"),
    Index("ix_catalog_datasets_system", "scope", "system_urn"),
)

catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("dataset_id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("shape", Text, nullable=False),
    Column("diff", Text, nullable=False),
    Column("summary", String(500), nullable=False),
    Column("harvested_at", Float, nullable=False),
)

catalog_search_docs = Table(
    "catalog_search_docs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # system | dataset | field
    Column("urn", String(URN), nullable=False),  # the system's or dataset's URN
    Column("dataset_id", Integer, nullable=True),
    Column("field", String(500), nullable=True),
    Column("system_urn", String(URN), nullable=False),
    Column("name", String(URN), nullable=False),
    Column("type", String(200), nullable=True),
    Column("tags", Text, nullable=True),  # JSON list
    Column("classification", String(40), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("body", Text, nullable=False),  # name, comment, description, tags: what a query matches
    Index("ix_catalog_search_docs_dataset", "dataset_id"),
    Index("ix_catalog_search_docs_scope", "scope", "kind"),
)

catalog_jobs = Table(
    "catalog_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("urn", String(URN), nullable=False),
    Column("name", String(500), nullable=False),
    Column("kind", String(40), nullable=False),  # source | runner | sink
    Column("origin", String(300), nullable=False),  # connector:<name> | pipeline:<name>
    Column("properties", Text, nullable=False),
    UniqueConstraint("scope", "urn", name="uq_catalog_jobs_scope_urn"),
)

catalog_edges = Table(
    "catalog_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("origin", String(300), nullable=False),  # the document that makes it; replaced as a whole
    Column("job_urn", String(URN), nullable=False),
    Column("source_urn", String(URN), nullable=False),
    Column("target_urn", String(URN), nullable=False),
    Column("source_field", String(500), nullable=True),  # NULL: a dataset-level edge
    Column("target_field", String(500), nullable=True),
    Column("transformation", Text, nullable=True),  # JSON: type, subtype, masking, description, rules
    Index("ix_catalog_edges_source", "scope", "source_urn"),
    Index("ix_catalog_edges_target", "scope", "target_urn"),
    Index("ix_catalog_edges_origin", "scope", "origin"),
)
