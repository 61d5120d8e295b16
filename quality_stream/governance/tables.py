"""The data-standards tables of the control DB (migration 0006_standards). Rows are kept per
`scope`: the owning tenant ("" = no tenant, the operator's), as the catalogue does.

Elements and code sets keep one row per (code, version); a published row is never changed again
(a change is a new draft version). `body` holds the attributes as JSON, so a version is compared
and exported whole. Reviews group the items submitted together (an import is one review).
Mappings tie a catalogue field (dataset URN + field name) to an element code.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()
URN = 1000

std_categories = Table(
    "std_categories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("code", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("parent", String(100), nullable=True),
    UniqueConstraint("scope", "code", name="uq_std_categories_scope_code"),
)

std_elements = Table(
    "std_elements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("code", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # draft | in_review | published | retired
    Column("body", Text, nullable=False),  # names, definition, type, length, format, ... (JSON)
    Column("author", String(200), nullable=False),
    Column("review_id", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "code", "version", name="uq_std_elements_scope_code_version"),
    Index("ix_std_elements_status", "scope", "status"),
)

std_code_sets = Table(
    "std_code_sets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("code", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("body", Text, nullable=False),  # name, source (provenance), items [{code, label, parent, ...}]
    Column("author", String(200), nullable=False),
    Column("review_id", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "code", "version", name="uq_std_code_sets_scope_code_version"),
    Index("ix_std_code_sets_status", "scope", "status"),
)

std_reviews = Table(
    "std_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("title", String(500), nullable=False),
    Column("author", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # open | approved | rejected
    Column("items", Text, nullable=False),  # [{"kind": "element"|"code_set", "code", "version"}]
    Column("reviewer", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Index("ix_std_reviews_status", "scope", "status"),
)

std_mappings = Table(
    "std_mappings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("dataset_urn", String(URN), nullable=False),
    Column("field", String(500), nullable=False),
    Column("element_code", String(100), nullable=False),
    Column("method", String(20), nullable=False),  # manual | suggested (confirmed by mapped_by)
    Column("score", Float, nullable=True),
    Column("mapped_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("scope", "dataset_urn", "field", name="uq_std_mappings_scope_field"),
    Index("ix_std_mappings_element", "scope", "element_code"),
)
