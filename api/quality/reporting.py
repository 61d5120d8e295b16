"""Wiring of quality reports, scorecards and profiles (issue 16): the ClickHouse client, the
catalogue (departments, datasets), the ticket counts when the ticket store is there, the report
store, and the e-mail to subscribers. The figures and rendering are quality_stream/reports.

    generate(settings, scope, kind, target, period, by, end=None, lang="zh", email=False) -> report
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from typing import Any

from quality_stream.metrics import query
from quality_stream.metrics.schema import ensure_tables
from quality_stream.reports.build import report_data
from quality_stream.reports.periods import window
from quality_stream.reports.scorecards import department_map, topics
from quality_stream.reports.store import ReportStore

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _store(url: str) -> ReportStore:
    from deploy.control import engine_for

    return ReportStore(engine_for(url))


def report_store(settings) -> ReportStore:
    return _store(settings.resolved_control_db_url)


class MetricsUnavailable(RuntimeError):
    """ClickHouse (the quality metrics) cannot be reached."""


def clickhouse(settings):
    from clickhouse_driver.errors import Error as ClickHouseError

    from sinks.clickhouse import client_from_url

    client = client_from_url(settings.clickhouse_url)
    try:
        ensure_tables(client)
    except (ClickHouseError, OSError, EOFError) as exc:  # refused, timed out, not ClickHouse at that port
        client.disconnect()
        raise MetricsUnavailable(
            f"the quality metrics store (ClickHouse) cannot be reached: {type(exc).__name__}"
        ) from None
    return client


def catalog_datasets(settings, scope: str) -> list[dict[str, Any]]:
    from api.metadata import catalog_store

    _, items = catalog_store(settings).datasets({scope}, limit=100_000)
    return items


def departments(settings, client, scope: str, start, end) -> dict[str, str]:
    return department_map(catalog_datasets(settings, scope), topics(client, scope, start, end))


def where_for(settings, client, scope: str, kind: str, target: str, start, end) -> query.Filter:
    if kind == "system":
        return query.Filter(scope, system=target)
    if kind == "department":
        deps = departments(settings, client, scope, start, end)
        return query.Filter(scope, datasets=tuple(sorted(t for t, d in deps.items() if d == target)))
    return query.Filter(scope)


def ticket_counts(settings, scope: str, kind: str, target: str, start: dt.date, end: dt.date) -> dict | None:
    """Tickets opened and closed in the period (None when the ticket store is not installed)."""
    try:
        from quality_stream.tickets.tables import quality_tickets as t
    except ImportError:
        return None
    from sqlalchemy import and_, func, select

    from deploy.control import engine_for

    lo = dt.datetime.combine(start, dt.time(), dt.UTC).timestamp()
    hi = dt.datetime.combine(end, dt.time(), dt.UTC).timestamp()
    where = [t.c.scope == scope]
    if kind == "department":
        where.append(t.c.department == target)
    try:
        with engine_for(settings.resolved_control_db_url).connect() as conn:
            opened = conn.execute(
                select(func.count()).where(and_(*where, t.c.opened_at >= lo, t.c.opened_at < hi))
            ).scalar()
            closed = conn.execute(
                select(func.count()).where(and_(*where, t.c.closed_at >= lo, t.c.closed_at < hi))
            ).scalar()
    except Exception as exc:  # the table not migrated yet: the report says tickets were not counted
        log.warning("quality report: tickets not counted: %s", exc)
        return None
    return {"opened": int(opened or 0), "closed": int(closed or 0)}


def generate(
    settings,
    scope: str,
    kind: str,
    target: str,
    period: str,
    by: str,
    end: dt.date | None = None,
    lang: str = "zh",
    email: bool = False,
) -> dict[str, Any]:
    start, end, _ = window(period, end)
    client = clickhouse(settings)
    try:
        where = where_for(settings, client, scope, kind, target, start, end)
        title = target or ("全部" if lang == "zh" else "all")
        data = report_data(client, where, period, end, title, ticket_counts(settings, scope, kind, target, start, end))
    finally:
        client.disconnect()
    data["kind"] = kind
    from quality_stream.reports.render import render_html, render_pdf  # matplotlib: only to render

    html, pdf = render_html(data, lang), render_pdf(data, lang)
    report = report_store(settings).save(scope, kind, target, period, data, html, pdf, by)
    report["emailed"] = mail_subscribers(settings, scope, report, pdf) if email else []
    return report


def mail_subscribers(settings, scope: str, report: dict, pdf: bytes) -> list[dict]:
    """The report's PDF to every subscriber of its kind/target/period, through the alert SMTP path."""
    from api.alerts.notify import send_email
    from connectors.probes import check_host

    out = []
    s = report["summary"]
    for sub in report_store(settings).subscriptions(scope, report["kind"], report["target"], report["period"], True):
        subject = f"数据质量报告 / Data quality report {report['target'] or ''} {s['start']} – {s['end']}"
        body = (
            f"检查记录数 / records checked: {s['totals']['evaluated']}\n"
            f"问题数 / problems: {s['totals']['failed']}\n"
            f"质量得分 / score: {s['totals']['score']}\n"
        )
        try:
            check_host(
                settings,
                scope or None,
                str(sub["channel"].get("smtp_host")),
                sub["channel"].get("smtp_port"),
                "channel.smtp_host",
            )
            send_email(
                sub["channel"],
                subject,
                body,
                attachments=[(f"quality-report-{report['id']}.pdf", "application/pdf", pdf)],
                prefix="[Huiliu]",
            )
            out.append({"subscription": sub["id"], "sent": True})
        except Exception as exc:  # one unreachable mail server does not fail the report
            out.append({"subscription": sub["id"], "sent": False, "error": str(exc)[:300]})
    return out


# -- the scheduler's action: `POST /schedules {"action": "quality.report", "params": {...}}` ----------

from api.scheduling.actions import Scope, action  # noqa: E402
from connectors.paths import PathRefused  # noqa: E402


def _check_report(params: dict, settings, scope: Scope) -> None:
    unknown = sorted(set(params) - {"kind", "target", "period", "lang"})
    if unknown:
        raise PathRefused(f"params.{unknown[0]}", "quality.report takes kind, target, period, lang")
    if params.get("kind", "all") not in ("all", "system", "department"):
        raise PathRefused("params.kind", "must be all, system or department")
    if params.get("period", "monthly") not in ("daily", "weekly", "monthly"):
        raise PathRefused("params.period", "must be daily, weekly or monthly")
    if params.get("kind", "all") != "all" and not str(params.get("target") or "").strip():
        raise PathRefused("params.target", "name the system or department")
    if params.get("lang", "zh") not in ("zh", "en"):
        raise PathRefused("params.lang", "must be zh or en")


@action("quality.report", scoped=True, check=_check_report)
def scheduled_report(ctx, params: dict, settings, scope: Scope) -> dict[str, Any]:
    """Build the schedule's report for its tenant and e-mail it to the subscribers."""
    _check_report(params, settings, scope)
    kind = params.get("kind", "all")
    report = generate(
        settings,
        scope.tenant or "",
        kind,
        str(params.get("target") or "").strip() if kind != "all" else "",
        params.get("period", "monthly"),
        "scheduler",
        lang=params.get("lang", "zh"),
        email=True,
    )
    ctx.progress(100, f"report {report['id']}")
    return {"report": report["id"], "emailed": sum(1 for e in report["emailed"] if e["sent"])}
