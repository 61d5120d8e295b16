"""Server-side time of the web console's pages with many objects (issue 18: a page in under 300 ms
with 1,000 connectors/pipelines in the control DB), and of the newer pages that list things with
as many data elements, code sets, quality tickets, data services and users (console_seed.py).

Run: PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_console.py [--objects 1000] [--requests 20]
     [--port 22190] [--kafka 127.0.0.1:9092 --registry http://127.0.0.1:8081] [--seeded STATE_DIR] [--only services]
Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) and Redis. Makes the control DB
`huiliu_bench_console` (fresh, migrated) with N pipelines and N connectors (runner.lean sinks, never
run) in one tenant, starts the API as a process (no broker: health shows it down, which the pages
show), signs in through the console's form and times each page's GET (p50/p95, ms; measured by the
client on the same machine, so it includes the HTTP round trip).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg  # noqa: E402

from tests.benchmarks.console_seed import seed_identity, seed_services, seed_standards, seed_tickets  # noqa: E402
from tests.benchmarks.console_timing import time_pages  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "huiliu_bench_console"
TENANT = "bench"
USER, PASSWORD = "bench-admin", "Bench-console-pass-1"
PAGES = (
    "/console/",
    "/console/overview/health",
    "/console/connectors",
    "/console/connectors?offset=950",
    "/console/connectors?q=c09",
    "/console/pipelines",
    "/console/pipelines?offset=950",
    "/console/pipelines?q=p09",
    "/console/pipelines/p0000",
    "/console/jobs",
)
# the newer pages that list things (console_seed.py writes N of each; catalogue pages:
# bench_console_catalog.py; the topic list needs a broker: --kafka)
GOVERNANCE_PAGES = (
    "/console/standards?kind=element",
    "/console/standards?kind=code_set",
    "/console/standards?kind=element&q=e09",
    "/console/standards/element/e0500",
    "/console/standards/edit?kind=element&code=e0500",
    "/console/standards/code_set/cs0500",
    "/console/standards/reviews",
    "/console/quality/tickets",
    "/console/services",
    "/console/admin/users",
    "/console/admin/users/user0500",
    "/console/admin/groups",
    "/console/admin/groups/group050",
    "/console/admin/roles",
    "/console/admin/api-keys",
    "/console/admin/audit",
)
GOVERNANCE_API = (
    "/standards/elements?limit=100",
    "/quality/tickets",
    "/services",
    "/users",
    "/groups",
    "/roles",
)
# the JSON routes those pages call: what the console adds is the difference
# (the lists page them: 50 a page; unpaged, the whole list as Kafka Connect clients expect)
API = (
    "/health",
    "/connectors?expand=status&expand=info&limit=50",
    "/connectors?expand=status&expand=info",
    "/connectors",
    "/pipelines?limit=50",
    "/pipelines",
    "/pipelines/p0000/graph",
    "/jobs",
)


def seed(settings, n: int) -> None:
    from api.identity.store import store_for
    from api.pipelines.store import pipeline_store_for
    from connectors.store import ConnectorStore
    from connectors.validation import validate

    store_for(settings.resolved_control_db_url).create_user(USER, PASSWORD, tenant=TENANT, roles=["admin"])
    pipelines = pipeline_store_for(settings)
    connectors = ConnectorStore(settings.resolved_control_db_url, settings.state_dir)
    for i in range(n):
        name = f"p{i:04d}"
        document = {
            "name": name,
            "tenant": TENANT,
            "source": {
                "kind": "relational.timestamp",
                "config": {
                    "url": "postgresql+psycopg://u@db.example:5432/civil",
                    "system": f"s{i}",
                    "table": "population",
                    "timestamp_column": "updated_at",
                },
            },
            "transforms": [{"kind": "trim", "fields": ["name"]}],
            "rules": [{"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"}],
            "sink": {"kind": "clickhouse", "config": {"table": f"t{i}"}},
        }
        pipelines.create(name, document, USER)
        spec, errors = validate(f"c{i:04d}", {"connector.class": "runner.lean", "topics": [f"t{i}"]}, settings)
        assert spec is not None, errors
        connectors.create(spec, TENANT, target_state="PAUSED")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--port", type=int, default=22190)
    parser.add_argument("--kafka", default="", help="a broker's bootstrap: also time the topic list")
    parser.add_argument("--registry", default="http://127.0.0.1:1", help="its schema registry")
    parser.add_argument(
        "--seeded", metavar="STATE_DIR", help="time again: the DB and this state dir as a run left them (no seeding)"
    )
    parser.add_argument("--only", default="", help="time only the paths containing this text")
    args = parser.parse_args()

    if not args.seeded:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB}")
    from deploy.settings import Settings

    state = Path(args.seeded) if args.seeded else Path(tempfile.mkdtemp(prefix="bench-console-"))
    settings = Settings(
        state_dir=state,
        control_db_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}",
        kafka_bootstrap=args.kafka or "127.0.0.1:1",
        schema_registry_url=args.registry,
        api_port=args.port,
    )
    started = time.perf_counter()
    if not args.seeded:
        seed(settings, args.objects)
        seed_standards(settings, TENANT, USER, args.objects)
        seed_tickets(settings, TENANT, USER, args.objects)
        seed_services(settings, TENANT, USER, args.objects)
        seed_identity(settings, TENANT, args.objects)
        print(
            f"seeded {args.objects} each of pipelines, connectors, data elements, code sets, quality tickets,"
            f" data services and users ({args.objects // 10} groups and roles) in {time.perf_counter() - started:.1f} s"
        )
    pages = [*PAGES, *GOVERNANCE_PAGES, *(["/console/topics", "/console/topics?offset=50"] if args.kafka else [])]
    api = [*API, *GOVERNANCE_API, *(["/topics?limit=50"] if args.kafka else [])]
    pages, api = [p for p in pages if args.only in p], [p for p in api if args.only in p]
    time_pages(settings, USER, PASSWORD, pages, api, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
