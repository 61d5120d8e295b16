"""The catalogue's side of mappings: a dataset's fields as the caller may see them (404 for a
dataset unknown or another tenant's, the attempt noted for that tenant's audit log)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from api.audit.affected import note_affected_tenant
from api.metadata import catalog_store, scopes_of
from schemas.catalog import BadUrn, NotInCatalogue, parse_urn

NOT_FOUND = "no such dataset in the catalogue / 目录中没有该数据集"


def dataset_of(request: Request, principal, urn: str, where: str = "dataset") -> dict[str, Any]:
    try:
        parsed = parse_urn(urn)
    except BadUrn as exc:
        raise HTTPException(422, f"{where}: {exc}") from None
    if parsed.kind != "dataset":
        raise HTTPException(422, f"{where}: a dataset URN is needed here (hl:dataset:...)")
    store = catalog_store(request.app.state.settings)
    try:
        return store.dataset(scopes_of(principal), urn)
    except NotInCatalogue:
        owner, scopes = store.owner(urn), scopes_of(principal)
        if owner and scopes is not None and owner not in scopes:
            note_affected_tenant(request, owner)
        raise HTTPException(404, NOT_FOUND) from None


def datasets_of_system(request: Request, principal, system: str) -> list[str]:
    try:
        if parse_urn(system).kind != "system":
            raise BadUrn("a system URN is needed here (hl:system:...)")
    except BadUrn as exc:
        raise HTTPException(422, f"system: {exc}") from None
    store = catalog_store(request.app.state.settings)
    total, items = store.datasets(scopes_of(principal), system, None, 1000, 0)
    if not total:
        raise HTTPException(404, "no such system in the catalogue / 目录中没有该系统")
    return [d["urn"] for d in items]
