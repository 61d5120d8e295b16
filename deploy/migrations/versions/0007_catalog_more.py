"""Catalogue search for two-character words (issue 15): pg_trgm indexes three-character grams only,
so a Chinese word of two characters (`姓名`, `户籍`) was checked by scanning every row. PostgreSQL
gets `huiliu_bigrams(text)` (the distinct lower-cased two-character grams of a text) and a GIN
index of it on `catalog_search_docs.body`; `schemas/catalog/search.py` asks it for such words.
SQLite keeps its FTS5 trigram table (short words are checked with LIKE there).

Revision ID: 0007_catalog_more
Revises: 0006_standards
"""

from __future__ import annotations

from alembic import op

revision = "0007_catalog_more"
down_revision = "0006_standards"
branch_labels = None
depends_on = None

BIGRAMS = """
CREATE OR REPLACE FUNCTION huiliu_bigrams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(lower(t), i, 2)), '{}')
  FROM generate_series(1, char_length(t) - 1) AS i
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(BIGRAMS)
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_catalog_search_bigrams ON catalog_search_docs USING gin (huiliu_bigrams(body))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_catalog_search_bigrams")
    op.execute("DROP FUNCTION IF EXISTS huiliu_bigrams(text)")
