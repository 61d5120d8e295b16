"""Users, sign-in and credentials for HTTP tests against a running API."""

from __future__ import annotations

import httpx

PASSWORD = "correct-horse-9"


def op(key: str) -> dict:
    return {"X-API-Key": key}


def make_user(base, key, username, roles=(), tenant="t1", **extra) -> None:
    r = httpx.post(
        base + "/users",
        headers=op(key),
        json={"username": username, "password": PASSWORD, "tenant": tenant, "roles": list(roles), **extra},
    )
    assert r.status_code == 201, r.text


def login(base, username, password=PASSWORD) -> dict:
    r = httpx.post(base + "/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def start_keyed_api(settings):
    """A real API process on the settings' port (its output in a file, never an unread pipe):
    (process, base url, operator key)."""
    from api.auth import api_key_for
    from tests.api_process import start_api

    proc, base = start_api(settings)
    return proc, base, api_key_for(settings)
