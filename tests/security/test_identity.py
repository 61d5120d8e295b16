"""Sign-in and identity attacks: lock-out as a weapon, answers that tell accounts apart, tokens that
outlive a password change, roles of another tenant, user managers against stronger accounts,
password policy, API key expiry, security headers.

Other source addresses are real: the client binds 127.0.0.2 / 127.0.0.3 (Linux routes all of
127/8 to the loopback), so the API sees a different client address.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from tests.security.world import PASSWORD, RUN, A, B

pytestmark = pytest.mark.security

NEW_PASSWORD = "Basalt-Heron-5520-Quill"


def _from(world, address: str) -> httpx.Client:
    """A client whose requests come from `address` (a loopback address other than 127.0.0.1)."""
    return httpx.Client(base_url=world.base, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _user(world, username: str, tenant: str = A, roles=("viewer",)) -> None:
    r = world.op(
        "POST", "/users", json={"username": username, "password": PASSWORD, "tenant": tenant, "roles": list(roles)}
    )
    assert r.status_code == 201, r.text


def _token(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password})


def _bearer(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_failed_sign_ins_from_one_source_do_not_lock_the_owner_out(world):
    """Six wrong passwords from 127.0.0.1 (an attacker) must not stop the owner at 127.0.0.2."""
    name = f"{A}-lock1"
    _user(world, name)
    codes = [_token(world.client, name, f"Wrong-Guess-{i}-xyz").status_code for i in range(6)]
    assert all(c in (401, 429) for c in codes), codes
    with _from(world, "127.0.0.2") as owner:
        r = _token(owner, name)
        assert r.status_code == 200, f"the owner, from another address, after {codes}: {r.status_code} {r.text}"
        assert owner.get("/auth/me", headers=_bearer(r)).json()["name"] == name


def test_throttled_answers_do_not_tell_known_from_unknown_accounts(world):
    """From one source: the same answers, step by step, for an account that exists and one that
    does not -- while failing, and once throttled (even with the right password). The last pair
    must come within the first back-off window (1 s after the 5th failure); on a machine too slow
    for that the round is repeated with fresh names."""
    for attempt in range(3):
        known, unknown = f"{A}-lock2-{attempt}", f"{A}-nobody-{RUN}-{attempt}"
        _user(world, known)
        seq_known, seq_unknown = [], []
        with _from(world, f"127.0.0.{3 + attempt}") as attacker:
            for i in range(7):  # in lock-step, so both sit in the same back-off window at the end
                seq_known.append(_token(attacker, known, f"Wrong-Guess-{i}-xyz"))
                if i == 4:
                    fifth = time.monotonic()
                seq_unknown.append(_token(attacker, unknown, f"Wrong-Guess-{i}-xyz"))
            right_known, any_unknown = _token(attacker, known), _token(attacker, unknown)
        if time.monotonic() - fifth < 0.9:
            break
    a = [(r.status_code, r.json()) for r in seq_known]
    b = [(r.status_code, r.json()) for r in seq_unknown]
    assert a == b, f"known vs unknown account, 7 wrong passwords:\n{a}\n{b}"
    assert (right_known.status_code, right_known.json()) == (any_unknown.status_code, any_unknown.json()), (
        f"throttled known account with the right password vs unknown account: "
        f"{right_known.status_code} {right_known.text} / {any_unknown.status_code} {any_unknown.text}"
    )


def test_a_token_issued_before_a_password_change_stops_working(world):
    name = f"{A}-rotate"
    _user(world, name)
    old = _bearer(_token(world.client, name))
    assert world.call(old, "GET", "/auth/me").status_code == 200
    r = world.as_a("admin", "PATCH", f"/users/{name}", json={"password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    assert world.call(old, "GET", "/auth/me").status_code == 401, "a token from before the password change still works"
    assert world.call(_bearer(_token(world.client, name, NEW_PASSWORD)), "GET", "/auth/me").status_code == 200


def test_a_token_does_not_come_back_when_a_disabled_user_is_enabled_again(world):
    name = f"{A}-leaver"
    _user(world, name)
    old = _bearer(_token(world.client, name))
    assert world.as_a("admin", "PATCH", f"/users/{name}", json={"disabled": True}).status_code == 200
    assert world.call(old, "GET", "/auth/me").status_code == 401
    assert world.as_a("admin", "PATCH", f"/users/{name}", json={"disabled": False}).status_code == 200
    assert world.call(old, "GET", "/auth/me").status_code == 401, "the token from before disabling works again"


def test_a_token_of_a_deleted_user_does_not_open_a_new_account_of_the_same_name(world):
    """Tenant a's user is deleted and the name re-used in tenant b (as an admin): the old token of
    tenant a's user must not become tenant b's admin."""
    name = f"{A}-reborn"
    _user(world, name)
    old = _bearer(_token(world.client, name))
    assert world.op("DELETE", f"/users/{name}").status_code == 204
    _user(world, name, tenant=B, roles=("admin",))
    r = world.call(old, "GET", "/auth/me")
    assert r.status_code == 401, f"the deleted user's token signs in as the new account: {r.text}"


def test_tenant_b_admin_cannot_change_or_hand_out_tenant_a_custom_role(world):
    role, badmin = world.a.objects["role"], world.b.headers["admin"]
    before = world.as_a("admin", "GET", f"/roles/{role}").json()
    problems = []
    for method, path, body in (
        ("GET", f"/roles/{role}", None),
        ("PATCH", f"/roles/{role}", {"permissions": ["*"], "description": "taken over"}),
        ("DELETE", f"/roles/{role}", None),
    ):
        r = world.call(badmin, method, path, json=body)
        if r.status_code not in (403, 404):
            problems.append(f"{method} {path} as tenant b's admin: {r.status_code} {r.text[:200]}")
    # handing tenant a's role to tenant b's principals
    for method, path, body in (
        ("POST", "/users", {"username": f"{B}-withrole", "password": PASSWORD, "roles": [role]}),
        ("PATCH", f"/users/{B}-viewer", {"roles": ["viewer", role]}),
        ("POST", "/groups", {"name": f"{B}-withrole", "roles": [role]}),
        ("POST", "/api-keys", {"name": f"{B}-withrole", "roles": [role]}),
    ):
        r = world.call(badmin, method, path, json=body)
        if r.status_code not in (403, 404, 422):
            problems.append(f"{method} {path} with tenant a's role as tenant b's admin: {r.status_code} {r.text[:200]}")
    after = world.as_a("admin", "GET", f"/roles/{role}").json()
    if after != before:
        problems.append(f"tenant a's role changed: {before} -> {after}")
        world.repair(["role"])
    world.op("PATCH", f"/users/{B}-viewer", json={"roles": ["viewer"]})
    assert not problems, "\n".join(problems)


def test_user_managers_cannot_act_on_more_privileged_accounts(world):
    """Tenant b's user manager (users:manage only) against tenant b's admin and developer."""
    um, problems = world.b.headers["usermgr"], []
    for role in ("admin", "developer"):
        target = f"{B}-strong-{role}"
        _user(world, target, tenant=B, roles=(role,))
        for method, body in (
            ("PATCH", {"password": NEW_PASSWORD}),
            ("PATCH", {"disabled": True}),
            ("PATCH", {"roles": []}),
            ("PATCH", {"unlock": True}),
            ("DELETE", None),
        ):
            r = world.call(um, method, f"/users/{target}", json=body)
            if r.status_code != 403:
                problems.append(f"{method} /users/{target} {body} as tenant b's user manager: {r.status_code}")
        if world.op("GET", f"/users/{target}").status_code == 404:
            problems.append(f"tenant b's user manager deleted {target}")
    # the user manager may still manage an account holding nothing more than it does
    plain = f"{B}-plain"
    _user(world, plain, tenant=B, roles=())
    r = world.call(um, "PATCH", f"/users/{plain}", json={"display_name": "managed"})
    assert r.status_code == 200, f"the user manager cannot manage a plain user: {r.status_code} {r.text}"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "password,why",
    [("Short-1a!", "9 characters"), ("password123", "common"), ("qwertyuiop", "common"), (" " * 12, "whitespace")],
)
def test_password_policy(world, password, why):
    r = world.op("POST", "/users", json={"username": f"{B}-weak", "password": password, "tenant": B})
    assert r.status_code == 422, f"{why} password accepted: {r.status_code}"
    assert password.strip() == "" or password not in r.text
    r = world.op("PATCH", f"/users/{B}-viewer", json={"password": password})
    assert r.status_code == 422, f"{why} password accepted as a new password: {r.status_code}"


def test_an_expired_api_key_stops_working(world):
    r = world.op("POST", "/api-keys", json={"name": f"{B}-expiring", "tenant": B, "roles": ["viewer"]})
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["id"]
    assert world.call({"X-API-Key": key}, "GET", "/auth/me").status_code == 200
    with sqlite3.connect(world.settings.state_dir / "control.db") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(identity_api_keys)")}
        assert "expires_at" in columns, "API keys have no expiry (identity_api_keys.expires_at)"
        db.execute("UPDATE identity_api_keys SET expires_at = ? WHERE id = ?", ("2020-01-01T00:00:00+00:00", key_id))
    assert world.call({"X-API-Key": key}, "GET", "/auth/me").status_code == 401, "an expired API key still works"


def test_security_headers_on_every_kind_of_answer(world):
    problems = []
    answers = {
        "200": world.call(world.b.headers["admin"], "GET", "/pipelines"),
        "401": world.client.get("/pipelines"),
        "404": world.call(world.b.headers["admin"], "GET", f"/pipelines/{world.a.objects['pipeline']}"),
        "token": world.client.post("/auth/token", data={"username": f"{B}-viewer", "password": PASSWORD}),
    }
    for what, r in answers.items():
        h = r.headers
        if h.get("x-content-type-options") != "nosniff":
            problems.append(f"{what}: X-Content-Type-Options is {h.get('x-content-type-options')!r}")
        if h.get("x-frame-options", "").upper() != "DENY" and "frame-ancestors 'none'" not in h.get(
            "content-security-policy", ""
        ):
            problems.append(f"{what}: framing not refused (X-Frame-Options / CSP frame-ancestors)")
        if "no-store" not in h.get("cache-control", ""):
            problems.append(f"{what}: Cache-Control is {h.get('cache-control')!r}, not no-store")
    assert not problems, "\n".join(problems)


def test_secrets_are_sealed_at_rest(world):
    """Tenant a's secrets (pipeline URL password, connector password, SMTP password) are not in the
    control DB's files in plain text."""
    state, found = world.settings.state_dir, []
    for f in state.glob("control.db*"):
        data = f.read_bytes()
        for label, secret in world.canaries.items():
            if label != "user password" and secret.encode() in data:
                found.append(f"{label} in {f.name}")
    assert not found, "secrets stored in plain text: " + ", ".join(found)


def test_a_masked_secret_is_kept_only_while_its_endpoint_is_unchanged(world):
    """Tenant a's developer sends back a masked config pointing elsewhere: the stored secret must
    not follow it to the new host (refused, or the masked value is not replaced)."""
    dev, problems = world.a.headers["developer"], []
    name = world.a.objects["pipeline"]
    current = world.call(dev, "GET", f"/pipelines/{name}")
    doc = current.json()["document"]
    assert world.canaries["pipeline password"] not in current.text
    doc["source"]["config"]["url"] = doc["source"]["config"]["url"].replace("db.example", "evil.example")
    r = world.call(dev, "PUT", f"/pipelines/{name}", json=doc, headers={"If-Match": f'"{current.json()["version"]}"'})
    if 200 <= r.status_code < 300:
        problems.append("pipeline: a masked password was kept for a new host (evil.example)")
        world.call(
            dev, "PUT", f"/pipelines/{name}", json=world.a_pipeline_document, params={"version": r.json()["version"]}
        )
    conn = world.a.objects["connector"]
    config = world.call(dev, "GET", f"/connectors/{conn}/config").json()
    config["store"]["host"] = "evil.example"
    r = world.call(dev, "PUT", f"/connectors/{conn}/config", json=config)
    if 200 <= r.status_code < 300:
        problems.append("connector: a masked store password was kept for a new host (evil.example)")
        world.call(dev, "PUT", f"/connectors/{conn}/config", json=world.a_connector_config)
    aop, rule = world.a.headers["operator"], world.a.objects["rule"]
    shown = world.call(aop, "GET", f"/alerts/rules/{rule}").json()["channel"]
    assert shown["password"] != world.canaries["smtp password"]
    r = world.call(aop, "PATCH", f"/alerts/rules/{rule}", json={"channel": {**shown, "smtp_host": "evil.example"}})
    if 200 <= r.status_code < 300:
        problems.append("alert rule: a masked SMTP password was accepted for a new host (evil.example)")
        original = {**shown, "password": world.canaries["smtp password"]}
        world.call(aop, "PATCH", f"/alerts/rules/{rule}", json={"channel": original})
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("who", ["admin", "usermgr", "apikey"])
def test_tenant_b_cannot_grant_itself_tenant_a_or_superuser(world, who):
    auth, problems = world.b.headers[who], []
    for method, path, body in (
        ("POST", "/users", {"username": f"{B}-{who}-wide", "password": PASSWORD, "tenant": B, "tenants": [A]}),
        ("POST", "/users", {"username": f"{B}-{who}-all", "password": PASSWORD, "tenant": B, "tenants": ["*"]}),
        ("POST", "/users", {"username": f"{B}-{who}-su", "password": PASSWORD, "tenant": B, "superuser": True}),
        ("PATCH", f"/users/{B}-viewer", {"tenants": [A]}),
        ("PATCH", f"/users/{B}-viewer", {"tenants": ["*"]}),
        ("POST", "/api-keys", {"name": f"{B}-{who}-key-a", "tenant": A, "roles": []}),
    ):
        r = world.call(auth, method, path, json=body)
        if r.status_code not in (403, 422):
            problems.append(f"{method} {path} {body} as tenant b's {who}: {r.status_code} {r.text[:200]}")
    me = world.op("GET", f"/users/{B}-viewer").json()
    if me.get("tenants"):
        problems.append(f"tenant b's viewer now sees tenants {me['tenants']}")
        world.op("PATCH", f"/users/{B}-viewer", json={"tenants": []})
    assert not problems, "\n".join(problems)
