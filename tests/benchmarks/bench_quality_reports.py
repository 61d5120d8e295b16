"""Quality reports and profiling at scale (issue 16), against a ClickHouse server (18.16 here).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_quality_reports.py --rows 100000000 --profile-rows 1000000

1. Fills a database of its own (`qbench`, dropped at the end unless --keep) with `--rows` metric rows
   through the documented table (INSERT ... SELECT FROM numbers(), in chunks): one-minute windows
   over the last 62 days, 20 systems, 400 datasets with 5 rules each, 6 dimensions; the materialised views
   fill the hourly and daily rollups as the rows arrive.
2. Times a monthly report, whole tenant and one system: the figures (quality_stream/reports/build.py,
   reading the daily rollup), the HTML and the PDF with their charts. Goal: < 10 s each.
3. Profiles a `--profile-rows` x 20-column table (ints, floats, dates, strings, nullable codes).
   Goal: < 10 s.
Settings: HUILIU_CLICKHOUSE_URL (the database part is replaced by `qbench`).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def _client(url: str, database: str):
    from sinks.clickhouse import client_from_url

    base, _, _ = url.rpartition("/")
    admin = client_from_url(url)
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    admin.disconnect()
    return client_from_url(f"{base}/{database}")


def fill(client, rows: int, chunk: int) -> float:
    from quality_stream.metrics.schema import COLUMNS, RAW, ensure_tables

    ensure_tables(client)
    t0 = time.time()
    minutes = 62 * 24 * 60
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        # 400 datasets (20 per system) with 5 rules each: 2,000 series, as many pipelines' rule sets
        client.execute(
            f"INSERT INTO {RAW} ({', '.join(COLUMNS)}) SELECT "
            f"toDateTime(toStartOfMinute(now()) - 60 * (intDiv(n, 2000) % {minutes})) AS window_start, "
            "'bench' AS scope, concat('p', toString(d)) AS pipeline, concat('sys', toString(d % 20)) AS system, "
            "concat('huiliu.sys', toString(d % 20), '.public.t', toString(d)) AS dataset, "
            "concat('rule', toString(r)) AS rule, "
            "arrayElement(['completeness','validity','uniqueness','consistency','accuracy','timeliness'], r % 6 + 1) "
            "AS dimension, concat('message of rule ', toString(r)) AS message, "
            "toUInt64(100) AS evaluated, toUInt64(n % 5) AS failed "
            f"FROM (SELECT number + {start} AS n, (number + {start}) % 400 AS d, "
            f"d * 5 + intDiv(number + {start}, 400) % 5 AS r FROM numbers({n}))",
            settings={"max_execution_time": 3600},
        )
        print(f"  {start + n:,} rows, {time.time() - t0:.0f} s", flush=True)
    return time.time() - t0


def report(client, system: str | None) -> dict:
    from quality_stream.metrics.query import Filter
    from quality_stream.reports.build import report_data
    from quality_stream.reports.render import render_html, render_pdf

    t0 = time.time()
    data = report_data(client, Filter("bench", system=system), "monthly", title=system or "all")
    t1 = time.time()
    html = render_html(data)
    t2 = time.time()
    pdf = render_pdf(data)
    t3 = time.time()
    return {
        "report": system or "whole tenant",
        "evaluated": data["totals"]["evaluated"],
        "figures_s": round(t1 - t0, 2),
        "html_s": round(t2 - t1, 2),
        "pdf_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "pdf_kb": len(pdf) // 1024,
        "html_kb": len(html) // 1024,
    }


def profile(client, rows: int) -> dict:
    from quality_stream.profiling import profile_table, suggest_rules

    client.execute("DROP TABLE IF EXISTS prof")
    cols = []
    exprs = []
    for i in range(5):
        cols.append(f"i{i} Int64")
        exprs.append(f"toInt64(number * {i + 7} % 100003)")
        cols.append(f"s{i} String")
        exprs.append(f"concat('37', toString(number % {10 ** (i + 2)}))")
        cols.append(f"c{i} Nullable(String)")
        exprs.append(f"if(number % {i + 3} = 0, NULL, toString(number % {i + 2}))")
        cols.append(f"d{i} Date" if i % 2 == 0 else f"f{i} Float64")
        exprs.append(f"toDate('2020-01-01') + number % {365 * (i + 1)}" if i % 2 == 0 else f"number / {i + 3}")
    client.execute(f"CREATE TABLE prof ({', '.join(cols)}) ENGINE = MergeTree ORDER BY tuple()")
    client.execute(f"INSERT INTO prof SELECT {', '.join(exprs)} FROM numbers({rows})")
    t0 = time.time()
    p = profile_table(client, "prof")
    seconds = time.time() - t0
    return {
        "rows": p["rows"],
        "columns": len(p["columns"]),
        "seconds": round(seconds, 2),
        "suggested_rules": len(suggest_rules(p)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--chunk", type=int, default=20_000_000)
    ap.add_argument("--profile-rows", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the qbench database")
    args = ap.parse_args()
    from deploy.settings import get_settings

    client = _client(get_settings().clickhouse_url, "qbench")
    try:
        print(f"load average before: {os.getloadavg()}", flush=True)
        seconds = fill(client, args.rows, args.chunk)
        raw = client.execute("SELECT count() FROM quality_metrics")[0][0]
        daily = client.execute("SELECT count() FROM quality_metrics_daily")[0][0]
        print(json.dumps({"filled_rows": raw, "fill_s": round(seconds, 1), "daily_rollup_rows": daily}), flush=True)
        for system in (None, "sys3"):
            print(json.dumps(report(client, system)), flush=True)
        print(json.dumps(profile(client, args.profile_rows)), flush=True)
        print(f"load average after: {os.getloadavg()}", flush=True)
    finally:
        if not args.keep:
            client.execute("DROP DATABASE IF EXISTS qbench")
        client.disconnect()


if __name__ == "__main__":
    main()
