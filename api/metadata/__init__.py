"""Wiring of the metadata catalogue (schemas/catalog) into the API: the store of a control DB, the
tenants a caller's catalogue queries are limited to, the harvest job.

    catalog_store(settings) -> CatalogStore
    scopes_of(principal)    -> None (every tenant) | set of tenants
"""

from __future__ import annotations

from functools import lru_cache

from schemas.catalog import CatalogStore


@lru_cache(maxsize=8)
def _store(url: str) -> CatalogStore:
    from deploy.control import engine_for

    return CatalogStore(engine_for(url))


def catalog_store(settings) -> CatalogStore:
    return _store(settings.resolved_control_db_url)


def scopes_of(principal) -> set[str] | None:
    """Entries are kept per owning tenant; the operator's own ("") only all-tenant callers see."""
    return principal.visible_tenants()
