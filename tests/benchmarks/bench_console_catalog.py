"""Server-side time of the console's catalogue pages with many datasets (issue 18: a page in under
300 ms with 1,000 datasets in the control DB).

Run: PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_console_catalog.py [--datasets 1000]
     [--columns 25] [--requests 10] [--port 22191]
Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres). Makes the control DB
`huiliu_bench_console_catalog` (fresh, migrated) holding N tables of one system, each with
`citizen_id` (comment 公民身份证号码) among its columns, in one tenant, and a 6-hop topic path with
field lineage from the first table, 100 jobs reporting lineage from outside and 1,000 schema
changes (100 connectors); starts the API as a process (no broker), signs in through the
console's form and times each catalogue page's GET and the JSON routes it calls (p50/p95, ms, by
the client on the same machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg  # noqa: E402

from tests.benchmarks.console_timing import time_pages  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "huiliu_bench_console_catalog"
TENANT = "bench"
USER, PASSWORD = "bench-cat-admin", "Bench-catalog-pass-1"
SOURCE_NS = "postgres://bench-db:5432"
BROKER_NS = "kafka://bench-broker:9092"


def seed(settings, datasets: int, columns: int) -> tuple[str, str]:
    """The tables, a path of topics from the first one, and the user; the first table's and the
    system's URNs."""
    from api.identity.store import store_for
    from deploy.control import engine_for
    from schemas.catalog import CatalogStore
    from schemas.catalog.lineage import Edge, replace_edges
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.urns import dataset_urn, job_urn, system_urn

    store_for(settings.resolved_control_db_url).create_user(USER, PASSWORD, tenant=TENANT, roles=["admin"])
    store = CatalogStore(engine_for(settings.resolved_control_db_url))
    fields = [
        FieldInfo("id", "BIGINT", 1, nullable=False, key=True),
        FieldInfo("citizen_id", "VARCHAR(18)", 2, comment="公民身份证号码"),
    ]
    fields += [FieldInfo(f"c{c:02d}", "TEXT", c + 1, comment=f"业务字段 {c}") for c in range(2, columns)]
    tables = [
        DatasetInfo(dataset_urn(SOURCE_NS, f"civil.public.t{t:04d}"), f"public.t{t:04d}", "table", fields, {"rows": t})
        for t in range(datasets)
    ]
    system = system_urn(SOURCE_NS, "civil")
    store.record(Harvest(SystemInfo(system, "civil", "postgres"), tables), TENANT)
    topics = [dataset_urn(BROKER_NS, f"huiliu.civil.t0000.hop{i}") for i in range(6)]
    store.record(
        Harvest(
            SystemInfo(system_urn(BROKER_NS), "broker", "kafka"), [DatasetInfo(u, u, "topic", fields) for u in topics]
        ),
        TENANT,
    )
    path = [tables[0].urn, *topics]
    identity = {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    for i in range(len(path) - 1):
        job = job_urn(f"bench-hop{i}")
        edges = [Edge(job, path[i], path[i + 1])]
        edges += [Edge(job, path[i], path[i + 1], f.name, f.name, identity) for f in fields]
        replace_edges(store.engine, TENANT, f"bench:hop{i}", edges)
    seed_reported_and_changes(settings, store, tables)
    store.engine.dispose()
    return tables[0].urn, system


REPORTERS = 100  # external jobs reporting lineage, one table -> an external copy each
CHANGES = 1000  # schema changes over 100 connectors, a tenth of them held


def seed_reported_and_changes(settings, store, tables) -> None:
    from connectors.schema_change_store import SchemaChangeStore
    from schemas.catalog.lineage import Edge, replace_edges
    from schemas.catalog.reported import note_report
    from schemas.catalog.urns import dataset_urn, job_urn

    for j in range(REPORTERS):
        job, origin = job_urn(f"api/etl{j:03d}"), f"api:etl{j:03d}"
        edge = Edge(job, tables[j].urn, dataset_urn("postgres://dw:5432", f"dw.public.copy{j:03d}"))
        replace_edges(store.engine, TENANT, origin, [edge])
        note_report(store.engine, TENANT, origin, job, "https://example.org/etl", USER, 1)
    changes = SchemaChangeStore(settings.resolved_control_db_url)
    change = [{"kind": "narrowed", "column": "c02", "old_type": "TEXT", "new_type": "VARCHAR(10)", "key": False}]
    for i in range(CHANGES):
        status = "held" if i % 10 == 0 else "applied"
        changes.add(TENANT, f"conn{i % 100:03d}", f"public.t{i:04d}", f"{i:064d}", change, compatible=0, status=status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--columns", type=int, default=25)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--port", type=int, default=22191)
    args = parser.parse_args()

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    from deploy.settings import Settings

    state = Path(tempfile.mkdtemp(prefix="bench-console-catalog-"))
    settings = Settings(
        state_dir=state,
        control_db_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}",
        kafka_bootstrap="127.0.0.1:1",
        schema_registry_url="http://127.0.0.1:1",
        api_port=args.port,
    )
    started = time.perf_counter()
    table, system = seed(settings, args.datasets, args.columns)
    print(f"seeded {args.datasets} tables x {args.columns} columns in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DB}", autocommit=True) as conn:
        conn.execute("ANALYZE")

    t, s = quote(table, safe=""), quote(system, safe="")
    pages = (
        "/console/catalog?q=%E8%BA%AB%E4%BB%BD%E8%AF%81",  # 身份证: a field of every table
        "/console/catalog?q=citizen_id&type=VARCHAR%2818%29",  # a facet the page filters itself
        f"/console/catalog/dataset?urn={t}",
        f"/console/catalog/lineage?urn={t}",
        f"/console/catalog/lineage?urn={t}&level=field&field=citizen_id&depth=6",
        "/console/catalog/map",
        f"/console/catalog/map?system={s}",
        "/console/catalog/assets",
        "/console/catalog/harvest",
        "/console/catalog/schema-changes",
        "/console/catalog/reported",
    )
    api_routes = (
        "/metadata/search?q=%E8%BA%AB%E4%BB%BD%E8%AF%81&limit=50",
        f"/metadata/datasets/{t}",
        f"/lineage/{t}?level=field&field=citizen_id&depth=6",
        f"/impact/{t}?field=citizen_id",
        "/map",
        "/assets/summary",
        "/schema-changes",
        "/lineage-reports",
    )

    def matches_shown(path, answer):  # the matches are on the page, not just a 200
        if path.startswith("/console/catalog?"):
            assert answer.text.count('class="hit"') == 50, path

    try:
        time_pages(settings, USER, PASSWORD, list(pages), list(api_routes), args.requests, matches_shown, width=72)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
