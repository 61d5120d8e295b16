"""Wiring of data standards (quality_stream/governance) into the API: the store of a control DB,
the scope a caller works in, and the HTTP form of the domain's errors.

    standards_store(settings) -> StandardsStore
    scope_of(principal)       -> the caller's home tenant ("" for the operator / tenantless callers)
    http_error(exc)           -> HTTPException: 422 bad input, 409 wrong state, 403 review refused, 404 unknown

Standards belong to one tenant (the author's home tenant): another tenant's element reads as unknown.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import HTTPException

from quality_stream.governance.model import StandardsError
from quality_stream.governance.store import Conflict, NotFound, ReviewRefused, StandardsStore


@lru_cache(maxsize=8)
def _store(url: str) -> StandardsStore:
    from deploy.control import engine_for

    return StandardsStore(engine_for(url))


def standards_store(settings) -> StandardsStore:
    return _store(settings.resolved_control_db_url)


def scope_of(principal) -> str:
    return principal.tenant or ""


def problems_detail(problems: list[dict], message: str, message_zh: str) -> dict:
    return {"message": message, "message_zh": message_zh, "problems": problems[:200]}


def http_error(exc: Exception) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, ReviewRefused):
        return HTTPException(403, problems_detail(exc.problems, "review refused", "不允许审核"))
    if isinstance(exc, Conflict):
        return HTTPException(409, problems_detail(exc.problems, "not possible in this state", "当前状态下不能这样做"))
    if isinstance(exc, StandardsError):
        return HTTPException(422, problems_detail(exc.problems, "invalid input", "输入有误"))
    raise exc


@lru_cache(maxsize=8)
def _mappings(url: str):
    from deploy.control import engine_for
    from quality_stream.governance.mappings import MappingStore

    return MappingStore(engine_for(url))


def mapping_store(settings):
    return _mappings(settings.resolved_control_db_url)
