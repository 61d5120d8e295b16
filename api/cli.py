"""The `huiliu` command: local stack, pipeline stages, API, registry, demo."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

import typer
from rich.console import Console

from deploy.settings import get_settings

app = typer.Typer(help="Huiliu (汇流): streaming data integration and governance.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Run the stages of a pipeline document.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
console = Console()


def _print_version(value: bool) -> None:
    if value:
        from deploy.version import huiliu_version

        console.print(f"huiliu {huiliu_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="print the version"),
) -> None:
    """Huiliu (汇流): streaming data integration and governance."""
    from deploy.pandas_probes import skip_pandas_probes

    skip_pandas_probes()  # every huiliu process: workers, runners, sinks, the API (~48 MB each)


try:  # the stack commands live beside the stack code
    from deploy.stack_cli import stack_app

    app.add_typer(stack_app, name="stack", help="Start, stop and inspect the local stack.")
except ImportError:  # pragma: no cover - only while the stack module is absent
    pass


# Feature packages add their own commands: each module below may define `register(app)`.
for _module in ("connectors.cli", "deploy.ops_cli"):
    try:
        __import__(_module, fromlist=["register"]).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:  # the module exists but something it imports is missing: say so
            raise


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


@pipeline_app.command("source")
def pipeline_source(
    file: str = typer.Argument(..., help="pipeline YAML"),
    drain: bool = typer.Option(False, help="stop once no row is left instead of polling on"),
    log_level: str = "info",
) -> None:
    """Run the pipeline's source stage (captures rows into the source topic)."""
    from connectors.pipeline import PipelineSpec, build_source

    _logging(log_level)
    source = build_source(PipelineSpec.load(file), get_settings())
    if drain:
        console.print(f"published {source.drain()} change events")
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    source.run(stop)


@pipeline_app.command("runner")
def pipeline_runner(file: str = typer.Argument(..., help="pipeline YAML"), log_level: str = "warn") -> None:
    """Run the pipeline's runner stage (transforms + quality rules; clean and quarantine topics)."""
    from connectors.pipeline import PipelineSpec, build_stage, prepare_topics, stage_documents

    _logging("warning" if log_level == "warn" else log_level)
    settings = get_settings()
    spec = PipelineSpec.load(file)
    prepare_topics(spec, settings)
    if spec.runner.kind == "faust":  # this process is the Faust worker (what runner.faust starts)
        from streams.runner_task import LeanRunnerConfig, run_faust_worker

        document = stage_documents(spec, settings)["runner"]
        config = {k: v for k, v in document.items() if k in LeanRunnerConfig.model_fields}
        run_faust_worker(LeanRunnerConfig.model_validate(config), settings, loglevel=log_level)
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    build_stage(spec, "runner", settings).run(stop)


@pipeline_app.command("sink")
def pipeline_sink(file: str = typer.Argument(..., help="pipeline YAML"), log_level: str = "info") -> None:
    """Run the pipeline's sink stage (clean topic -> the sink's store)."""
    from connectors.pipeline import PipelineSpec, build_sink, prepare_topics

    _logging(log_level)
    settings = get_settings()
    spec = PipelineSpec.load(file)
    prepare_topics(spec, settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    build_sink(spec, settings).run(stop)


@pipeline_app.command("run")
def pipeline_run(file: str = typer.Argument(..., help="pipeline YAML"), log_level: str = "info") -> None:
    """Run all three stages in this process, as the workers would after an API deploy (Ctrl-C stops)."""
    from connectors.pipeline import STAGES, PipelineSpec, build_stage, prepare_topics

    _logging(log_level)
    settings = get_settings()
    spec = PipelineSpec.load(file)
    prepare_topics(spec, settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    runtimes = {stage: build_stage(spec, stage, settings) for stage in reversed(STAGES)}  # sink first
    threads = [threading.Thread(target=rt.run, args=(stop,), name=f"{spec.name}-{st}") for st, rt in runtimes.items()]
    for t in threads:
        t.start()
    console.print(f"pipeline {spec.name}: {', '.join(runtimes)} running (runner {spec.runner.kind}); Ctrl-C stops")
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.5)
    stop.set()


@pipeline_app.command("faust-worker", hidden=True)
def pipeline_faust_worker(
    config: str = typer.Argument(..., help="runner config JSON (written by runner.faust)"),
    scope: str = typer.Option("", help="the connector's tenant: its quality metrics rows are kept there"),
) -> None:
    """The Faust worker process of a `runner.faust` stage."""
    import json
    from pathlib import Path

    from streams.runner_task import LeanRunnerConfig, run_faust_worker

    run_faust_worker(LeanRunnerConfig.model_validate(json.loads(Path(config).read_text())), get_settings(), scope=scope)


@app.command("api")
def api(
    host: str = typer.Option(None, help="default: HUILIU_API_HOST"),
    port: int = typer.Option(None, help="default: HUILIU_API_PORT"),
) -> None:
    """Serve the HTTP API (pipelines, connectors, jobs, schedules, alerts, users, audit, health, metrics)."""
    import uvicorn

    from api.app import create_app
    from deploy.control import engine_for
    from deploy.logs import configure_logging

    settings = get_settings()
    configure_logging(settings, stderr_level="WARNING")  # JSON lines in state_dir/logs/huiliu.jsonl
    engine_for(settings.resolved_control_db_url)  # migrates the control DB before the first request
    host, port = host or settings.api_host, port or settings.api_port
    address = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    key = "the HUILIU_API_KEY setting" if settings.api_key else str(settings.state_dir / "api_key")
    console.print(f"Huiliu API on {address}  (docs: {address}/docs, liveness: {address}/livez)", soft_wrap=True)
    console.print(f"web console: {address}/console/", soft_wrap=True)
    console.print(f"operator key: {key} (send it as X-API-Key)", soft_wrap=True)
    console.print("deployed pipelines and connectors run in workers: start `huiliu worker`", soft_wrap=True)
    options = dict(
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(settings.api_trusted_proxies),
        forwarded_allow_ips=",".join(settings.api_trusted_proxies) or None,
    )
    if settings.api_workers > 1:  # each worker builds the app from the same HUILIU_* settings
        console.print(f"{settings.api_workers} API worker processes", soft_wrap=True)
        uvicorn.run("api.app:create_app", factory=True, workers=settings.api_workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)


@app.command("registry")
def registry(port: int = typer.Option(None, help="default: the port of HUILIU_SCHEMA_REGISTRY_URL")) -> None:
    """Serve the Confluent-compatible schema registry."""
    settings = get_settings()
    port = port or settings.port_of(settings.schema_registry_url)
    settings.ensure_dirs()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "schemas.registry",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(settings.state_dir / "data" / "registry"),
        ],
        check=True,
    )


servers_app = typer.Typer(help="Prepare the database servers Huiliu captures from.", no_args_is_help=True)
app.add_typer(servers_app, name="servers")


@servers_app.command("prepare")
def servers_prepare() -> None:
    """PostgreSQL wal_level=logical and MariaDB ROW binlog for log-based CDC (restarts only if needed);
    Chromium and CJK fonts for the console's browser tests (apt-get, when /usr/bin/chromium is missing)."""
    from deploy.servers import prepare

    for server, restarted in prepare().items():
        done = "installed" if server == "chromium" else "configured and restarted"
        console.print(f"{server}: {done if restarted else 'ready'}")


db_app = typer.Typer(help="The control database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Migrate the control DB (HUILIU_CONTROL_DB_URL) to the newest revision; keeps its data."""
    from sqlalchemy import create_engine

    from deploy.control import private_sqlite_file
    from deploy.migrate import upgrade

    settings = get_settings()
    settings.ensure_dirs()
    private_sqlite_file(settings.resolved_control_db_url)  # a new SQLite file is created 0600
    before, after = upgrade(create_engine(settings.resolved_control_db_url), revision)
    console.print(f"control DB: {before or 'empty'} -> {after}" if before != after else f"control DB at {after}")


@db_app.command("current")
def db_current() -> None:
    """The control DB's revision and the newest one this release knows."""
    from pathlib import Path

    from sqlalchemy import create_engine, make_url

    from deploy.migrate import current, head

    url = make_url(get_settings().resolved_control_db_url)
    missing = url.get_backend_name() == "sqlite" and not Path(url.database or "").exists()
    now = None if missing else current(create_engine(url))
    console.print(f"control DB at {now or 'nothing (not created yet)'}; newest {head()}")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", "--message", help="what the migration does")) -> None:
    """(Developers) Write a migration for table definitions the migrations do not build yet."""
    from sqlalchemy import create_engine

    from deploy.migrate import revision

    console.print(revision(create_engine(get_settings().resolved_control_db_url), message))


@db_app.command("history")
def db_history() -> None:
    """Every migration, oldest first."""
    from deploy.migrate import history

    for revision, message in history():
        console.print(f"{revision}  {message}")


@app.command("demo")
def demo(
    rows: int = typer.Option(2000, help="people in the demo population register"),
    keep_running: bool = typer.Option(False, help="leave the stack and API running afterwards"),
) -> None:
    """Start the stack, seed a population register, run the pipeline and print a summary."""
    from api.console.demo_login import demo_login
    from api.demo import run_demo

    settings = get_settings()
    run_demo(settings, rows, console, keep_running)
    user, password, where = demo_login(settings)
    console.print(
        f"Web console: `huiliu api`, then open http://{settings.api_host}:{settings.api_port}/console/ and sign in "
        f"as {user} with password {password} (kept in {where})",
        soft_wrap=True,
    )


if __name__ == "__main__":
    app()
