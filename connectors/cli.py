"""`huiliu worker` and `huiliu connect-apply` (added to the main CLI through `register(app)`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        lease_seconds: float = typer.Option(15.0, help="task lease time: a dead worker's tasks move after this"),
        worker_id: str = typer.Option(None, help="default: host:pid:random"),
        max_attempts: int = typer.Option(6, help="consecutive failures before a task is FAILED"),
        log_level: str = "info",
    ) -> None:
        """Run connector tasks: claims its fair share through Redis leases, takes over dead workers' tasks."""
        import logging
        import signal
        import threading

        from connectors.worker import Worker
        from deploy.logs import configure_logging
        from deploy.settings import get_settings

        # The same JSON log as the API (state_dir/logs/huiliu.jsonl), so GET /logs finds task failures;
        # a task's lines carry its connector's tenant (connectors/task_runner.py).
        path = configure_logging(get_settings(), level=log_level.upper())
        logging.getLogger(__name__).info("worker logging to %s", path)
        stop = threading.Event()
        # SIGTERM stops gracefully: tasks stop and leases are released, so others take over at once
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        Worker(get_settings(), lease_seconds, worker_id, max_attempts).run(stop)

    @app.command("connect-apply")
    def connect_apply(
        file: str = typer.Argument(..., help="YAML or JSON: one {name, config, tenant?} document or a list"),
    ) -> None:
        """Validate connector documents and create or update them (what PUT /connectors/{name}/config does).

        `tenant` makes (or moves) the connector that tenant's, checked in its scope; without it a new
        connector has no tenant (only all-tenant callers see it) and an existing one keeps its own."""
        from pathlib import Path

        import yaml

        from connectors.secrets import mask
        from connectors.store import KEEP, ConnectorStore
        from connectors.validation import validate
        from deploy.settings import get_settings

        settings = get_settings()
        docs = yaml.safe_load(Path(file).read_text(encoding="utf-8"))  # JSON is YAML too
        docs = docs if isinstance(docs, list) else [docs]
        store, failed = ConnectorStore.for_settings(settings), False
        for doc in docs:
            name, config, tenant = (doc or {}).get("name"), (doc or {}).get("config"), (doc or {}).get("tenant")
            spec, errors = validate(name, config, settings, tenant=tenant)
            if spec is None:
                failed = True
                for e in errors:
                    typer.echo(f"{name}: {e.field}: {e.message}", err=True)
                continue
            created = store.upsert(spec, tenant=KEEP if tenant is None else tenant)
            typer.echo(f"{name}: {'created' if created else 'updated'} {mask(spec.config)}")
        raise typer.Exit(1 if failed else 0)
