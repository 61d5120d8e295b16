"""Authentication, users and roles, API keys, lock-out and the audit log, over HTTP against a real
uvicorn process (the same way tests/test_api.py starts it)."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.api_process import own_state_settings  # noqa: F401 - a fixture: overrides stack_settings
from tests.support.identity import PASSWORD, login, make_user, op, start_keyed_api


@pytest.fixture(scope="module")
def api(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    yield base, key
    proc.terminate()
    proc.wait(10)


def test_login_gives_a_short_lived_jwt_that_carries_the_users_permissions(api):
    base, key = api
    make_user(base, key, "sec-dev", roles=["developer"])
    headers = login(base, "sec-dev")
    me = httpx.get(base + "/auth/me", headers=headers).json()
    assert me["name"] == "sec-dev" and me["kind"] == "user" and me["tenant"] == "t1"
    assert "pipeline:edit" in me["permissions"] and "users:manage" not in me["permissions"]
    assert httpx.get(base + "/users", headers=headers).status_code == 403
    token = httpx.post(base + "/auth/token", data={"username": "sec-dev", "password": PASSWORD}).json()
    assert token["token_type"] == "bearer" and 0 < token["expires_in"] <= 3600
    tampered = headers["Authorization"][:-3] + "abc"
    assert httpx.get(base + "/auth/me", headers={"Authorization": tampered}).status_code == 401


def test_the_signing_key_is_private(api, stack_settings):
    assert (stack_settings.state_dir / "jwt_signing_key").stat().st_mode & 0o077 == 0


def test_wrong_password_and_unknown_user_look_the_same(api):
    base, key = api
    make_user(base, key, "sec-same")
    a = httpx.post(base + "/auth/token", data={"username": "sec-same", "password": "nope-nope-1"})
    b = httpx.post(base + "/auth/token", data={"username": "sec-nobody", "password": "nope-nope-1"})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()


def test_failed_sign_ins_slow_down_the_source_without_locking_the_account(api):
    """The back-off is per (source, typed name), known or not: the 429 tells nothing about the
    account, the account itself is never locked, and an administrator can clear it."""
    base, key = api
    make_user(base, key, "sec-locked")
    answers = {}
    for name in ("sec-locked", "sec-no-such-user"):
        codes = [
            httpx.post(base + "/auth/token", data={"username": name, "password": "bad-guess-1"}).status_code
            for _ in range(5)
        ]
        assert codes == [401] * 5, (name, codes)
        # Now this source waits, even with the right password; the answer is the same for a name nobody has.
        answers[name] = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD})
    r = answers["sec-locked"]
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert answers["sec-no-such-user"].status_code == 429 and answers["sec-no-such-user"].json() == r.json()
    assert httpx.patch(base + "/users/sec-locked", headers=op(key), json={"unlock": True}).status_code == 200
    login(base, "sec-locked")


def test_disabled_users_lose_access_at_once(api):
    base, key = api
    make_user(base, key, "sec-leaver", roles=["viewer"])
    headers = login(base, "sec-leaver")
    assert httpx.get(base + "/pipelines", headers=headers).status_code == 200
    httpx.patch(base + "/users/sec-leaver", headers=op(key), json={"disabled": True})
    assert httpx.get(base + "/pipelines", headers=headers).status_code == 401


def test_api_key_is_shown_once_stored_hashed_and_revocable(api, stack_settings):
    base, key = api
    r = httpx.post(base + "/api-keys", headers=op(key), json={"name": "etl-bot", "tenant": "t1", "roles": ["viewer"]})
    assert r.status_code == 201
    created = r.json()
    secret = created["key"]
    bot = {"X-API-Key": secret}
    assert httpx.get(base + "/pipelines", headers=bot).status_code == 200
    assert httpx.get(base + "/pipelines", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert httpx.post(base + "/pipelines", headers=bot, json={}).status_code == 403  # viewer cannot create
    listed = httpx.get(base + "/api-keys", headers=op(key)).text
    assert secret not in listed and secret.split("_")[-1] not in listed
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:
        stored = db.execute("SELECT secret_hash FROM identity_api_keys WHERE id = ?", (created["id"],)).fetchone()[0]
    assert secret.split("_", 2)[2] not in stored
    assert httpx.delete(base + f"/api-keys/{created['id']}", headers=op(key)).status_code == 204
    assert httpx.get(base + "/pipelines", headers=bot).status_code == 401


def test_passwords_never_come_back_and_are_stored_as_argon2(api, stack_settings):
    base, key = api
    r = httpx.post(base + "/users", headers=op(key), json={"username": "sec-echo", "password": "tiny"})
    assert r.status_code == 422 and "tiny" not in r.text
    r = httpx.post(base + "/users", headers=op(key), json={"username": "sec-echo", "password": 12345678901})
    assert r.status_code == 422 and "12345678901" not in r.text
    make_user(base, key, "sec-echo")
    for path in ("/users", "/users/sec-echo"):
        assert PASSWORD not in httpx.get(base + path, headers=op(key)).text
    assert "password" not in httpx.get(base + "/users/sec-echo", headers=op(key)).json()
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:
        stored = db.execute("SELECT password_hash FROM identity_users WHERE username='sec-echo'").fetchone()[0]
    assert stored.startswith("$argon2id$")


def test_user_managers_cannot_grant_more_than_they_hold_or_reach_other_tenants(api):
    base, key = api
    httpx.post(
        base + "/roles",
        headers=op(key),
        json={
            "name": "user-admin",
            "permissions": ["users:manage", "pipeline:view", "ops:view", "imports:view", "metadata:view"],
        },
    )
    make_user(base, key, "sec-ua", roles=["user-admin"], tenant="t1")
    make_user(base, key, "sec-other", tenant="t2")
    ua = login(base, "sec-ua")
    new = {"username": "sec-new", "password": PASSWORD}
    assert httpx.post(base + "/users", headers=ua, json={**new, "roles": ["admin"]}).status_code == 403
    assert httpx.post(base + "/users", headers=ua, json={**new, "tenant": "t2"}).status_code == 403
    assert httpx.post(base + "/users", headers=ua, json={**new, "superuser": True}).status_code == 403
    r = httpx.post(base + "/users", headers=ua, json={**new, "roles": ["viewer"]})
    assert r.status_code == 201 and r.json()["tenant"] == "t1"
    assert httpx.get(base + "/users/sec-other", headers=ua).status_code == 404
    assert "sec-other" not in {u["username"] for u in httpx.get(base + "/users", headers=ua).json()}


def test_groups_give_their_roles_to_members(api):
    base, key = api
    r = httpx.post(base + "/groups", headers=op(key), json={"name": "auditors", "tenant": "t1", "roles": ["viewer"]})
    assert r.status_code == 201
    make_user(base, key, "sec-member", groups=["auditors"])
    assert httpx.get(base + "/groups/auditors", headers=op(key)).json()["members"] == ["sec-member"]
    listed = {g["name"]: g for g in httpx.get(base + "/groups", headers=op(key)).json()}  # users read once
    assert listed["auditors"]["members"] == ["sec-member"]
    headers = login(base, "sec-member")
    assert httpx.get(base + "/pipelines", headers=headers).status_code == 200
    httpx.patch(base + "/groups/auditors", headers=op(key), json={"roles": []})
    assert httpx.get(base + "/pipelines", headers=headers).status_code == 403


def test_builtin_roles_exist_and_cannot_be_changed(api):
    base, key = api
    roles = {r["name"]: r for r in httpx.get(base + "/roles", headers=op(key)).json()}
    assert {"admin", "operator", "developer", "viewer"} <= roles.keys()
    assert httpx.delete(base + "/roles/viewer", headers=op(key)).status_code == 409
    assert httpx.patch(base + "/roles/admin", headers=op(key), json={"permissions": []}).status_code == 409


def test_audit_records_changes_and_denials_with_who_and_where(api):
    base, key = api
    since = httpx.get(base + "/audit", headers=op(key), params={"limit": 1}).json()[0]["at"]
    make_user(base, key, "sec-audited", roles=["viewer"])
    headers = login(base, "sec-audited")
    assert httpx.post(base + "/users", headers=headers, json={"username": "x", "password": PASSWORD}).status_code == 403
    httpx.post(base + "/auth/token", data={"username": "sec-audited", "password": "wrong-one-1"})
    entries = httpx.get(base + "/audit", headers=op(key), params={"since": since}).json()
    created = [e for e in entries if e["action"] == "user.create" and e["detail"].get("username") == "sec-audited"]
    assert created and created[0]["actor"] == "operator" and created[0]["outcome"] == "success"
    assert created[0]["client_ip"] == "127.0.0.1"
    denied = httpx.get(base + "/audit", headers=op(key), params={"actor": "sec-audited", "outcome": "denied"}).json()
    # A denial happens before the handler names its action: the entry has the route and the permission.
    assert {(e["action"], e["permission"], e["status"]) for e in denied} >= {
        ("POST /users", "users:manage", 403),
        ("auth.login", None, 401),
    }
    assert all(PASSWORD not in str(e) for e in entries)
    assert httpx.get(base + "/audit", headers=headers).status_code == 403


def test_the_audit_log_cannot_be_altered(api, stack_settings):
    base, key = api
    for method in ("PUT", "PATCH", "DELETE"):
        assert httpx.request(method, base + "/audit", headers=op(key)).status_code == 405
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:
        for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    assert httpx.get(base + "/audit", headers=op(key)).json()


def test_the_operator_key_still_works_as_superuser(api):
    base, key = api
    me = httpx.get(base + "/auth/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["superuser"] and me["kind"] == "operator"
