"""Data elements as Excel workbooks (issue 16): export, and import as one review with a row-by-row
error report (row, column, why) where a file with any error applies nothing. Thin: the workbook
format is quality_stream/governance/excel.py, the transaction the standards store's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.audit import audit_as
from api.security import Principal, require
from api.standards import scope_of, standards_store
from quality_stream.governance.model import StandardsError
from quality_stream.governance.store import Conflict

router = APIRouter(tags=["standards"])


def excel():
    """The Excel module, imported on first use: openpyxl (~37 MB) is not needed by the API's other routes."""
    from quality_stream.governance import excel as module

    return module


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_BYTES = 20 * 1024 * 1024
IMPORT_BODY = {  # declared as octet-stream (what OpenAPI tools can send); the .xlsx media type is accepted too
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": f"an .xlsx workbook ({XLSX} or application/octet-stream): sheet 数据元 (or the first), "
        "a header row naming the attributes",
    }
}


def _report(errors: list[dict], status: int = 422) -> HTTPException:
    return HTTPException(
        status,
        {
            "message": f"{len(errors)} problem(s) in the workbook; nothing was imported",
            "message_zh": f"工作簿中有 {len(errors)} 处问题，未导入任何内容",
            "errors": errors[:1000],
        },
    )


def _row_errors(exc: StandardsError, rows: list[int]) -> list[dict[str, Any]]:
    """The store names items by position (items.<n>.<field>): the report names the row."""
    out = []
    for p in exc.problems:
        head, _, rest = p["field"].partition(".")
        n, _, field = rest.partition(".")
        row = rows[int(n)] if head == "items" and n.isdigit() and int(n) < len(rows) else 0
        out.append({"row": row, "column": "", "field": field or p["field"], "msg": p["msg"], "msg_zh": p["msg_zh"]})
    return out


@router.get("/standards/export", summary="Data elements as an Excel workbook (the latest version of each)")
def export(
    request: Request,
    status: str | None = Query(None, pattern="^(draft|in_review|published|superseded|retired)$"),
    principal: Principal = Depends(require("standards:view")),
) -> Response:
    store = standards_store(request.app.state.settings)
    _, items = store.items(scope_of(principal), "element", status=status, limit=1_000_000)
    return Response(
        excel().export_elements(items),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="data-elements.xlsx"'},
    )


@router.post(
    "/standards/import",
    status_code=201,
    openapi_extra=IMPORT_BODY,
    summary="Import data elements from an Excel workbook: all rows become drafts in one review, or nothing",
)
async def import_elements(
    request: Request,
    title: str = Query("", max_length=500),
    principal: Principal = Depends(require("standards:manage")),
) -> dict[str, Any]:
    audit_as(request, "standards.element.import")
    data = await request.body()
    if not data:
        raise HTTPException(422, {"message": "send the .xlsx file as the body", "message_zh": "请求体应为 .xlsx 文件"})
    if len(data) > MAX_BYTES:
        raise HTTPException(413, {"message": "the workbook is over 20 MB", "message_zh": "工作簿超过 20 MB"})
    rows, errors = await run_in_threadpool(excel().read_elements, data)
    if errors:
        request.state.audit_detail["errors"] = len(errors)
        raise _report(errors)
    store = standards_store(request.app.state.settings)
    specs = [spec for _, spec in rows]
    try:
        done = await run_in_threadpool(
            store.import_drafts,
            scope_of(principal),
            "element",
            specs,
            principal.name,
            title or f"Excel import of {len(specs)} data element(s)",
        )
    except StandardsError as exc:
        request.state.audit_detail["errors"] = len(exc.problems)
        raise _report(_row_errors(exc, [n for n, _ in rows]), 409 if isinstance(exc, Conflict) else 422) from None
    request.state.audit_detail.update(
        rows=len(specs), saved=done["saved"], review=done["review"]["id"] if done["review"] else None
    )
    return {"rows": len(specs), **done}
