"""Where a caller-given file path may point: inside the tenant's data root, never at server state.

Every path that comes from a request (job and schedule params, pipeline documents, import paths,
file connectors' local roots, SQLite URLs in source configs, key files, tail paths) goes through
`resolve_inside(root, given, param, settings)`: relative paths are taken from the root, symlinks
are followed and `..` collapsed (`Path.resolve`), and the result must lie inside the root and
outside the server's own state (every file directly in the state dir: control DB, key files,
api_key; and logs/, run/, backups/, diff/, the stack's data/, the HUILIU_CONFIG file, `path_deny`),
even when a root is misconfigured to include them. A refusal is a `PathRefused` naming the parameter; it never
says what (if anything) is at the path.

Roots: `<data_root>/<tenant>/` for a tenant's callers, the data root itself for superusers
(the operator key) -- `root_for(settings, tenant, superuser)`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


class PathRefused(ValueError):
    """A caller-given path (or URL) outside the allowed root; `param` names where it was given."""

    def __init__(self, param: str, reason: str):
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


def data_root(settings) -> Path:
    return Path(settings.resolved_data_root)


def root_for(settings, tenant: str | None, superuser: bool = False) -> Path:
    """The directory a caller's paths must stay in (created if missing)."""
    base = data_root(settings)
    if superuser:
        root = base
    elif tenant is None:
        raise PathRefused("tenant", "file paths need a tenant (the caller has none)")
    elif not TENANT_NAME.match(tenant) or tenant in (".", ".."):
        raise PathRefused("tenant", "tenant name cannot be used as a directory")
    else:
        root = base / tenant
    root.mkdir(mode=0o750, parents=True, exist_ok=True)  # the process's own user; no root needed
    return root


def root_of_principal(settings, principal) -> Path:
    return root_for(settings, getattr(principal, "tenant", None), bool(getattr(principal, "superuser", False)))


def denied(settings) -> list[Path]:
    """The server's own files: never reachable through a caller-given path."""
    state = Path(settings.state_dir).resolve()
    out = [
        state / "control.db",
        state / "jwt_signing_key",
        state / "connector_secrets.key",
        state / "api_key",
        state / "logs",
        state / "run",
        state / "backups",
        state / "diff",
    ]
    if not data_root(settings).resolve().is_relative_to(state / "data"):
        out.append(state / "data")  # the local stack's servers' own files (configs, users)
    if os.environ.get("HUILIU_CONFIG"):
        out.append(Path(os.environ["HUILIU_CONFIG"]).resolve())
    try:
        url = make_url(settings.resolved_control_db_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            out.append(Path(url.database).resolve())
    except ArgumentError:
        pass
    for extra in getattr(settings, "path_deny", None) or []:
        out.append(Path(extra).resolve())
    return out


def _is_denied(path: Path, settings) -> bool:
    if path.parent == Path(settings.state_dir).resolve():
        return True  # every file directly in the state dir is the server's (keys, api_key, DBs)
    for d in denied(settings):
        # the control DB's -wal/-shm/-journal companions count as the DB itself
        if path == d or path.is_relative_to(d) or (path.parent == d.parent and path.name.startswith(d.name + "-")):
            return True
    return False


def resolve_inside(root: Path, given: str, param: str, settings=None) -> Path:
    """`given` (relative to `root`, or absolute) resolved after symlinks; refused unless inside
    `root` and, with `settings`, outside the server's state files."""
    if not isinstance(given, str) or not given.strip():
        raise PathRefused(param, "must be a non-empty path")
    if "\x00" in given:
        raise PathRefused(param, "must not contain NUL")
    root = Path(root).resolve()
    candidate = Path(os.path.expanduser(given)) if given.startswith("~") else Path(given)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise PathRefused(param, "must be inside the caller's data root (relative paths are taken from it)")
    if settings is not None and _is_denied(resolved, settings):
        raise PathRefused(param, "names a file of the server's own state")
    return resolved


def check_pattern(pattern: str, param: str) -> None:
    """A glob below a root: relative, without `..`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise PathRefused(param, "must be a non-empty glob")
    if pattern.startswith(("/", "~")) or "\\" in pattern or ".." in Path(pattern).parts or "\x00" in pattern:
        raise PathRefused(param, "must be a relative glob without '..'")


def check_sqlite_url(url: str, root: Path, param: str, settings=None) -> str | None:
    """For a SQLite URL: its file must be inside `root` (absolute path, no URI filenames);
    returns None for other URLs (not SQLite), the resolved file path otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:":
        return database or ":memory:"
    if database.startswith("file:") or str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        raise PathRefused(param, "SQLite URI filenames are not allowed; use sqlite:////absolute/path.db")
    if not Path(database).is_absolute():
        raise PathRefused(param, "SQLite file must be an absolute path inside the caller's data root")
    return str(resolve_inside(root, database, param, settings))
