"""Where the control DB's table definitions live, for autogenerating a migration and for the test
that the migrations build exactly these tables. Imported only by those (by name, lazily): the
runtime upgrade runs the migration scripts alone, so deploy/ does not import the layers above it."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

DEFINITIONS = (
    "deploy.control:metadata",
    "deploy.messages:metadata",
    "api.identity.tables:metadata",
    "api.scheduling.store:metadata",
    "api.jobs.store:metadata",
    "api.pipelines.store:metadata",
    "api.audit.log:metadata",
    "api.alerts.store:metadata",
    "connectors.files.reports:metadata",
    "connectors.store:connect_metadata",
    "connectors.schema_change_store:metadata",
    "schemas.catalog.tables:metadata",
    "quality_stream.governance.tables:metadata",
    "quality_stream.reports.tables:metadata",
    "quality_stream.tickets.tables:metadata",
    "streams.dataservices.tables:metadata",
    "streams.dataservices.download_store:metadata",
)
# Objects a migration makes per dialect that no table definition can state (the catalogue's FTS5
# table and its shadow tables, its pg_trgm index): left out of the definitions-equal-migrations check.
UNTRACKED_PREFIXES = ("catalog_search_fts", "ix_catalog_search_trgm", "ix_catalog_search_bigrams")


def tracked(name, type_, parent_names) -> bool:
    return not (name or "").startswith(UNTRACKED_PREFIXES)


def control_metadata() -> MetaData:
    """One MetaData holding every control-DB table."""
    union = MetaData()
    for path in DEFINITIONS:
        module, attr = path.split(":")
        for table in getattr(importlib.import_module(module), attr).tables.values():
            table.to_metadata(union)
    return union
