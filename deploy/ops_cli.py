"""Operations commands added to `huiliu`: backup and restore (ENG-03)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_cmd(
        to: Path = typer.Option(..., "--to", help="an empty or new directory"),
        include_keys: bool = typer.Option(
            False, "--include-keys", help="also copy connector_secrets.key (keep such a backup as safe as the key)"
        ),
    ) -> None:
        """Copy the control DB and the schema registry's store, with a manifest (checksums, versions).
        Files are 0600; with HUILIU_BACKUP_PASSPHRASE set they are encrypted."""
        from deploy.backup import BackupError, backup
        from deploy.settings import get_settings

        try:
            manifest = backup(get_settings(), to, include_keys=include_keys)
        except BackupError as exc:
            typer.echo(f"backup failed: {exc}", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps({k: {"file": v["file"], "sha256": v["sha256"]} for k, v in manifest["items"].items()}))
        typer.echo(f"backup written to {to}")

    @app.command("restore")
    def restore_cmd(
        src: Path = typer.Option(..., "--from", help="a directory written by `huiliu backup`"),
        force: bool = typer.Option(False, "--force", help="overwrite a non-empty target"),
    ) -> None:
        """Restore the control DB and the registry's store (stop the API, pipelines and registry first)."""
        from deploy.backup import BackupError, restore
        from deploy.settings import get_settings

        try:
            manifest = restore(get_settings(), src, force)
        except BackupError as exc:
            typer.echo(f"restore refused: {exc}", err=True)
            raise typer.Exit(1)
        typer.echo(f"restored {', '.join(manifest['items'])} from backup of {manifest['created_at']}")
        if "secrets_key" not in manifest["items"]:
            typer.echo("the backup holds no connector_secrets.key: put the original key in the state directory")
