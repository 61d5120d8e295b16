"""File imports (AGG-05): reports (rows read, ok and bad per imported file, counts by reason, a
sample of bad rows), every bad row paged and exported (CSV/XLSX with the file's own column
headers), and one-off imports of a file connector's path, run as message-centre jobs.

A report belongs to its connector's tenant: lists show the reports of the caller's connectors,
another tenant's report answers 404 (reports of deleted connectors: all-tenant principals only).
The bad rows' content is business data: shown and exported only with `data:view`, else row and
line numbers and reasons with the values they quote elided. `lang=zh` gives reasons in Chinese
(connectors.files.messages).
"""

from __future__ import annotations

import csv
import io
import re

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.connector_access import connector_store, connector_visible, visible_connector
from api.jobs import job_manager
from api.jobs.connector_jobs import ImportRefused, check_import, import_files
from api.security import Principal, require
from connectors.files.messages import label, render
from connectors.files.reports import ImportReports
from deploy.logs import in_tenant
from deploy.openlineage import batch_run

router = APIRouter(tags=["imports"])


def _reports(request: Request) -> ImportReports:
    return ImportReports(request.app.state.settings.resolved_control_db_url)


def _scope(request: Request, principal: Principal) -> list[str] | None:
    """The connector names whose reports the caller sees; None = all."""
    if principal.all_tenants:
        return None
    names = connector_store(request).names(principal.visible_tenants())
    return [n for n in names if principal.may_access("connector", n)]


# A value quoted in a reason ("not a decimal: '12x'"), but not a column's name ("column 'amount'").
_QUOTED = re.compile(r"""(column )?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _elide_values(reason: str) -> str:
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) else "<value>", reason)


def _reason(e: dict, lang: str) -> str:
    if lang == "en" or not e.get("code"):
        return str(e.get("reason", ""))
    return render(e["code"], e.get("params") or {}, lang)


def _without_samples(item: dict, principal: Principal, lang: str = "en") -> dict:
    """Bad-row samples only with data:view; otherwise row and line numbers and the reasons, with the
    values they quote elided (and the text of title and skipped rows: line numbers only)."""
    details = item.get("details")
    if details and not principal.can("data:view"):
        item = {
            **item,
            "details": {
                **details,
                "title_rows": [{"line": t.get("line")} for t in details.get("title_rows") or []],
                "skipped": [{"line": t.get("line"), "pattern": t.get("pattern")} for t in details.get("skipped") or []],
            },
        }
    if not item.get("errors"):
        return item
    if principal.can("data:view"):
        return {**item, "errors": [{**e, "reason": _reason(e, lang)} for e in item["errors"]]}
    errors = [
        {
            "row": e.get("row"),
            "line": e.get("line"),
            "code": e.get("code"),
            "reason": _elide_values(_reason(e, lang)),
        }
        for e in item["errors"]
    ]
    return {**item, "errors": errors, "samples_hidden": True}


def _reason_counts(reports: ImportReports, import_id: int, lang: str) -> dict:
    kept, groups = reports.reason_counts(import_id)
    for g in groups:
        g["label"] = label(g["code"], g["column"], lang)
    return {"bad_rows_kept": kept, "reasons": groups}


@router.get("/imports", summary="File imports of the caller's connectors, newest first")
async def list_imports(
    request: Request,
    connector: str | None = None,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require("imports:view")),
) -> dict:
    scope = await run_in_threadpool(_scope, request, principal)
    if scope is not None and connector is not None and connector not in scope:
        exists, tenant = await run_in_threadpool(connector_store(request).tenant_of, connector)
        if exists:  # another tenant's connector: nothing, and its owner sees the attempt
            note_affected_tenant(request, tenant)
        return {"imports": []}
    reports = _reports(request)

    def listed() -> list[dict]:
        items = [_without_samples(i, principal) for i in reports.list(connector, status, limit, scope)]
        for item in items:  # the list shows why rows were refused, most frequent first
            if item["rows_bad"]:
                item["reasons"] = reports.reason_counts(item["id"])[1][:5]
        return items

    return {"imports": await run_in_threadpool(listed)}


def _visible_import(request: Request, import_id: int, principal: Principal, lang: str = "en") -> dict:
    item = _reports(request).get(import_id)
    if item is None:
        raise HTTPException(404, f"no import {import_id}")
    exists, tenant = connector_store(request).tenant_of(item["connector"])
    if exists:
        note_affected_tenant(request, tenant)
    if not (principal.all_tenants or (exists and connector_visible(principal, tenant, item["connector"]))):
        raise HTTPException(404, f"no import {import_id}")
    item = _without_samples(item, principal, lang)
    item.update(_reason_counts(_reports(request), import_id, lang))
    item["errors_shown"], item["errors_total"] = len(item.get("errors") or []), item["rows_bad"]
    return item


Lang = Query("en", pattern="^(en|zh)$", description="language of the reasons")


@router.get(
    "/imports/{import_id}",
    summary="One file import: counts, counts by reason, what the reader chose and skipped, its first bad rows",
)
async def get_import(
    import_id: int, request: Request, lang: str = Lang, principal: Principal = Depends(require("imports:view"))
) -> dict:
    return await run_in_threadpool(_visible_import, request, import_id, principal, lang)


def _rows(request: Request, import_id: int, principal: Principal, offset: int, limit: int, code, lang) -> dict:
    item = _visible_import(request, import_id, principal, lang)
    reports = _reports(request)
    rows = reports.bad_rows(import_id, offset, limit, code)
    see = principal.can("data:view")
    out = []
    for r in rows:
        reason = _reason(r, lang)
        if see:
            out.append({**r, "reason": reason})
        else:
            out.append(
                {"row": r["row"], "line": r["line"], "code": r["code"], "column": r["column"]}
                | {"reason": _elide_values(reason)}
            )
    kept = item["bad_rows_kept"]
    total = sum(g["count"] for g in item["reasons"] if not code or g["code"] == code)
    return {
        "import_id": import_id,
        "total": item["rows_bad"] if not code else total,
        "kept": kept if not code else total,
        "offset": offset,
        "limit": limit,
        "shown": len(out),
        "more": offset + len(out) < (kept if not code else total),
        "rows": out,
        **({} if see else {"samples_hidden": True}),
    }


@router.get("/imports/{import_id}/rows", summary="The bad rows of an import, paged, with reasons and content")
async def import_rows(
    import_id: int,
    request: Request,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    code: str | None = Query(None, max_length=40, description="only rows refused for this reason code"),
    lang: str = Lang,
    principal: Principal = Depends(require("imports:view")),
) -> dict:
    return await run_in_threadpool(_rows, request, import_id, principal, offset, limit, code, lang)


EXPORT_LIMIT = 100_000
_HEAD = {"en": ("row", "line", "reason", "raw content"), "zh": ("行号", "文件行", "原因", "原始内容")}


def _export_table(request: Request, import_id: int, principal: Principal, lang: str) -> tuple[list[str], list[list]]:
    if not principal.can("data:view"):
        raise HTTPException(403, "exporting bad rows needs permission data:view (they hold the rows' content)")
    item = _visible_import(request, import_id, principal, lang)
    columns = list((item.get("details") or {}).get("columns") or [])
    rows = _reports(request).bad_rows(import_id, 0, EXPORT_LIMIT)
    if not columns:  # no header: the parsed fields' names, in order of appearance
        for r in rows:
            for k in r["fields"] or {}:
                if k not in columns:
                    columns.append(k)
    row_h, line_h, reason_h, raw_h = _HEAD[lang]
    header = [row_h, line_h, reason_h, *columns, raw_h]
    table = []
    for r in rows:
        fields = r["fields"] or {}
        values = [fields.get(c) for c in columns]
        table.append([r["row"], r["line"], _reason(r, lang), *[v if v is None else str(v) for v in values], r["raw"]])
    return header, table


@router.get("/imports/{import_id}/rows.csv", summary="The bad rows as CSV (UTF-8 with BOM), the file's own headers")
async def export_rows_csv(
    import_id: int, request: Request, lang: str = Lang, principal: Principal = Depends(require("imports:view"))
) -> Response:
    header, table = await run_in_threadpool(_export_table, request, import_id, principal, lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in table)
    return Response(
        ("\ufeff" + out.getvalue()).encode("utf-8"),  # the BOM: Excel opens it as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-bad-rows.csv"'},
    )


@router.get("/imports/{import_id}/rows.xlsx", summary="The bad rows as an Excel workbook, the file's own headers")
async def export_rows_xlsx(
    import_id: int, request: Request, lang: str = Lang, principal: Principal = Depends(require("imports:view"))
) -> Response:
    header, table = await run_in_threadpool(_export_table, request, import_id, principal, lang)

    def build() -> bytes:
        import openpyxl

        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("bad rows" if lang == "en" else "问题数据")
        ws.append(header)
        for row in table:
            ws.append([_cell(v) for v in row])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    return Response(
        await run_in_threadpool(build),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-bad-rows.xlsx"'},
    )


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v):
    """A value as exported: text starting like a formula is prefixed with ' (no formula injection)."""
    if isinstance(v, str):
        v = "".join(ch for ch in v if ch >= " " or ch in "\t\n")  # control characters break xlsx
        if v.startswith(_FORMULA) and not _NUMBER.match(v):
            return "'" + v
    return v


_NUMBER = re.compile(r"^[+-]?[0-9.,]+$")


class ImportRequest(BaseModel):
    connector: str = Field(max_length=200, description="a file connector (plugin `files`)")
    path: str = Field(max_length=1000, description="file or glob below the connector's store root")
    force: bool = Field(
        False,
        description="read the files again as new imports even if imported unchanged (files are re-read "
        "anyway when the connector's format or columns changed since)",
    )


@router.post(
    "/imports", status_code=202, summary="Import a path of a file connector once, as a job (result: the import reports)"
)
def start_import(
    body: ImportRequest, request: Request, principal: Principal = Depends(require("connector:manage"))
) -> dict:
    audit_as(request, "import.start", connector=body.connector, path=body.path)
    record = visible_connector(request, body.connector, principal)  # another tenant's connector: 404
    try:
        check_import(record, body.path)
    except ImportRefused as exc:
        raise HTTPException(exc.status, str(exc))
    settings, manager = request.app.state.settings, job_manager(request.app)
    job = in_tenant(  # its log lines; an OpenLineage BATCH run when emission is on
        record.tenant,
        batch_run(settings, record, lambda ctx: import_files(ctx, settings, record, body.path, body.force)),
    )
    job_id = manager.submit("files.import", principal.name, job)
    request.state.audit_detail["job"] = job_id
    return manager.get(job_id)
