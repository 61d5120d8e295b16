"""Figures for the metadata catalogue (issue 15): harvest, re-harvest, search through HTTP, field lineage.

Run: PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_catalog.py [--tables 2000] [--columns 25]
     [--fields 100000] [--requests 300] [--skip harvest search lineage] [--keep]
Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres). Makes two databases of its own,
`huiliu_bench_catsrc` (the source: N tables x M columns with Chinese comments on some columns) and
`huiliu_bench_catctl` (the control DB, migrated), and starts the API as a process on port 24990.

- harvest: SQLAlchemy inspection of the whole source + CatalogStore.record (goal < 60 s)
- re-harvest of the unchanged source (goal < 20 s; must add no version)
- search p50/p99 through GET /metadata/search over the fields in the catalogue, topped up with a
  second system to `--fields` (goal p99 < 50 ms; Chinese and English queries, each timed apart)
- field-level lineage of a 6-hop, 50-column path through GET /lineage (goal < 100 ms)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
import psycopg  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SRC, CTL = "huiliu_bench_catsrc", "huiliu_bench_catctl"
PORT = 24990
# column name, type, comment: what a population register holds; the rest are c<i> with no comment
VOCAB = [
    ("citizen_id", "varchar(18)", "公民身份证号码"),
    ("name", "text", "姓名"),
    ("gender_code", "char(1)", "性别代码"),
    ("birth_date", "date", "出生日期"),
    ("address", "text", "住址"),
    ("phone", "varchar(20)", "联系电话"),
    ("division_code", "char(6)", "行政区划代码"),
    ("org_code", "char(18)", "统一社会信用代码"),
]
QUERIES = {
    "zh": ["身份证", "姓名", "出生日期", "行政区划", "统一社会信用代码", "公民 号码"],
    "en": ["citizen", "birth_date", "address", "division code", "org_code", "phone"],
}


def _url(db: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def _fresh(db: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")


def make_source(tables: int, columns: int) -> float:
    t0 = time.perf_counter()
    _fresh(SRC)
    with psycopg.connect(_url(SRC).replace("+psycopg", ""), autocommit=False) as conn:
        for start in range(0, tables, 100):
            ddl = []
            for t in range(start, min(start + 100, tables)):
                cols, notes = ["id bigint PRIMARY KEY"], []
                for c in range(1, columns):
                    name, typ, comment = VOCAB[c - 1] if c <= len(VOCAB) else (f"c{c:02d}", "text", None)
                    cols.append(f"{name} {typ}")
                    if comment:
                        notes.append(f"COMMENT ON COLUMN t{t:04d}.{name} IS '{comment}'")
                ddl.append(f"CREATE TABLE t{t:04d} ({', '.join(cols)})")
                ddl.append(f"COMMENT ON TABLE t{t:04d} IS '业务表 {t}'")
                ddl += notes
            conn.execute(";".join(ddl))
        conn.commit()
    return time.perf_counter() - t0


def bench_harvest(store) -> dict:
    from sqlalchemy import create_engine, func, select

    from schemas.catalog.relational import harvest_relational
    from schemas.catalog.tables import catalog_versions

    engine = create_engine(_url(SRC))
    out = {}
    for label in ("harvest", "reharvest"):
        t0 = time.perf_counter()
        h = harvest_relational(engine, _url(SRC), "bench")
        t1 = time.perf_counter()
        outcome = store.record(h, "")
        t2 = time.perf_counter()
        with store.engine.connect() as conn:
            versions = conn.execute(select(func.count()).select_from(catalog_versions)).scalar()
        out[label] = {
            "seconds": round(t2 - t0, 2),
            "inspect_s": round(t1 - t0, 2),
            "record_s": round(t2 - t1, 2),
            "datasets": outcome.datasets,
            "fields": sum(len(d.fields) for d in h.datasets),
            "new": len(outcome.new),
            "changed": len(outcome.changed),
            "versions_in_catalogue": versions,
        }
        print(label, out[label], flush=True)
    engine.dispose()
    return out


def top_up(store, fields: int, columns: int) -> int:
    """A second system of synthetic tables so the index holds `fields` field documents."""
    from sqlalchemy import func, select

    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.tables import catalog_search_docs
    from schemas.catalog.urns import dataset_urn, system_urn

    with store.engine.connect() as conn:
        have = conn.execute(
            select(func.count()).select_from(catalog_search_docs).where(catalog_search_docs.c.kind == "field")
        ).scalar()
    missing = max(0, fields - have)
    ns = "mysql://bench-other:3306"
    datasets = []
    for t in range((missing + columns - 1) // columns):
        cols = [
            FieldInfo(
                name=VOCAB[c % len(VOCAB)][0] + ("" if c < len(VOCAB) else f"_{c}"),
                type="varchar(64)",
                position=c + 1,
                comment=VOCAB[c % len(VOCAB)][2] if c < len(VOCAB) else f"字段 {c}",
            )
            for c in range(columns)
        ]
        datasets.append(DatasetInfo(dataset_urn(ns, f"other.r{t:05d}"), f"other.r{t:05d}", "table", cols))
    if datasets:
        store.record(Harvest(SystemInfo(system_urn(ns, "other"), "other", "mysql"), datasets), "")
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(catalog_search_docs).where(catalog_search_docs.c.kind == "field")
        ).scalar()


def lineage_path(store, hops: int = 6, width: int = 50) -> str:
    from schemas.catalog.lineage import Edge, replace_edges
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.urns import dataset_urn, job_urn, system_urn

    ns = "kafka://bench-broker:9092"
    urns = [dataset_urn(ns, f"bench.path.hop{i}") for i in range(hops + 1)]
    fields = [FieldInfo(f"f{c:02d}", "string", c + 1) for c in range(width)]
    store.record(
        Harvest(SystemInfo(system_urn(ns), "broker", "kafka"), [DatasetInfo(u, u, "topic", fields) for u in urns]), ""
    )
    t = {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    for i in range(hops):
        job = job_urn(f"bench-hop{i}")
        edges = [Edge(job, urns[i], urns[i + 1])] + [Edge(job, urns[i], urns[i + 1], f.name, f.name, t) for f in fields]
        replace_edges(store.engine, "", f"bench:hop{i}", edges)
    return urns[0]


def start_api(state: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "HUILIU_STATE_DIR": str(state),
        "HUILIU_CONTROL_DB_URL": _url(CTL),
        "HUILIU_API_PORT": str(PORT),
        "HUILIU_KAFKA_BOOTSTRAP": "127.0.0.1:24992",
        "HUILIU_SCHEMA_REGISTRY_URL": "http://127.0.0.1:24981",
    }
    log = open(state / "api.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/livez", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                sys.exit("API exited: " + (state / "api.out").read_text()[-2000:])
            time.sleep(0.3)
    proc.kill()
    sys.exit("API did not answer in 90 s")


def _timed(client: httpx.Client, path: str, params: dict, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return times


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


def bench_search(client: httpx.Client, requests: int) -> dict:
    out = {}
    for lang, queries in QUERIES.items():
        per = max(1, requests // len(queries))
        times, hits = [], {}
        for q in queries:
            _timed(client, "/metadata/search", {"q": q}, 3)  # warm
            times += _timed(client, "/metadata/search", {"q": q}, per)
            hits[q] = client.get("/metadata/search", params={"q": q}).json()["total"]
        out[lang] = {"requests": len(times), "p50_ms": _pct(times, 50), "p99_ms": _pct(times, 99), "hits": hits}
        print("search", lang, out[lang], flush=True)
    return out


def bench_lineage(client: httpx.Client, root: str, requests: int) -> dict:
    path = f"/lineage/{quote(root, safe='')}"
    params = {"direction": "downstream", "depth": 6, "level": "field"}
    graph = client.get(path, params=params).json()
    times = _timed(client, path, params, requests)
    out = {
        "nodes": len(graph["nodes"]),
        "edges": len(graph["edges"]),
        "partial": graph["partial"],
        "p50_ms": _pct(times, 50),
        "p99_ms": _pct(times, 99),
    }
    print("lineage", out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, default=2000)
    ap.add_argument("--columns", type=int, default=25)
    ap.add_argument("--fields", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--keep", action="store_true", help="leave the two databases behind")
    args = ap.parse_args()

    from api.auth import api_key_for
    from deploy.control import engine_for
    from deploy.settings import Settings
    from schemas.catalog import CatalogStore

    print(
        f"source: {args.tables} tables x {args.columns} columns made in {make_source(args.tables, args.columns):.1f} s"
    )
    _fresh(CTL)
    store = CatalogStore(engine_for(_url(CTL)))
    results = {}
    if "harvest" not in args.skip:
        results["harvest"] = bench_harvest(store)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        proc = None
        try:
            if "search" not in args.skip:
                print("field documents in the index:", top_up(store, args.fields, args.columns), flush=True)
            root = lineage_path(store) if "lineage" not in args.skip else None
            with psycopg.connect(_url(CTL).replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute("ANALYZE")
            proc = start_api(state)
            key = api_key_for(Settings(state_dir=state))
            with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"X-API-Key": key}, timeout=60) as client:
                if "search" not in args.skip:
                    results["search"] = bench_search(client, args.requests)
                if root:
                    results["lineage"] = bench_lineage(client, root, min(args.requests, 100))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(20)
            store.engine.dispose()
            if not args.keep:
                for db in (SRC, CTL):
                    with psycopg.connect(ADMIN, autocommit=True) as conn:
                        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    print("RESULT", results)


if __name__ == "__main__":
    main()
