"""Every route in the OpenAPI document, whoever wrote it, is authenticated and authorised.

For each operation: no credential -> 401, a bad credential -> 401, and a valid user (and an API
key) holding no permission -> 403. Path parameters get dummy values: the check must come before
the handler's own 404, which it does because `require(...)` is a dependency.
Routes that are deliberately open, or open to any signed-in caller, are listed here explicitly.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.identity import login, make_user, op, start_keyed_api

# /docs, /redoc, /openapi.json are not in the document but are open too
OPEN = {("POST", "/auth/token"), ("GET", "/livez")}
ANY_SIGNED_IN = {("GET", "/auth/me"), ("GET", "/workbench")}  # the workbench: each section by permission
# One's own jobs (the message centre is personal): whoever started a job follows and cancels it.
ANY_SIGNED_IN |= {("GET", "/jobs"), ("GET", "/jobs/{job_id}"), ("POST", "/jobs/{job_id}/cancel")}
# A published data service is called with an application's key (X-App-Key), not a platform
# credential: a user or API key without one is refused as unauthenticated (401), not forbidden.
APP_KEY = {
    ("GET", "/services/{name}/v{version}"),
    ("GET", "/services/{name}/v{version}/download"),
    ("POST", "/services/{name}/v{version}/downloads"),
    ("GET", "/service-downloads/{download_id}"),
    ("GET", "/service-downloads/{download_id}/file"),  # the signed link is the credential
    ("GET", "/services/{name}/v{version}/stream"),
}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def walk(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    make_user(base, key, "walk-nobody", roles=[], tenant="walk")
    user = login(base, "walk-nobody")
    created = httpx.post(base + "/api-keys", headers=op(key), json={"name": "walk-nobody-key", "tenant": "walk"})
    bot = {"X-API-Key": created.json()["key"]}
    schema = httpx.get(base + "/openapi.json").json()
    yield base, schema, user, bot
    proc.terminate()
    proc.wait(10)


def operations(schema: dict) -> list[tuple[str, str, str]]:
    """(METHOD, template, concrete path with dummy parameters)."""
    found = []
    for template, item in schema["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            path = template
            for p in item[method].get("parameters", []) + item.get("parameters", []):
                if p.get("in") == "path":
                    dummy = "1" if p.get("schema", {}).get("type") == "integer" else "walk-dummy"
                    path = path.replace("{" + p["name"] + "}", dummy)
            found.append((method.upper(), template, path))
    return found


def test_the_walk_covers_every_router(walk):
    _, schema, _, _ = walk
    templates = {t for _, t, _ in operations(schema)}
    for expected in ("/pipelines", "/pipelines/{name}/graph", "/components", "/users", "/audit", "/health"):
        assert expected in templates
    assert len(operations(schema)) >= 30


def test_every_route_refuses_callers_without_credentials(walk):
    base, schema, _, _ = walk
    wrong = []
    for method, template, path in operations(schema):
        if (method, template) in OPEN:
            continue
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "hlk_nope_nope"}):
            status = httpx.request(method, base + path, headers=headers, timeout=30).status_code
            if status != 401:
                wrong.append(f"{method} {template} with {sorted(headers) or 'nothing'}: {status}")
    assert not wrong, "routes not answering 401 without a valid credential:\n" + "\n".join(wrong)


def test_every_route_refuses_principals_without_the_permission(walk):
    base, schema, user, bot = walk
    wrong = []
    for method, template, path in operations(schema):
        if (method, template) in OPEN | ANY_SIGNED_IN:
            continue
        for who, headers in (("user", user), ("api key", bot)):
            status = httpx.request(method, base + path, headers=headers, timeout=30).status_code
            if status != (401 if (method, template) in APP_KEY else 403):
                wrong.append(f"{method} {template} as a {who} without permissions: {status}")
    assert not wrong, "routes not answering 403 without the permission:\n" + "\n".join(wrong)


def test_open_routes_are_really_open(walk):
    base, _, user, _ = walk
    assert httpx.get(base + "/openapi.json").status_code == 200
    assert httpx.get(base + "/docs").status_code == 200
    assert httpx.post(base + "/auth/token", data={"username": "x", "password": "y"}).status_code == 401
    assert httpx.get(base + "/auth/me", headers=user).json()["permissions"] == []
