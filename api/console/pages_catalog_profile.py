"""Column profiles of a catalogue dataset in the console (数据剖析, issue 16): `/console/catalog/profile?urn=`
shows the stored profiles (`GET /quality/profiles?dataset=`, the dataset versions' statistics, newest
first): per column the null ratio, distinct values, min / max, lengths, top values and value
patterns, and an ECharts bar chart of the null ratio and the distinct share per column. With
quality:manage a form starts a profile as a message-centre job (`POST /console/catalog/profile` ->
`POST /quality/profile-jobs`), answered by the job's row (`_jobs_table.html`) polled from
`/console/catalog/profile/job?id=&urn=` every 2 s while it runs; once it succeeds the browser is sent
(`HX-Redirect`) to the page again, which then shows the new profile. The API checks the permission,
the tenant and that the dataset is a ClickHouse table; its refusal is shown where the person acted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.console.backend import CHINESE, Backend, detail_of, page_language, segment
from api.console.pages_pipelines import graph_json
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
FINISHED = ("succeeded", "failed", "cancelled")
URN_MAX = 1000
EARLIER = 10  # earlier profiles listed under the newest


def _urn(raw: Any) -> str:
    return str(raw or "")[:URN_MAX]


def in_language(text: str | None) -> str:
    """A job's bilingual "中文 / english" message in the page's language."""
    if not text:
        return ""
    zh_part, sep, en_part = text.partition(" / ")
    if not sep or not CHINESE.search(zh_part):
        return text
    return zh_part if page_language.get().startswith("zh") else en_part


def profile_chart(profile: dict) -> dict[str, Any]:
    """Null ratio and distinct share (distinct / rows) per column, in percent, for the bar chart."""
    columns = profile.get("columns") or {}
    rows = profile.get("rows") or 0
    names = list(columns)
    return {
        "categories": names,
        "series": {
            "null_ratio": [round(100 * (columns[n].get("null_ratio") or 0), 2) for n in names],
            "distinct_share": [
                round(100 * min(columns[n].get("distinct") or 0, rows) / rows, 2) if rows else 0 for n in names
            ],
        },
    }


async def _job_panel(request: Request, session: Session, urn: str, job_id: str, error: str | None = None) -> Response:
    job = None
    context: dict[str, Any] = {"urn": urn, "job_id": job_id, "jobs": [], "jobs_error": None, "running": False}
    if job_id and not error:
        answer = await Backend(request, session.token).get(f"/jobs/{segment(job_id)}")
        if answer.status_code == 200:
            job = answer.json()
            job["message"] = in_language(job.get("message"))
            job["error"] = in_language(job.get("error"))
        else:
            context["jobs_error"] = detail_of(answer)
    context |= {"jobs": [job] if job else [], "running": bool(job) and job["state"] not in FINISHED}
    context["profile_error"] = error
    response = render(request, "_profile_job.html", context, session=session)
    if job and job["state"] == "succeeded" and request.headers.get("HX-Request"):
        # done (while the page polled, or already when started): the whole page again, with the new
        # profile and its chart (drawn when a page loads)
        response.headers["HX-Redirect"] = f"{PATH}/catalog/profile?urn={segment(urn)}&job={segment(job_id)}"
    return response


@router.get("/catalog/profile")
async def profile_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    urn = _urn(params.get("urn"))
    api = Backend(request, session.token)
    context: dict[str, Any] = {"urn": urn, "error": None, "profiles": [], "profiles_error": None}
    context |= {"can_profile": session.can("quality:manage"), "job_id": (params.get("job") or "")[:100]}
    ds = await api.get(f"/metadata/datasets/{segment(urn)}")
    if ds.status_code != 200:
        context["error"] = detail_of(ds)
        return render(request, "catalog_profile.html", context, status_code=ds.status_code, session=session)
    context["ds"] = ds.json()
    found = await api.get("/quality/profiles", params={"dataset": urn})
    if found.status_code == 200:
        profiles = found.json()["items"]
        context["profiles"] = profiles[: EARLIER + 1]
        if profiles:
            context["chart"] = graph_json(profile_chart(profiles[0]["profile"]))
    else:
        context["profiles_error"] = detail_of(found)
    if context["job_id"]:
        answer = await api.get(f"/jobs/{segment(context['job_id'])}")
        if answer.status_code == 200:
            job = answer.json()
            job["message"], job["error"] = in_language(job.get("message")), in_language(job.get("error"))
            context |= {"jobs": [job], "running": job["state"] not in FINISHED}
    return render(request, "catalog_profile.html", context, session=session)


@router.post("/catalog/profile")
async def profile_start(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Start a profile job of the dataset's ClickHouse table (all columns); answers the job's panel."""
    form = await request.form()
    urn = _urn(form.get("urn"))
    answer = await Backend(request, session.token).post("/quality/profile-jobs", json={"dataset": urn})
    if answer.status_code != 202:
        response = await _job_panel(request, session, urn, "", error=detail_of(answer))
        return response
    return await _job_panel(request, session, urn, str(answer.json()["job_id"]))


@router.get("/catalog/profile/job")
async def profile_job(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The profile job's row (polled every 2 s while it runs)."""
    params = request.query_params
    return await _job_panel(request, session, _urn(params.get("urn")), (params.get("id") or "")[:100])
