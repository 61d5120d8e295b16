"""`huiliu demo`: stack up, seed the population register, run the pipeline, print a summary; then the
platform over the loaded table through the API (api/demo_platform.py) and its summary."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

import deploy.demo
from api.demo_platform import show_platform, start_api
from connectors.local_run import LocalPipelineRun
from connectors.pipeline import prepare_topics, stage_name
from deploy.control import OffsetStore
from deploy.demo.seed import seed
from deploy.kafka import delete_topics_and_groups
from deploy.settings import Settings
from deploy.stack import Stack
from sinks.clickhouse import client_from_url

TEMPLATE = Path(deploy.demo.__file__).with_name("population.yaml")  # package data of deploy.demo


def pick_source_url(settings: Settings, console: Console) -> str:
    """PostgreSQL when it answers, else an embedded SQLite file: the demo never fails for want of a server."""
    try:
        engine = create_engine(
            settings.demo_source_url,
            connect_args={"connect_timeout": 3} if settings.demo_source_url.startswith("postgresql") else {},
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return settings.demo_source_url
    except Exception as exc:
        console.print(f"[yellow]PostgreSQL not reachable ({type(exc).__name__}); using embedded SQLite[/]")
        # inside the demo tenant's file area: sources may only read files there (connectors/paths.py)
        path = settings.resolved_data_root / "demo" / "demo_source.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"


def write_pipeline(settings: Settings, source_url: str) -> Path:
    path = settings.state_dir / "demo" / "population.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.read_text(encoding="utf-8").replace("{source_url}", source_url), encoding="utf-8")
    return path


def reset_previous_run(run: LocalPipelineRun, settings: Settings) -> None:
    """A second demo starts clean: the last run's topics and consumer groups (the broker keeps them
    across restarts), offsets, counters and ClickHouse table go."""
    topics = list(run.spec.topics(settings).values())
    groups = [f"huiliu-runner-{run.spec.name}", f"huiliu-connect-{stage_name(run.spec.name, 'sink')}"]
    delete_topics_and_groups(settings.kafka_bootstrap, topics, groups)
    prepare_topics(run.spec, settings)
    OffsetStore(settings.resolved_control_db_url, stage_name(run.spec.name, "source")).clear()
    run.counters.reset()
    client = client_from_url(settings.clickhouse_url)
    client.execute(f"DROP TABLE IF EXISTS `{run.spec.sink.config['table']}`")
    client.disconnect()


def run_demo(settings: Settings, rows: int, console: Console, keep_running: bool = False) -> dict:
    settings.ensure_dirs()
    stack = Stack(settings)
    stack.up()
    api = start_api(settings)  # built while the pipeline runs
    try:
        source_url = pick_source_url(settings, console)
        with console.status(f"seeding {rows} people into {source_url.split('@')[-1]}"):
            seed(source_url, rows)
        run = LocalPipelineRun(write_pipeline(settings, source_url), settings)
        reset_previous_run(run, settings)
        run.start_sink()
        run.start_runner()
        try:
            with console.status("capturing") as status:
                captured = run.capture()
                status.update(f"captured {captured} rows; cleansing, checking and loading into ClickHouse")
                stats = run.wait_drained(
                    progress=lambda s: status.update(
                        f"runner read {s.get('runner', {}).get('read', 0)}/{captured}, "
                        f"ClickHouse rows written {s.get('sink', {}).get('written', 0)}"
                    )
                )
        finally:
            run.stop()
        table = run.spec.sink.config["table"]
        client = client_from_url(settings.clickhouse_url)
        in_clickhouse = client.execute(f"SELECT count() FROM `{table}` FINAL WHERE _deleted = 0")[0][0]
        client.disconnect()
        print_summary(console, stats, in_clickhouse, settings, table)
        with console.status("the platform over the table: catalogue, detection, a data service, two calls"):
            document = yaml.safe_load(Path(run.spec_path).read_text(encoding="utf-8"))
            platform = show_platform(api.result(), settings, document, table, run.spec.topics(settings)["clean"])
        print_platform_summary(console, platform)
        return {"stats": stats, "clickhouse_rows": in_clickhouse, "platform": platform}
    finally:
        if not keep_running:  # also after a failure: nothing is left running
            Stack(settings).down()


def print_summary(console: Console, stats: dict, in_clickhouse: int, settings: Settings, table: str) -> None:
    runner = stats.get("runner", {})
    summary = Table(title="Huiliu demo: population register -> ClickHouse")
    summary.add_column("stage")
    summary.add_column("count", justify="right")
    summary.add_row("rows captured (source)", str(stats.get("source", {}).get("read", 0)))
    summary.add_row("passed quality rules", str(runner.get("valid", 0)))
    for key, n in sorted(runner.items()):
        if key.startswith("quarantined."):
            summary.add_row(f"  quarantined by {key.split('.', 1)[1]}", str(n))
    summary.add_row("rows in ClickHouse (FINAL)", str(in_clickhouse))
    console.print(summary)
    if settings.broker_storage == "memory":
        console.print("[bold yellow]broker storage: memory — NOT durable, a broker restart loses every event[/]")
    else:
        console.print(f"broker storage: durable (SeaweedFS S3 on port {settings.resolved_objectstore_port})")
    console.print(
        f"Next: HUILIU_* settings in effect point at {settings.kafka_bootstrap} (Kafka) and "
        f"{settings.clickhouse_url.split('@')[-1]} (ClickHouse).\n"
        f"  clickhouse-client --port {settings.port_of(settings.clickhouse_url)} "
        f"--query 'SELECT * FROM {table} FINAL WHERE _deleted = 0 LIMIT 10'\n"
        f"  huiliu api   then   curl -H \"X-API-Key: $(cat {settings.state_dir}/api_key)\" "
        f"http://{settings.api_host}:{settings.api_port}/pipelines/population/stats\n"
        f"  quarantined records: topic huiliu.civil.default.population.quarantine"
    )


def print_platform_summary(console: Console, platform: dict) -> None:
    dataset = platform["dataset"]
    summary = Table(title="Huiliu demo: the table in the platform (through the API)")
    summary.add_column("what")
    summary.add_column("outcome")
    stats = dataset.get("stats") or {}
    summary.add_row(
        "catalogue dataset", f"{dataset['urn']} ({len(dataset['fields'])} fields, {stats.get('rows')} rows)"
    )
    for f in platform["findings"]:
        summary.add_row(
            f"  classified {f['field']}",
            f"{f['classification']}: {f['label_zh']} {f['label']} (detection: {f['matched']}/{f['sampled']} sampled match)",
        )
    if platform["skipped"]:
        summary.add_row("data service", f"skipped: {platform['skipped']}")
    else:
        add_service_rows(summary, platform)
    console.print(summary)
    for row in platform.get("calls", [{}])[0].get("rows", []):
        console.print("  masked row: " + json.dumps(row, ensure_ascii=False), soft_wrap=True)
    links = platform["console"]
    console.print(
        f"In the console (`huiliu api`, sign in as below): dataset {links['dataset']}\n"
        f"  service {links['service']}\n  quarantine {links['quarantine']}",
        soft_wrap=True,
    )


def add_service_rows(summary: Table, platform: dict) -> None:
    service = platform["service"]
    summary.add_row(
        "data service",
        f"{service['name']} v{service['version']} {service.get('title', '')} {service['status']}: "
        f"written by {service['author']}, reviewed by {service['reviewer']}",
    )
    summary.add_row(
        f"application {platform['application']}",
        f"asked {len(service['asked'])} fields, granted {len(service['granted'])}: {', '.join(service['granted'])}",
    )
    for i, call in enumerate(platform["calls"], 1):
        outcome = (
            f"HTTP {call['status']}, X-Huiliu-Cache: {call['cache'] or '-'}, {len(call['rows'])} rows, {call['ms']} ms"
        )
        summary.add_row(f"call {i} with the app key", outcome + (f" {call['refusal']}" if call["refusal"] else ""))
