"""Impact lists as CSV files made by a message-centre job (issue 15: a big graph must not time a
request out). The file is written under the state directory and fetched by the job's operator only;
it holds what the caller's scopes showed when the job ran.

    fn = impact_export_job(settings, scopes, urn, field, depth, lang)   # for JobManager.submit
    path = export_file(settings, job_id)
"""

from __future__ import annotations

from pathlib import Path

from api.jobs import JobContext
from api.metadata import catalog_store
from schemas.catalog.impact import csv_text, impact_table

JOB_TYPE = "metadata.impact_export"


def export_file(settings, job_id: str) -> Path:
    return Path(settings.state_dir) / "exports" / "impact" / f"{job_id}.csv"


def impact_export_job(settings, scopes, urn: str, field: str | None, depth: int, lang: str):
    def run(ctx: JobContext) -> dict:
        ctx.progress(5, "following the lineage downstream")
        header, rows, partial = impact_table(catalog_store(settings).engine, scopes, urn, field, depth, lang)
        ctx.check_cancelled()
        ctx.progress(80, f"{len(rows)} affected datasets and fields: writing the file")
        path = export_file(settings, ctx.job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_text(csv_text(header, rows), encoding="utf-8")
        part.replace(path)  # the file appears whole or not at all
        return {"rows": len(rows), "partial": partial, "download": f"/impact-exports/{ctx.job_id}"}

    return run
