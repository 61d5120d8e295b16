"""Alembic migrations of the control DB (run by deploy.migrate; see README.md beside this file)."""
