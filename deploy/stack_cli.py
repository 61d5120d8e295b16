"""`huiliu stack up | down | status`: the local single-machine stack."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from deploy.settings import get_settings
from deploy.stack import MANAGED, Stack, StackError

stack_app = typer.Typer(
    help="Run the local stack: Kafka-compatible broker (tansu), schema registry, ClickHouse.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

_ONLY_HELP = f"Only these components (repeatable): {', '.join(MANAGED)}."


@stack_app.command("up")
def up(
    only: list[str] | None = typer.Option(None, "--only", "-c", help=_ONLY_HELP),
    timeout: float = typer.Option(60.0, help="Seconds each component may take to answer."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a live progress display."),
) -> None:
    """Start the stack (components already answering are left alone) and wait until it answers."""
    settings = get_settings()
    try:
        results = Stack(settings, ready_timeout=timeout).up(progress=progress, only=only)
    except StackError as exc:
        _err.print("[bold red]stack up failed[/]")
        _err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    for st in results:
        _out.print(f"[green]up[/] {st.name:<11} {st.address:<28} {st.version or ''}", highlight=False)
    from deploy.control import engine_for
    from deploy.migrate import current

    revision = current(engine_for(settings.resolved_control_db_url))  # engine_for migrates it
    _out.print(f"[green]up[/] {'control DB':<11} revision {revision}", highlight=False)
    _out.print(f"state, data and logs under {settings.state_dir}", highlight=False)


@stack_app.command("down")
def down(
    only: list[str] | None = typer.Option(None, "--only", "-c", help=_ONLY_HELP),
    timeout: float = typer.Option(15.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Stop the stack's processes (SIGTERM, then SIGKILL after the timeout)."""
    try:
        outcome = Stack(get_settings(), stop_timeout=timeout).down(only=only)
    except StackError as exc:
        _err.print("[bold red]stack down failed[/]")
        _err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    for name, what in outcome.items():
        _out.print(f"{name:<11} {what}", highlight=False)


@stack_app.command("status")
def status() -> None:
    """Show each component (and the external PostgreSQL and Redis): address, up/down, version."""
    settings = get_settings()
    rows = Stack(settings).status()
    # Readable at 100 columns: long addresses and details wrap (folded), never cut with an ellipsis.
    table = Table(title="huiliu stack")
    table.add_column("component", style="bold", no_wrap=True)
    table.add_column("address", overflow="fold", min_width=22)
    table.add_column("state", no_wrap=True)
    table.add_column("version", overflow="fold", max_width=18)
    table.add_column("detail", overflow="fold", max_width=60)
    for st in rows:
        state = "[green]up[/]" if st.up else "[red]down[/]"
        address = st.address
        if st.name == "clickhouse":  # the native port, and the HTTP port clients and the web UI use
            host = st.address.rsplit(":", 1)[0].split("://")[-1].split("@")[-1] or "127.0.0.1"
            address = f"native {st.address}\nhttp {host}:{settings.clickhouse_http_port}"
        table.add_row(st.name, address, state, st.version or "", st.detail or "")
    _out.print(table)


if __name__ == "__main__":
    stack_app()
