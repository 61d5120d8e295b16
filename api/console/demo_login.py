"""The demo's console sign-in: an admin of the default tenant for `huiliu demo` to print.

    name, password, where = demo_login(settings)

Creates user `demo-admin` (role admin, tenant = the `default_tenant` setting) with a random
password kept in `<state_dir>/console_demo_password` (0600) on the first demo run; later runs
read it back (and set it again when the file was removed). Only the demo calls this.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from api.identity.schemas import UserIn
from api.identity.store import store_for
from deploy.settings import Settings

USER = "demo-admin"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def demo_login(settings: Settings) -> tuple[str, str, Path]:
    settings.ensure_dirs()
    where = settings.state_dir / "console_demo_password"
    store = store_for(settings.resolved_control_db_url)
    user = store.user(USER)
    if user is not None and where.exists():
        return USER, where.read_text().strip(), where
    password = "hl-" + secrets.token_urlsafe(12)
    if user is None:
        body = UserIn(username=USER, password=password, roles=["admin"], display_name="Demo admin")
        tenant = settings.default_tenant or "default"
        store.create_user(USER, password, tenant=tenant, **body.model_dump(exclude={"username", "password", "tenant"}))
    else:
        store.update_user(USER, password=password)
    _write_private(where, password)
    return USER, password, where
