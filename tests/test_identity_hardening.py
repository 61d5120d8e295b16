"""Security issue 20, identity part, over HTTP against a real API process: tenant-owned roles,
no acting on accounts that hold more than the caller, the per-source sign-in back-off, tokens
bound to the account's generation, API key expiry and owners, the password policy, security
headers, and no confirmation of other tenants' names."""

from __future__ import annotations

import sqlite3
import statistics
import time

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


@pytest.fixture(scope="module")
def tenants(api):
    """Tenant ta: an admin, a user manager (a role of ta's own), a viewer; tenant tb: an admin."""
    base, key = api
    make_user(base, key, "ta-admin", roles=["admin"], tenant="ta")
    make_user(base, key, "tb-admin", roles=["admin"], tenant="tb")
    ta_admin = login(base, "ta-admin")
    r = httpx.post(
        base + "/roles",
        headers=ta_admin,
        json={
            "name": "ta-usermgr",
            "permissions": ["users:manage", "pipeline:view", "ops:view", "imports:view", "metadata:view"],
        },
    )
    assert r.status_code == 201 and r.json()["tenant"] == "ta", r.text
    r = httpx.post(
        base + "/users",
        headers=ta_admin,
        json={"username": "ta-um", "password": PASSWORD, "roles": ["ta-usermgr"]},
    )
    assert r.status_code == 201, r.text
    make_user(base, key, "ta-viewer", roles=["viewer"], tenant="ta")
    return {"ta-admin": ta_admin, "tb-admin": login(base, "tb-admin"), "ta-um": login(base, "ta-um")}


# 1. roles belong to the tenant that made them ---------------------------------------------------
def test_another_tenants_role_is_invisible_and_unchangeable(api, tenants):
    base, key = api
    tb = tenants["tb-admin"]
    assert httpx.get(base + "/roles/ta-usermgr", headers=tb).status_code == 404
    assert "ta-usermgr" not in {r["name"] for r in httpx.get(base + "/roles", headers=tb).json()}
    assert httpx.patch(base + "/roles/ta-usermgr", headers=tb, json={"permissions": ["*"]}).status_code == 404
    assert httpx.delete(base + "/roles/ta-usermgr", headers=tb).status_code == 404
    r = httpx.post(
        base + "/users", headers=tb, json={"username": "tb-x", "password": PASSWORD, "roles": ["ta-usermgr"]}
    )
    assert r.status_code == 422 and "unknown roles" in r.json()["detail"]
    # The name is taken, but the answer does not say by whom.
    r = httpx.post(base + "/roles", headers=tb, json={"name": "ta-usermgr", "permissions": []})
    assert r.status_code == 409 and "ta" not in r.json()["detail"].replace("ta-usermgr", "")
    assert "*" not in httpx.get(base + "/roles/ta-usermgr", headers=op(key)).json()["permissions"]


def test_global_roles_are_changed_by_superusers_only(api, tenants):
    base, key = api
    r = httpx.post(base + "/roles", headers=op(key), json={"name": "global-reader", "permissions": ["ops:view"]})
    assert r.status_code == 201 and r.json()["tenant"] is None
    ta = tenants["ta-admin"]
    assert "global-reader" in {r["name"] for r in httpx.get(base + "/roles", headers=ta).json()}
    r = httpx.patch(base + "/roles/global-reader", headers=ta, json={"permissions": ["*"]})
    assert r.status_code == 403 and "superuser" in r.json()["detail"]
    assert httpx.delete(base + "/roles/global-reader", headers=ta).status_code == 403
    assert httpx.patch(base + "/roles/viewer", headers=ta, json={"permissions": []}).status_code == 409
    assert httpx.patch(base + "/roles/global-reader", headers=op(key), json={"description": "x"}).status_code == 200


# 2. nobody acts on an account holding more than they do -------------------------------------------
def test_a_user_manager_cannot_take_over_a_more_powerful_account(api, tenants):
    base, key = api
    um = tenants["ta-um"]
    for body in ({"password": "new-Passw0rd-long"}, {"disabled": True}, {"roles": []}, {"unlock": True}):
        r = httpx.patch(base + "/users/ta-admin", headers=um, json=body)
        assert r.status_code == 403 and "permissions you do not hold" in r.json()["detail"], (body, r.text)
    r = httpx.delete(base + "/users/ta-admin", headers=um)
    assert r.status_code == 403 and "ta-admin" in r.json()["detail"]
    login(base, "ta-admin")  # untouched
    # The admin's own API key is out of reach as well.
    created = httpx.post(base + "/api-keys", headers=tenants["ta-admin"], json={"name": "ta-admin-key"}).json()
    assert created["owner"] == "ta-admin"
    assert httpx.delete(base + f"/api-keys/{created['id']}", headers=um).status_code == 403
    # A user holding no more than the manager is fine.
    assert httpx.patch(base + "/users/ta-viewer", headers=um, json={"display_name": "V"}).status_code == 200


def test_wider_tenants_or_data_access_also_protect_an_account(api, tenants):
    base, key = api
    make_user(base, key, "ta-roamer", roles=["viewer"], tenant="ta", tenants=["tb"])
    r = httpx.patch(base + "/users/ta-roamer", headers=tenants["ta-um"], json={"disabled": True})
    assert r.status_code == 403 and "tenants you do not see" in r.json()["detail"]
    make_user(base, key, "ta-narrow-um", roles=["ta-usermgr"], tenant="ta", grants=["pipeline:p1"])
    narrow = login(base, "ta-narrow-um")
    r = httpx.patch(base + "/users/ta-viewer", headers=narrow, json={"disabled": True})
    assert r.status_code == 403 and "data access is wider" in r.json()["detail"]
    # Nor can a narrow manager create (or widen) someone beyond their own data access.
    new = {"username": "ta-narrow-new", "password": PASSWORD, "roles": ["viewer"]}
    assert httpx.post(base + "/users", headers=narrow, json=new).status_code == 403
    assert httpx.post(base + "/users", headers=narrow, json={**new, "grants": ["pipeline:p1"]}).status_code == 201
    r = httpx.patch(base + "/users/ta-narrow-new", headers=narrow, json={"grants": []})
    assert r.status_code == 403 and "data access" in r.json()["detail"]


def test_groups_holding_more_cannot_be_changed(api, tenants):
    base, key = api
    r = httpx.post(base + "/groups", headers=tenants["ta-admin"], json={"name": "ta-admins", "roles": ["admin"]})
    assert r.status_code == 201
    r = httpx.patch(base + "/groups/ta-admins", headers=tenants["ta-um"], json={"roles": []})
    assert r.status_code == 403
    assert httpx.delete(base + "/groups/ta-admins", headers=tenants["ta-um"]).status_code == 403


# 3. sign-in back-off: per source, never a lock of the account, nothing about existence -------------
def test_the_owner_signs_in_from_elsewhere_while_an_attacker_is_slowed_down(api):
    base, key = api
    make_user(base, key, "sec-victim", tenant="ta")
    for _ in range(5):
        assert (
            httpx.post(base + "/auth/token", data={"username": "sec-victim", "password": "guess-1234"}).status_code
            == 401
        )
    slowed = httpx.post(base + "/auth/token", data={"username": "sec-victim", "password": PASSWORD})
    assert slowed.status_code == 429 and slowed.headers["Retry-After"]
    # The owner, from another address (127.0.0.2 is loopback too), is not locked out.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:
        r = elsewhere.post(base + "/auth/token", data={"username": "sec-victim", "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_a_forged_forwarded_for_does_not_dodge_the_back_off(api):
    """No proxy is trusted by default: rotating X-Forwarded-For still counts as one source."""
    base, key = api
    make_user(base, key, "sec-forged", tenant="ta")
    codes = [
        httpx.post(
            base + "/auth/token",
            data={"username": "sec-forged", "password": "guess-1234"},
            headers={"X-Forwarded-For": f"10.9.8.{i}"},
        ).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and 429 in codes[5:], codes


def test_unknown_disabled_and_wrong_look_the_same_in_status_body_and_time(api):
    base, key = api
    make_user(base, key, "sec-timing", tenant="ta")
    make_user(base, key, "sec-gone", tenant="ta")
    httpx.patch(base + "/users/sec-gone", headers=op(key), json={"disabled": True})
    timings, bodies = {}, {}
    for name, password in (
        ("sec-timing", "wrong-pass-1"),
        ("sec-nobody-at-all", "wrong-pass-1"),
        ("sec-gone", PASSWORD),
    ):
        spent = []
        for _ in range(3):
            start = time.perf_counter()
            r = httpx.post(base + "/auth/token", data={"username": name, "password": password})
            spent.append(time.perf_counter() - start)
            assert r.status_code == 401
            bodies[name] = r.json()
        timings[name] = statistics.median(spent)
    assert len({str(b) for b in bodies.values()}) == 1
    # All three verify an argon2 hash: no answer is an order of magnitude faster than another.
    assert max(timings.values()) < 3 * min(timings.values()) + 0.05, timings


# 7. tokens bound to the account's generation -----------------------------------------------------
def test_tokens_die_with_a_password_change_a_role_change_and_a_deletion(api):
    base, key = api
    make_user(base, key, "sec-gen", roles=["viewer"], tenant="ta")
    old = login(base, "sec-gen")
    assert httpx.get(base + "/auth/me", headers=old).status_code == 200
    assert (
        httpx.patch(base + "/users/sec-gen", headers=op(key), json={"password": "another-pass-77"}).status_code == 200
    )
    assert httpx.get(base + "/auth/me", headers=old).status_code == 401
    fresh = login(base, "sec-gen", "another-pass-77")
    httpx.patch(base + "/users/sec-gen", headers=op(key), json={"roles": []})
    assert httpx.get(base + "/auth/me", headers=fresh).status_code == 401
    before_delete = login(base, "sec-gen", "another-pass-77")
    assert httpx.delete(base + "/users/sec-gen", headers=op(key)).status_code == 204
    make_user(base, key, "sec-gen", roles=["admin"], tenant="ta")  # same name, new account
    assert httpx.get(base + "/auth/me", headers=before_delete).status_code == 401


def test_api_keys_expire_and_die_with_their_owner_unless_reassigned(api, tenants, stack_settings):
    base, key = api
    ta = tenants["ta-admin"]
    r = httpx.post(base + "/api-keys", headers=ta, json={"name": "short", "roles": ["viewer"], "expires_in_days": 1})
    assert r.status_code == 201 and r.json()["expires_at"]
    short = {"X-API-Key": r.json()["key"]}
    assert httpx.get(base + "/auth/me", headers=short).status_code == 200
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:  # a day later
        db.execute(
            "UPDATE identity_api_keys SET expires_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (r.json()["id"],)
        )
    assert httpx.get(base + "/auth/me", headers=short).status_code == 401

    make_user(base, key, "sec-leaving", roles=["admin"], tenant="ta")
    leaving = login(base, "sec-leaving")
    doomed = httpx.post(base + "/api-keys", headers=leaving, json={"name": "doomed", "roles": ["viewer"]}).json()
    kept = httpx.post(base + "/api-keys", headers=leaving, json={"name": "kept", "roles": ["viewer"]}).json()
    r = httpx.patch(base + f"/api-keys/{kept['id']}", headers=ta, json={"owner": "ta-admin"})
    assert r.status_code == 200 and r.json()["owner"] == "ta-admin"
    assert httpx.delete(base + "/users/sec-leaving", headers=ta).status_code == 204
    assert httpx.get(base + "/auth/me", headers={"X-API-Key": doomed["key"]}).status_code == 401
    assert httpx.get(base + "/auth/me", headers={"X-API-Key": kept["key"]}).status_code == 200


def test_the_password_policy(api):
    base, key = api
    for password, reason in (
        ("short-1", "at least 10"),
        (" " * 12, "whitespace"),
        ("password123", "common"),
        ("qwertyuiop", "common"),
        ("xsec-policy-2024", "username"),
    ):
        r = httpx.post(
            base + "/users", headers=op(key), json={"username": "sec-policy", "password": password, "tenant": "ta"}
        )
        assert r.status_code == 422 and reason in r.json()["detail"], (password, r.text)
        assert not password.strip() or password not in r.text
    make_user(base, key, "sec-policy", tenant="ta")


def test_security_headers_on_every_response(api):
    base, key = api
    answers = [
        httpx.post(base + "/auth/token", data={"username": "x-none", "password": "y"}),
        httpx.get(base + "/auth/me", headers=op(key)),
        httpx.get(base + "/users"),
        httpx.get(base + "/no-such-route"),
    ]
    for r in answers:
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    docs = httpx.get(base + "/docs")
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]


# 7. enumeration: other tenants' names answer like unknown ones ----------------------------------
def test_other_tenants_names_are_not_confirmed(api, tenants):
    base, key = api
    tb = tenants["tb-admin"]
    r = httpx.post(base + "/groups", headers=tenants["ta-admin"], json={"name": "ta-team", "roles": []})
    assert r.status_code == 201
    taken = httpx.post(base + "/users", headers=tb, json={"username": "ta-viewer", "password": PASSWORD})
    assert taken.status_code == 409 and "ta" not in taken.json()["detail"].replace("ta-viewer", "")
    own = httpx.post(base + "/users", headers=tb, json={"username": "tb-admin", "password": PASSWORD})
    assert own.json()["detail"].replace("tb-admin", "N") == taken.json()["detail"].replace("ta-viewer", "N")
    groups = [
        httpx.post(base + "/users", headers=tb, json={"username": "tb-y", "password": PASSWORD, "groups": [g]})
        for g in ("ta-team", "no-such-group")
    ]
    assert [g.status_code for g in groups] == [422, 422]
    assert groups[0].json()["detail"].replace("ta-team", "N") == groups[1].json()["detail"].replace(
        "no-such-group", "N"
    )
    assert httpx.get(base + "/users/ta-viewer", headers=tb).status_code == 404
    assert httpx.get(base + "/groups/ta-team", headers=tb).status_code == 404


def test_parallel_guesses_all_count(api):
    from concurrent.futures import ThreadPoolExecutor

    base, key = api
    make_user(base, key, "sec-parallel", tenant="ta")
    transport = httpx.HTTPTransport(local_address="127.0.0.4")
    with httpx.Client(transport=transport, timeout=60) as attacker, ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda i: (
                    attacker.post(
                        base + "/auth/token", data={"username": "sec-parallel", "password": f"guess-{i}-xxxx"}
                    ).status_code
                ),
                range(8),
            )
        )
        assert set(codes) <= {401, 429}
        r = attacker.post(base + "/auth/token", data={"username": "sec-parallel", "password": PASSWORD})
    assert r.status_code == 429, (codes, r.status_code)
