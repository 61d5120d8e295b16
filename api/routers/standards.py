"""Data standards (issue 16): data elements and code sets with versions, review and retirement,
the category tree, and the national code sets Huiliu ships. Thin: the domain is
quality_stream/governance, the wiring api/standards. Every change is audited (`standards.*`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, ValidationError

from api.audit import audit_as
from api.security import Principal, require
from api.standards import http_error, problems_detail, scope_of, standards_store
from api.standards.publish import code_sets_to_clickhouse
from api.standards.sync import after_change
from quality_stream.governance.model import CODE_PATTERN, CodeSetSpec, ElementSpec, StandardsError, problems_of
from quality_stream.governance.national import NOT_SHIPPED, national_code_set, national_code_sets

router = APIRouter(tags=["standards"])
VIEW = require("standards:view")
MANAGE = require("standards:manage")
REVIEW = require("standards:review")
CodePath = Path(pattern=CODE_PATTERN, description="the element's or code set's code")
SPECS = {"element": ElementSpec, "code_set": CodeSetSpec}
META = {"kind", "code", "version", "status", "author", "review_id", "created_at", "updated_at", "item_count"}


def _store(request: Request):
    return standards_store(request.app.state.settings)


def _spec(kind: str, body: Any):
    if not isinstance(body, dict):
        raise HTTPException(422, problems_detail([], "the body is a JSON object", "请求体应为 JSON 对象"))
    try:
        return SPECS[kind].model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, problems_detail(problems_of(exc), "invalid input", "输入有误")) from None


def _call(fn, *args):
    try:
        return fn(*args)
    except (LookupError, StandardsError) as exc:
        raise http_error(exc) from None


def _versioned_routes(kind: str, base: str, label: str) -> None:
    """The same routes for elements and code sets."""

    @router.get(base, summary=f"{label}s: the latest version of each, filtered", name=f"list_{kind}")
    def listing(
        request: Request,
        status: str | None = Query(None, pattern="^(draft|in_review|published|superseded|retired)$"),
        category: str | None = Query(None, pattern=CODE_PATTERN),
        q: str | None = Query(None, max_length=200),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000),
        principal: Principal = Depends(VIEW),
    ) -> dict[str, Any]:
        total, items = _store(request).items(scope_of(principal), kind, status, category, q, limit, offset)
        return {"total": total, "items": items}

    @router.post(
        base,
        status_code=201,
        summary=f"Save a {label} as a draft (a published one gets a new draft version)",
        name=f"create_{kind}",
    )
    def create(request: Request, body: dict[str, Any] = Body(...), principal: Principal = Depends(MANAGE)) -> dict:
        audit_as(
            request, f"standards.{kind}.save", code=str(body.get("code"))[:100] if isinstance(body, dict) else None
        )
        spec = _spec(kind, body)
        (saved,) = _call(_store(request).save_drafts, scope_of(principal), kind, [spec], principal.name)
        request.state.audit_detail.update(version=saved["version"], status=saved["status"])
        return saved

    @router.get(f"{base}/{{code}}", summary=f"A {label}: its latest version, or ?version=", name=f"get_{kind}")
    def one(
        request: Request,
        code: str = CodePath,
        version: int | None = Query(None, ge=1),
        principal: Principal = Depends(VIEW),
    ) -> dict:
        return _call(_store(request).get, scope_of(principal), kind, code, version)

    @router.patch(
        f"{base}/{{code}}",
        summary=f"Change a {label} (only the keys sent): edits its draft, or starts a new draft version",
        name=f"patch_{kind}",
    )
    def patch(
        request: Request, code: str = CodePath, body: dict[str, Any] = Body(...), principal: Principal = Depends(MANAGE)
    ) -> dict:
        audit_as(request, f"standards.{kind}.save", code=code, keys=sorted(body)[:30])
        store, scope = _store(request), scope_of(principal)
        current = _call(store.get, scope, kind, code)
        merged = {k: v for k, v in current.items() if k not in META} | body | {"code": code}
        (saved,) = _call(store.save_drafts, scope, kind, [_spec(kind, merged)], principal.name)
        request.state.audit_detail.update(version=saved["version"], status=saved["status"])
        return saved

    @router.get(f"{base}/{{code}}/versions", summary=f"A {label}'s versions, oldest first", name=f"versions_{kind}")
    def versions(request: Request, code: str = CodePath, principal: Principal = Depends(VIEW)) -> list[dict]:
        return _call(_store(request).versions, scope_of(principal), kind, code)

    @router.get(f"{base}/{{code}}/diff", summary="What changed between two versions (?from=&to=)", name=f"diff_{kind}")
    def diff(
        request: Request,
        code: str = CodePath,
        from_: int = Query(alias="from", ge=1),
        to: int = Query(ge=1),
        principal: Principal = Depends(VIEW),
    ) -> dict:
        return _call(_store(request).diff, scope_of(principal), kind, code, from_, to)

    @router.post(f"{base}/{{code}}/retire", summary=f"Retire the published {label}", name=f"retire_{kind}")
    def retire(request: Request, code: str = CodePath, principal: Principal = Depends(REVIEW)) -> dict:
        audit_as(request, f"standards.{kind}.retire", code=code)
        scope = scope_of(principal)
        retired = _call(_store(request).retire, scope, kind, code, principal.name)
        request.state.audit_detail.update(version=retired["version"], status="retired")
        retired["pipelines"] = after_change(request, scope, principal, f"{label} {code} retired")
        return retired


_versioned_routes("element", "/standards/elements", "data element")
_versioned_routes("code_set", "/standards/code-sets", "code set")


class Category(BaseModel):
    model_config = {"extra": "forbid"}
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(None, pattern=CODE_PATTERN)


@router.get("/standards/categories", summary="The category tree (基础类 / 指标类 / 业务类 ...), as code + parent")
def categories(request: Request, principal: Principal = Depends(VIEW)) -> list[dict]:
    return _store(request).categories(scope_of(principal))


@router.post("/standards/categories", status_code=201, summary="Add a category (under a parent, or at the top)")
def add_category(request: Request, body: Category, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "standards.category.add", code=body.code, parent=body.parent)
    return _call(_store(request).add_category, scope_of(principal), body.code, body.name, body.parent)


@router.get("/standards/national", summary="National code sets Huiliu ships, with their provenance")
def national(principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    return {"shipped": national_code_sets(), "not_shipped": NOT_SHIPPED}


@router.post(
    "/standards/national/{code}/install",
    status_code=201,
    summary="Copy a shipped national code set into your code sets as a draft (then submit it for review)",
)
def install_national(request: Request, code: str = CodePath, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "standards.code_set.save", code=code, national=True)
    try:
        spec = national_code_set(code)
    except KeyError:
        raise HTTPException(404, f"no shipped national code set {code!r} / 没有内置国家代码集 {code!r}") from None
    (saved,) = _call(_store(request).save_drafts, scope_of(principal), "code_set", [spec], principal.name)
    request.state.audit_detail.update(version=saved["version"], items=len(spec.items))
    return {k: v for k, v in saved.items() if k != "items"} | {"item_count": len(spec.items)}


class ReviewItem(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Literal["element", "code_set"]
    code: str = Field(pattern=CODE_PATTERN)


class Submission(BaseModel):
    model_config = {"extra": "forbid"}
    title: str = Field("", max_length=500)
    items: list[ReviewItem] = Field(min_length=1, max_length=10_000)


class Decision(BaseModel):
    model_config = {"extra": "forbid"}
    approve: bool
    comment: str = Field("", max_length=4000)


@router.post("/standards/reviews", status_code=201, summary="Submit drafts for review, together as one review")
def submit(request: Request, body: Submission, principal: Principal = Depends(MANAGE)) -> dict:
    items = [(i.kind, i.code) for i in body.items]
    audit_as(request, "standards.review.submit", items=[f"{k}:{c}" for k, c in items][:500])
    review = _call(_store(request).submit, scope_of(principal), principal.name, items, body.title)
    request.state.audit_detail["review"] = review["id"]
    return review


@router.get("/standards/reviews", summary="Reviews, newest first (?status=open for the ones waiting)")
def reviews(
    request: Request,
    status: str | None = Query(None, pattern="^(open|approved|rejected)$"),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(VIEW),
) -> list[dict]:
    return _store(request).reviews(scope_of(principal), status, limit)


@router.get("/standards/reviews/{rid}", summary="One review: its items and decision")
def review(request: Request, rid: int = Path(ge=1, le=2**31 - 1), principal: Principal = Depends(VIEW)) -> dict:
    return _call(_store(request).review, scope_of(principal), rid)


@router.post(
    "/standards/reviews/{rid}/decision",
    summary="Approve (publish every item) or reject (back to draft); the author may not decide",
)
def decide(
    request: Request, body: Decision, rid: int = Path(ge=1, le=2**31 - 1), principal: Principal = Depends(REVIEW)
) -> dict:
    audit_as(request, f"standards.review.{'approve' if body.approve else 'reject'}", review=rid)
    scope = scope_of(principal)
    decided = _call(_store(request).decide, scope, rid, principal.name, body.approve, body.comment)
    request.state.audit_detail["items"] = [f"{i['kind']}:{i['code']}@{i['version']}" for i in decided["items"]][:500]
    if body.approve:
        decided["code_sets"] = code_sets_to_clickhouse(request.app.state.settings, scope, decided)
        decided["pipelines"] = after_change(request, scope, principal, f"review {rid} approved")
    return decided
