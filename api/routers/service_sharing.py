"""Data-service downloads and real-time subscriptions (issue 17), for approved applications.
Thin: the domain is streams/dataservices/{downloads,download_store,subscriptions}.py, the checks
those of a call (streams/dataservices/serving.py). The credential is the app key (`X-App-Key`),
never a platform user's; a download job's file is fetched through a signed, time-limited link.

    GET  /services/{name}/v{version}/download?format=csv|xlsx|parquet&<filters>   streamed export
    POST /services/{name}/v{version}/downloads   {format, filters, link_ttl_s}    export as a job (202)
    GET  /service-downloads/{id}                 its state, progress and (once ready) the link
    GET  /service-downloads/{id}/file?expires=&sig=                                the file, until expiry
    GET  /services/{name}/v{version}/stream      server-sent events of the clean topic (Last-Event-ID)
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path as FsPath
from typing import Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from api.audit import audit_as
from api.service_access import NamePath, app_credential, buckets_for, classifier, service_store
from streams.dataservices import downloads as dl
from streams.dataservices import fanout
from streams.dataservices.download_store import DownloadStore, run_export
from streams.dataservices.serving import CallRefused
from streams.dataservices.subscriptions import TopicReader, parse_event_id, recheck

router = APIRouter(tags=["services"])
VersionPath = Path(ge=1, le=100_000)
DIRECT_MAX_ROWS = {"csv": 10_000_000, "parquet": 2_000_000, "xlsx": 100_000}  # more: ask for a job


@lru_cache(maxsize=8)
def _downloads_for(url: str) -> DownloadStore:
    from deploy.control import engine_for

    return DownloadStore(engine_for(url))


def _settings(request: Request):
    return request.app.state.settings


def _downloads(request: Request) -> DownloadStore:
    return _downloads_for(_settings(request).resolved_control_db_url)


def _refused(request: Request, exc: CallRefused) -> HTTPException:
    request.state.audit_detail.update(exc.about)
    request.state.audit_reason = exc.message[:300]
    if "application" in exc.about:
        request.state.audit_actor = f"app:{exc.about['application']}"
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return HTTPException(exc.status, {"message": exc.message, "message_zh": exc.message_zh}, headers=headers)


def _clickhouse(request: Request):
    from sinks.clickhouse import client_from_url

    return client_from_url(_settings(request).clickhouse_url)


def _signed_request(request: Request, credential: dict, body: bytes = b"") -> dict | None:
    """A signed request's headers with what they sign (method, path, query, body), or None."""
    signed = credential.get("signed")
    if signed is not None:
        query = list(request.query_params.multi_items())
        signed.update(method=request.method, path=request.url.path, query=query, body=body)
        request.state.audit_detail.update(key_id=signed["key_id"][:40], signed=True)
    return signed


def _plan(
    request: Request, clickhouse, credential: dict, name: str, version: int, params, body: bytes = b""
) -> dl.Plan:
    settings = _settings(request)
    try:
        plan = dl.access_plan(
            service_store(request),
            clickhouse,
            buckets_for(settings.redis_url),
            credential.get("key"),
            name,
            version,
            params,
            classifier(settings.resolved_control_db_url),
            request.client.host if request.client else "",
            signed=_signed_request(request, credential, body),
        )
    except CallRefused as exc:
        raise _refused(request, exc) from None
    except (OSError, EOFError) as exc:
        raise _refused(request, CallRefused(503, "the data store is not answering", "数据存储暂不可用")) from exc
    request.state.audit_actor = f"app:{plan.app['application']}"
    request.state.audit_detail.update(application=plan.app["application"], key_id=plan.app["key_id"])
    return plan


def _filters(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k != "format"]


def _export_dir(request: Request) -> FsPath:
    path = FsPath(_settings(request).state_dir) / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clickhouse_error(exc: Exception) -> bool:
    from clickhouse_driver.errors import Error as ClickHouseError

    return isinstance(exc, ClickHouseError | OSError | EOFError)


@router.get(
    "/services/{name}/v{version}/download",
    summary="Download a service version's rows the app key may see (CSV / XLSX / Parquet, masked), streamed",
)
def download(
    request: Request,
    name: str = NamePath,
    version: int = VersionPath,
    format: Literal["csv", "xlsx", "parquet"] = Query("csv", description="csv, xlsx or parquet"),
    credential: dict = Depends(app_credential),
):
    audit_as(request, "services.download", service=name, version=version, format=format)
    request.state.audit_actor = "app-key"
    clickhouse = _clickhouse(request)
    try:
        plan = _plan(request, clickhouse, credential, name, version, _filters(request))
        total = dl.count(clickhouse, plan)
    except Exception as exc:
        clickhouse.disconnect()
        if _clickhouse_error(exc):
            raise _refused(request, CallRefused(503, "the data store is not answering", "数据存储暂不可用")) from None
        raise
    request.state.audit_detail.update(rows=total)
    if total > DIRECT_MAX_ROWS[format]:
        clickhouse.disconnect()
        raise _refused(
            request,
            CallRefused(
                413,
                f"{total} rows are more than a direct {format} download gives ({DIRECT_MAX_ROWS[format]}): "
                f"POST /services/{name}/v{version}/downloads (a job with a link), or filter",
                f"{total} 行超过直接下载 {format} 的上限（{DIRECT_MAX_ROWS[format]}）："
                f"请用 POST /services/{name}/v{version}/downloads 创建下载任务，或加过滤条件",
            ),
        )
    filename = f"{name}_v{version}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Row-Count": str(total)}
    if format == "csv":

        def body():
            try:
                yield from dl.csv_chunks(plan.fields, dl.batches(clickhouse, plan))
            finally:
                clickhouse.disconnect()

        return StreamingResponse(body(), media_type=dl.FORMATS["csv"], headers=headers)
    path = _export_dir(request) / f"direct-{os.getpid()}-{time.time_ns()}.{format}"
    try:
        dl.write_file(format, plan, dl.batches(clickhouse, plan), str(path))
    except CallRefused as exc:
        path.unlink(missing_ok=True)
        raise _refused(request, exc) from None
    finally:
        clickhouse.disconnect()
    return FileResponse(
        path, media_type=dl.FORMATS[format], headers=headers, background=BackgroundTask(path.unlink, missing_ok=True)
    )


class DownloadJob(BaseModel):
    model_config = {"extra": "forbid"}
    format: Literal["csv", "xlsx", "parquet"] = "csv"
    filters: dict[str, str] = Field(default_factory=dict, max_length=100, description="as the call's query parameters")
    link_ttl_s: int = Field(3600, ge=10, le=7 * 86400, description="how long the link works once the file is ready")


def _sweep(request: Request) -> None:
    """Files whose links have expired are removed (on each new job: no timer to run)."""
    store = _downloads(request)
    for row in store.expired(time.time()):
        try:
            FsPath(row["path"]).unlink(missing_ok=True)
        finally:
            store.update(row["id"], path=None)


@router.post(
    "/services/{name}/v{version}/downloads",
    status_code=202,
    summary="Export a service version as a message-centre job: progress, then a signed link that expires",
)
async def download_job(
    request: Request,
    body: DownloadJob,
    name: str = NamePath,
    version: int = VersionPath,
    credential: dict = Depends(app_credential),
) -> dict:
    raw = await request.body()  # a signed request signs the body as sent
    return await run_in_threadpool(_start_job, request, body, raw, name, version, credential)


def _start_job(request: Request, body: DownloadJob, raw: bytes, name: str, version: int, credential: dict) -> dict:
    from api.jobs import job_manager

    audit_as(request, "services.download.job", service=name, version=version, format=body.format)
    request.state.audit_actor = "app-key"
    clickhouse = _clickhouse(request)
    try:
        plan = _plan(request, clickhouse, credential, name, version, list(body.filters.items()), raw)
    finally:
        clickhouse.disconnect()
    _sweep(request)
    store = _downloads(request)
    row = store.create(
        plan.scope,
        plan.app["key_id"],
        plan.app["application"],
        name,
        version,
        body.format,
        list(body.filters.items()),
        body.link_ttl_s,
    )
    target = _export_dir(request) / f"{row['id']}.{body.format}"
    settings = _settings(request)

    def run(ctx) -> dict:
        def progress(n: int, total: int) -> None:
            ctx.check_cancelled()
            ctx.progress(100.0 * n / total, f"{n}/{total} rows")

        client = _clickhouse(request)
        try:
            return run_export(store, row, plan, client, target, settings.resolved_control_db_url, progress)
        finally:
            client.disconnect()

    job_id = job_manager(request.app).submit("service-download", f"app:{plan.app['application']}", run)
    store.update(row["id"], job_id=job_id)
    request.state.audit_detail.update(download=row["id"], job=job_id)
    return {"id": row["id"], "job_id": job_id, "state": "queued", "status": f"/service-downloads/{row['id']}"}


def _own_download(request: Request, download_id: str, credential: dict) -> dict:
    """The download, if this application's credential asked for it (and is still good); 404 else."""
    from streams.dataservices.serving import authorise

    row = _downloads(request).get(download_id)
    if row is None:
        raise HTTPException(404, {"message": "no such download", "message_zh": "下载任务不存在"})
    guard = buckets_for(_settings(request).redis_url).guard
    signed = _signed_request(request, credential)
    try:
        _, app = authorise(service_store(request), credential.get("key"), row["service"], row["version"], signed, guard)
    except CallRefused as exc:
        raise _refused(request, exc) from None
    if app["key_id"] != row["key_id"]:
        raise HTTPException(404, {"message": "no such download", "message_zh": "下载任务不存在"})
    return row


def _link(request: Request, row: dict) -> str:
    expires = int(row["expires_at"])
    sig = dl.link_signature(request.app.state.jwt_key, row["id"], expires)
    return f"/service-downloads/{row['id']}/file?expires={expires}&sig={sig}"


@router.get("/service-downloads/{download_id}", summary="A download job: state, progress, the link once ready")
def download_state(
    request: Request, download_id: str = Path(pattern=r"^[0-9a-f]{32}$"), credential: dict = Depends(app_credential)
) -> dict:
    from api.jobs import job_manager

    audit_as(request, "services.download.state", download=download_id)
    request.state.audit_actor = "app-key"
    row = _own_download(request, download_id, credential)
    job = job_manager(request.app).get(row["job_id"]) if row["job_id"] else None
    out = {
        k: row[k]
        for k in ("id", "service", "version", "format", "state", "rows", "bytes", "error", "created_at", "expires_at")
    }
    out["progress"] = 100.0 if row["state"] == "ready" else (job or {}).get("progress", 0.0)
    out["message"] = (job or {}).get("message")
    if row["state"] == "ready" and row["path"] and time.time() < row["expires_at"]:
        out["link"] = _link(request, row)
    elif row["state"] == "ready":
        out["state"] = "expired"
    return out


def _signed(
    request: Request,
    download_id: str = Path(max_length=64),
    expires: int | None = Query(None),
    sig: str | None = Query(None, max_length=128),
) -> dict:
    """The link is the credential: without a valid signature 401 (before anything else), expired 410."""
    problem = (
        "signature"
        if expires is None or not sig
        else dl.link_valid(request.app.state.jwt_key, download_id, expires, sig, time.time())
    )
    if problem == "signature":
        raise HTTPException(401, {"message": "not a signed download link", "message_zh": "下载链接无效（签名不符）"})
    if problem == "expired":
        raise HTTPException(410, {"message": "the download link has expired", "message_zh": "下载链接已过期"})
    row = _downloads(request).get(download_id)
    if row is None or not row["path"] or not os.path.exists(row["path"]):
        raise HTTPException(410, {"message": "the file is gone", "message_zh": "文件已不存在"})
    found = service_store(request).grant(row["key_id"])
    if found is None or found[1]["status"] != "approved":
        raise HTTPException(403, {"message": "the application's access was revoked", "message_zh": "应用授权已撤销"})
    return row


@router.get("/service-downloads/{download_id}/file", summary="The file of a ready download (signed link, expires)")
def download_file(request: Request, row: dict = Depends(_signed)):
    audit_as(request, "services.download.file", download=row["id"], service=row["service"], rows=row["rows"])
    request.state.audit_actor = f"app:{row['application']}"
    return FileResponse(
        row["path"],
        media_type=dl.FORMATS[row["format"]],
        headers={"Content-Disposition": f'attachment; filename="{row["service"]}_v{row["version"]}.{row["format"]}"'},
    )


def _bounds(bootstrap: str, topic: str, parts: list[int]) -> dict[int, tuple[int, int]]:
    """{partition: (low, end)} with the end confirmed by a tail read (api/lag.py: tansu's watermark lags)."""
    from api.lag import end_offsets

    found = end_offsets(bootstrap, [(topic, p) for p in parts])
    return {p: (low, end) for (_, p), (low, end, _method) in found.items()}


# -- real-time subscription: server-sent events -------------------------------------------------
@router.get(
    "/services/{name}/v{version}/stream",
    summary="Server-sent events of the service's clean topic: granted fields, masked, row-filtered; Last-Event-ID resumes",
)
async def stream(
    request: Request,
    name: str = NamePath,
    version: int = VersionPath,
    start: Literal["latest", "earliest"] = Query("latest", description="where a new subscription starts"),
    last_event_id: str | None = Header(None, max_length=20_000),
    credential: dict = Depends(app_credential),
):
    """The streams of one topic share the process's reader of it (streams/dataservices/fanout.py)."""
    audit_as(request, "services.subscribe", service=name, version=version)
    request.state.audit_actor = "app-key"
    settings = _settings(request)
    store = service_store(request)
    client_ip = request.client.host if request.client else ""
    generation = getattr(store, "current_generation", lambda: None)

    def still_allowed() -> CallRefused | None:
        key_id = (credential.get("signed") or {}).get("key_id")
        return recheck(store, credential.get("key"), name, version, client_ip, key_id)

    def open_stream():
        seen = generation()  # before the checks: a change after them is re-checked by the reader
        clickhouse = _clickhouse(request)
        try:
            plan = _plan(request, clickhouse, credential, name, version, [])
        finally:
            clickhouse.disconnect()
        spec = store.published(plan.scope, name, version)
        if not spec.resource.topic:
            raise HTTPException(
                409,
                {
                    "message": "this service names no topic to subscribe to",
                    "message_zh": "该服务未配置可订阅的数据主题",
                },
            )
        topic = spec.resource.topic

        def reader(resume, at: str, prefetch_kb: int = 4096) -> TopicReader:
            bounds = lambda t, parts: _bounds(settings.kafka_bootstrap, t, parts)  # noqa: E731
            return TopicReader(
                settings.kafka_bootstrap, settings.schema_registry_url, topic, resume, at, bounds, prefetch_kb
            )

        try:
            stream = fanout.Stream(
                (settings.kafka_bootstrap, settings.schema_registry_url, topic),
                reader,
                generation,
                fanout.Subscriber(plan, still_allowed, seen),
            )
            stream.open(parse_event_id(last_event_id), start)
            return stream
        except CallRefused as exc:
            raise _refused(request, exc) from None

    stream = await run_in_threadpool(open_stream)
    body = stream.events(request.is_disconnected, run_in_threadpool)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(stream.close),  # also when the body never started (a client gone at once)
    )
