"""Issue 14, refusals that were server errors, over HTTP against real API processes (api/edge.py):
integers and times beyond what the control DB holds answer 422 naming the parameter on every
route; bodies beyond `api_max_body_bytes` answer 413 (announced or chunked); free text is bounded;
a 500 carries the request id and leaves the keep-alive connection usable; cron strings are the
documented forms only, at least `schedule_min_interval_s` apart.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from deploy.settings import settings_env
from tests.api_process import api_client, wait_for  # noqa: F401 - a fixture: api

RUN = uuid.uuid4().hex[:6]


def _loc(r: httpx.Response) -> list:
    assert r.status_code == 422, (r.status_code, r.text)
    return r.json()["detail"][0]["loc"]


def test_integers_beyond_the_control_db_answer_422_naming_the_parameter(api):
    huge = "12345678901234567890"
    assert _loc(api.get(f"/imports/{huge}")) == ["path", "import_id"]
    assert _loc(api.post(f"/messages/{huge}/read")) == ["path", "mid"]
    assert _loc(api.get(f"/pipelines/p-{RUN}/versions/-{huge}")) == ["path", "version"]
    r = api.get(f"/connectors/c-{RUN}/tasks/{huge}/status")
    assert _loc(r) == ["path", "task"] and r.json()["error_code"] == 422  # Kafka Connect's shape too
    assert _loc(api.get("/audit", params={"before_id": huge})) == ["query", "before_id"]
    assert _loc(api.get("/jobs", params={"limit": huge})) == ["query", "limit"]
    # in bodies too: nothing in a request may exceed a 64-bit integer
    r = api.post("/schedules", json={"name": f"big-{RUN}", "action": "noop", "params": {"n": 10**30}})
    assert _loc(r) == ["body", "params", "n"]
    assert huge not in r.text and str(10**30) not in r.text  # the value is not echoed
    # within range: the route's own answer
    assert api.get("/imports/2147483647").status_code == 404


def test_times_and_numbers_out_of_range_answer_422(api):
    assert _loc(api.get("/logs", params={"since": "9999-12-31T23:59:59-14:00"})) == ["query", "since"]
    assert _loc(api.get("/logs", params={"since": "99999999999999"})) == ["query", "since"]
    assert _loc(api.get("/audit", params={"since": "9999-12-31T23:59:59-14:00"})) == ["query", "since"]
    assert _loc(api.get("/audit", params={"until": "0001-01-01T00:00:00+14:00"})) == ["query", "until"]
    assert _loc(api.get("/messages", params={"since": "nan"})) == ["query", "since"]
    assert _loc(api.get("/messages", params={"since": "1e300"})) == ["query", "since"]
    assert api.get("/logs", params={"since": "2026-01-01T00:00:00Z"}).status_code == 200
    assert api.get("/audit", params={"since": "2026-01-01T00:00:00+08:00", "limit": 1}).status_code == 200


def test_nul_characters_are_refused_and_the_refusal_is_audited(api):
    # PostgreSQL text holds no NUL: it made the audit entry fail (503) on every route with a name in the path
    assert _loc(api.get("/pipelines/a%00b")) == ["path", "name"]
    assert _loc(api.post("/schedules", json={"name": "a\x00b", "action": "noop"})) == ["body", "name"]
    r = httpx.post(str(api.base_url) + "/auth/token", data={"username": "a\x00b", "password": "x"})
    assert _loc(r) == ["body", "username"]
    entries = api.get("/audit", params={"action": "GET /pipelines/*", "limit": 50}).json()
    assert any(e["path"] == "/pipelines/a\ufffdb" and e["status"] == 422 for e in entries), entries


def test_refusals_leave_the_keep_alive_connection_usable(api):
    host, port = api.base_url.host, api.base_url.port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = dict(api.headers)
    try:
        for path in ("/imports/12345678901234567890", "/logs?since=9999-12-31T23:59:59-14:00", "/livez"):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status in (200, 422), (path, r.status)
    finally:
        conn.close()


def test_bodies_beyond_the_limit_answer_413_announced_or_chunked(api):
    big = json.dumps({"name": f"big-{RUN}", "config": {"connector.class": "x", "blob": "a" * (2 * 1024 * 1024)}})
    r = api.post("/connectors", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "api_max_body_bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: Transfer-Encoding chunked, counted as it arrives
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536].encode()

    r = api.post("/connectors", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert f"big-{RUN}" not in api.get("/connectors").json()
    assert api.get("/livez").status_code == 200  # the client's next connection works


def test_free_text_fields_are_bounded(api):
    r = api.post("/pipelines", json={"name": f"t-{RUN}", "description": "d" * 3000})
    assert _loc(r) == ["body", "description"] and "2000" in r.json()["detail"][0]["msg"]
    assert _loc(api.post("/pipelines", json={"name": "n" * 300})) == ["body", "name"]
    assert _loc(api.post("/schedules", json={"name": f"s-{RUN}", "action": "a" * 500})) == ["body", "action"]
    assert _loc(api.get("/pipelines/" + "p" * 300)) == ["path", "name"]
    r = httpx.post(str(api.base_url) + "/auth/token", data={"username": "u" * 300, "password": "x"})
    assert _loc(r) == ["body", "username"]
    r = api.put(
        f"/pipelines/p-{RUN}", params={"message": "m" * 2001}, json={"name": f"p-{RUN}"}, headers={"If-Match": '"1"'}
    )
    assert _loc(r) == ["query", "message"]


def test_cron_is_a_documented_form_and_not_too_frequent(api):
    r = api.post("/schedules", json={"name": f"seven-{RUN}", "action": "noop", "cron": "0 0 * * * * *"})
    assert r.status_code == 422 and "5 fields" in r.json()["detail"], r.text
    r = api.post("/schedules", json={"name": f"fast-{RUN}", "action": "noop", "cron": "* * * * * */5"})
    assert r.status_code == 422 and "schedule_min_interval_s" in r.json()["detail"] and "60 s" in r.json()["detail"]
    r = api.post("/schedules", json={"name": f"hourly-{RUN}", "action": "noop", "cron": "@hourly"})
    assert r.status_code == 422
    r = api.post("/schedules", json={"name": f"ok-{RUN}", "action": "noop", "cron": "*/5 * * * *"})
    assert r.status_code == 201, r.text
    r = api.patch(f"/schedules/ok-{RUN}", json={"cron": "* * * * * *"})
    assert r.status_code == 422 and "schedule_min_interval_s" in r.json()["detail"]
    r = api.post("/schedules", json={"name": f"sec-{RUN}", "action": "noop", "cron": "*/2 * * * * 30"})
    assert r.status_code == 201, r.text  # 6 fields, seconds last, two minutes apart


BOOM = """
import sys, uvicorn
from api.app import create_app
app = create_app()

@app.get("/test-boom")
def boom():
    raise RuntimeError("a handler bug")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture(scope="module")
def boom_api(stack_settings, tmp_path_factory):
    """The real app (create_app, uvicorn) plus one route that fails, as a handler bug would."""
    port = stack_settings.api_port + 37
    log = tmp_path_factory.mktemp("boom") / "api.out"
    env = {**os.environ, **settings_env(stack_settings)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", BOOM, str(port)], env=env, stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            if proc.poll() is not None:
                raise AssertionError(log.read_text())
            try:
                return httpx.get(base + "/livez", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60)
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_a_server_error_names_its_request_id_and_keeps_the_connection(boom_api, stack_settings):
    from api.auth import api_key_for

    base, log = boom_api
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    key = {"X-API-Key": api_key_for(stack_settings)}
    try:
        conn.request("GET", "/test-boom", headers={**key, "X-Request-ID": f"boom-{RUN}"})
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 500 and body["request_id"] == f"boom-{RUN}" and "a handler bug" not in json.dumps(body)
        assert r.getheader("X-Request-ID") == f"boom-{RUN}"
        for _ in range(3):  # the same connection: was reset after a 500
            conn.request("GET", "/livez", headers=key)
            again = conn.getresponse()
            assert again.status == 200 and json.loads(again.read()) == {"status": "ok"}
    finally:
        conn.close()
    time.sleep(0.5)
    found = httpx.get(base + "/logs", params={"request_id": f"boom-{RUN}", "level": "ERROR"}, headers=key).json()
    assert any("a handler bug" in json.dumps(line) for line in found["lines"]), found
