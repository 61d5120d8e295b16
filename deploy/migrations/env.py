"""Alembic environment: deploy.migrate hands over an open connection (and, to autogenerate, the
union of the control DB's table definitions); nothing is read from an alembic.ini."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    render_as_batch=True,  # SQLite alters tables by copying them; batch mode writes that for us
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
