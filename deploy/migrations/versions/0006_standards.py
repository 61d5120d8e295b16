"""Data standards (issue 16): tables std_categories (the configurable category tree),
std_elements and std_code_sets (one row per code and version; published rows are immutable),
std_reviews (items submitted together, reviewed together) and std_mappings (catalogue field ->
element). Definitions in quality_stream/governance/tables.py.

Revision ID: 0006_standards
Revises: 0005_catalog
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_standards"
down_revision = "0005_catalog"
branch_labels = None
depends_on = None

SCOPE = sa.String(length=100)
URN = sa.String(length=1000)


def _versioned(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "code", "version", name=f"uq_{name}_scope_code_version"),
    )
    op.create_index(f"ix_{name}_status", name, ["scope", "status"], unique=False)


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("std_elements"):
        return
    op.create_table(
        "std_categories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "code", name="uq_std_categories_scope_code"),
    )
    _versioned("std_elements")
    _versioned("std_code_sets")
    op.create_table(
        "std_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_std_reviews_status", "std_reviews", ["scope", "status"], unique=False)
    op.create_table(
        "std_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("dataset_urn", URN, nullable=False),
        sa.Column("field", sa.String(length=500), nullable=False),
        sa.Column("element_code", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("mapped_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "dataset_urn", "field", name="uq_std_mappings_scope_field"),
    )
    op.create_index("ix_std_mappings_element", "std_mappings", ["scope", "element_code"], unique=False)


def downgrade() -> None:
    for table in ("std_mappings", "std_reviews", "std_code_sets", "std_elements", "std_categories"):
        op.drop_table(table)
