"""File imports keep every bad row (issue 21).

Adds file_imports.details (JSON: header line, title rows, skipped totals/footer rows, sheet,
encoding and its switch) and the table file_import_rows: one row per refused file row (import id,
row, line, reason code, the column header it names, the English reason, its params, the row as
it stood in the file, the parsed fields), for paging, counts by reason and export.

Revision ID: 0004_file_import_rows
Revises: 0003_identity_audit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_file_import_rows"
down_revision = "0003_identity_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "details" not in {c["name"] for c in inspector.get_columns("file_imports")}:
        op.add_column("file_imports", sa.Column("details", sa.Text(), nullable=True))
    if not inspector.has_table("file_import_rows"):
        op.create_table(
            "file_import_rows",
            sa.Column("import_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("row", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("line", sa.BigInteger(), nullable=False),
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("column_name", sa.String(length=500), nullable=True),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("params", sa.Text(), nullable=True),
            sa.Column("raw", sa.Text(), nullable=True),
            sa.Column("fields", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("import_id", "row"),
        )


def downgrade() -> None:
    op.drop_table("file_import_rows")
    with op.batch_alter_table("file_imports") as batch:
        batch.drop_column("details")
