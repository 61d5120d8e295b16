"""Data-service access controls and call monitoring through real HTTP (issue 17, slice 2), against
the test stack's Redis, ClickHouse and control DB: an application that signs its requests (HMAC,
timestamp + nonce: a replay and a stale timestamp refused), an IP allowlist (403 outside it), a
daily quota (429 with Retry-After to the next day, the next period's counter fresh), an expired
credential (401 at once), every call logged to ClickHouse in batches with /stats agreeing, the
call log never failing a call when ClickHouse is down (drops counted), the per-version OpenAPI
document, Prometheus metrics, the latency / error-ratio alert rules, and the audit of credential use."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import redis
from sqlalchemy import update

from streams.dataservices.access import period_ids, period_reset, signed_headers
from streams.dataservices.cache import Generation
from tests.api_process import api_client, wait_for  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
TENANT = f"dsx{RUN}"
SERVICE = f"citizens_{RUN}"
TABLE = f"ds_citizens_{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
FIELDS = ["id", "name", "phone", "division_code"]
BASE: list[str] = []


def _user(api, name: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _base(api):
    BASE[:] = [str(api.base_url).rstrip("/")]


@pytest.fixture(scope="module")
def people(api):
    out = {k: _user(api, f"{TENANT}-{k}", ["admin"]) for k in ("author", "reviewer", "applicant")}
    yield out
    for c in out.values():
        c.close()


@pytest.fixture(scope="module")
def published(stack_settings, people):
    from sinks.clickhouse import client_from_url

    client = client_from_url(stack_settings.clickhouse_url)
    client.execute(
        f"CREATE TABLE {TABLE} (id Int64, name String, phone String, division_code String, "
        "_version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    client.execute(
        f"INSERT INTO {TABLE} VALUES",
        [(i, "张三丰", f"138000000{i:02d}", "370102", 1, 0) for i in range(1, 21)],
    )
    doc = {
        "name": SERVICE,
        "title": "居民信息",
        "resource": {"kind": "clickhouse", "table": TABLE},
        "fields": FIELDS,
        "filters": [{"field": "id", "ops": ["eq", "in", "range"]}],
        "sort": ["id"],
        "masking": {"name": "name", "phone": "phone"},
        "rate_limit": {"rate": 1000, "burst": 1000},
    }
    assert people["author"].post("/services", json=doc).status_code == 201
    assert people["author"].post(f"/services/{SERVICE}/submit").status_code == 200
    assert people["reviewer"].post(f"/services/{SERVICE}/review", json={"approve": True}).status_code == 200
    yield SERVICE
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.disconnect()


def _approved(people, application: str, apply: dict | None = None, decide: dict | None = None) -> dict:
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": application, "version": 1, "purpose": "核查", "fields": FIELDS, **(apply or {})},
    )
    assert r.status_code == 201, r.text
    r = people["author"].post(
        f"/services/applications/{r.json()['id']}/decision", json={"approve": True, **(decide or {})}
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def signer(people, published) -> dict:
    out = _approved(people, f"signer_{RUN}", {"auth": "hmac", "period_days": 30})
    assert out["auth"] == "hmac" and "key" not in out and out["secret"]
    assert 29.9 * 86400 < out["expires_at"] - time.time() <= 30 * 86400
    return out


def _path(version: int = 1) -> str:
    return f"/services/{SERVICE}/v{version}"


def _signed(app: dict, query: dict | None = None, ts_shift: int = 0, **override) -> httpx.Response:
    query = query or {}
    headers = signed_headers(app["key_id"], app["secret"], "GET", _path(), list(query.items()))
    if ts_shift:  # a correctly signed request made ts_shift seconds ago
        from streams.dataservices.access import sign

        ts = str(int(time.time()) + ts_shift)
        headers |= {
            "X-Timestamp": ts,
            "X-Signature": sign(app["secret"], "GET", _path(), query.items(), ts, headers["X-Nonce"]),
        }
    headers |= override
    return httpx.get(BASE[0] + _path(), params=query, headers=headers, timeout=30)


def _plain(key: str, **params) -> httpx.Response:
    return httpx.get(BASE[0] + _path(), params=params, headers={"X-App-Key": key}, timeout=30)


def _refused(r: httpx.Response, status: int, words: str) -> dict:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail["message"] and detail["message_zh"], detail
    return detail


def test_a_signed_request_is_served(signer):
    r = _signed(signer, {"id.in": "1,2", "limit": "5"})
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["id"] for row in rows] == [1, 2] and rows[0]["phone"] == "138****0001"


def test_replays_stale_timestamps_and_bad_signatures_are_refused(signer):
    headers = signed_headers(signer["key_id"], signer["secret"], "GET", _path(), [])
    assert httpx.get(BASE[0] + _path(), headers=headers).status_code == 200
    _refused(httpx.get(BASE[0] + _path(), headers=headers), 401, "replayed")
    _refused(_signed(signer, ts_shift=-400), 401, "timestamp")
    _refused(_signed(signer, ts_shift=+400), 401, "timestamp")
    assert _signed(signer, ts_shift=-200).status_code == 200  # inside the ±300 s window
    _refused(_signed(signer, {"id": "1"}, **{"X-Signature": "0" * 64}), 401, "signature")
    # the query is signed: the same headers over another query do not match
    headers = signed_headers(signer["key_id"], signer["secret"], "GET", _path(), [("id", "1")])
    _refused(httpx.get(BASE[0] + _path(), params={"id": "2"}, headers=headers), 401, "signature")
    _refused(_signed(signer, **{"X-Nonce": "short"}), 401, "X-Nonce")
    _refused(_signed(signer, **{"X-App-Key-Id": "feedfeedfeedfeed"}), 401, "unknown")
    missing = signed_headers(signer["key_id"], signer["secret"], "GET", _path(), [])
    del missing["X-Nonce"]
    _refused(httpx.get(BASE[0] + _path(), headers=missing), 401, "x-nonce")
    # the secret as a plain app key: this application chose signing
    _refused(_plain(f"hls_{signer['key_id']}_{signer['secret']}"), 401, "signs its requests")


def test_a_plain_key_application_cannot_sign(people, published):
    app = _approved(people, f"plain_{RUN}")
    assert app["auth"] == "key" and app["key"]
    _refused(_signed({"key_id": app["key_id"], "secret": "guess"}), 401, "plain app key")
    assert _plain(app["key"]).status_code == 200


def test_ip_allowlist(people, published):
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={
            "application": f"bad_ip_{RUN}",
            "version": 1,
            "purpose": "x",
            "fields": ["id"],
            "ip_allowlist": ["10.0.0.300"],
        },
    )
    assert r.status_code == 422 and "10.0.0.300" in r.text, r.text
    outside = _approved(people, f"branch_{RUN}", {"ip_allowlist": ["10.20.0.0/16"]})
    assert outside["ip_allowlist"] == ["10.20.0.0/16"]
    detail = _refused(_plain(outside["key"]), 403, "allowlist")
    assert "127.0.0.1" in detail["message"] and "白名单" in detail["message_zh"]
    inside = _approved(people, f"local_{RUN}", {"ip_allowlist": ["10.20.0.0/16"]}, {"ip_allowlist": ["127.0.0.0/8"]})
    assert _plain(inside["key"]).status_code == 200


def test_daily_quota_answers_429_until_the_next_day(people, published, stack_settings):
    from streams.dataservices.access import Guard

    app = _approved(people, f"quota_{RUN}", decide={"quota_daily": 3, "quota_monthly": 100})
    assert [_plain(app["key"]).status_code for _ in range(3)] == [200, 200, 200]
    r = _plain(app["key"])
    _refused(r, 429, "daily quota")
    expected = period_reset(time.time(), monthly=False)
    assert abs(int(r.headers["Retry-After"]) - expected) < 10, (r.headers["Retry-After"], expected)
    assert _plain(app["key"]).status_code == 429  # a refused call is not counted, and still refused
    stats = people["author"].get(f"/services/{SERVICE}/stats").json()
    mine = next(q for q in stats["quotas"] if q["application"] == f"quota_{RUN}")
    assert (mine["quota_daily"], mine["used_today"], mine["used_this_month"]) == (3, 3, 3)
    # the next day's counter is a new one (the same Redis the API counts in, a clock a day ahead)
    guard = Guard(redis.Redis.from_url(stack_settings.redis_url))
    tomorrow = time.time() + expected + 1
    same_month = period_ids(tomorrow)[1] == period_ids(time.time())[1]
    assert guard.take_quota(app, now=tomorrow) == {"day": 1, "month": 4 if same_month else 1}
    # a monthly quota is per month
    monthly = _approved(people, f"monthly_{RUN}", decide={"quota_monthly": 1})
    assert _plain(monthly["key"]).status_code == 200
    r = _plain(monthly["key"])
    _refused(r, 429, "monthly quota")
    assert abs(int(r.headers["Retry-After"]) - period_reset(time.time(), monthly=True)) < 10
    bad = people["author"].post(
        f"/services/applications/{app['id']}/decision", json={"approve": True, "quota_daily": 0}
    )
    assert bad.status_code in (409, 422), bad.text


def test_an_expired_credential_is_refused_at_once(people, published, stack_settings):
    from deploy.control import engine_for
    from streams.dataservices.tables import ds_applications

    app = _approved(people, f"expiring_{RUN}", {"period_days": 7}, {"period_days": 1})
    assert app["period_days"] == 1 and app["expires_at"] - time.time() <= 86400
    assert _plain(app["key"]).status_code == 200
    r = people["author"].post(
        f"/services/{SERVICE}/applications",
        json={"application": f"long_{RUN}", "version": 1, "purpose": "x", "fields": ["id"], "period_days": 2},
    )
    too_long = people["author"].post(
        f"/services/applications/{r.json()['id']}/decision", json={"approve": True, "period_days": 5}
    )
    assert too_long.status_code == 422 and too_long.json()["detail"]["problems"][0]["field"] == "period_days"
    # a day passes (the period's end moved to just now: waiting a day is not a test). Written behind
    # the store's back, so its change counter is bumped as the store's own writes do: an API process
    # may hold the row from before (time passing needs no bump: each call checks the cached expiry)
    with engine_for(stack_settings.resolved_control_db_url).begin() as conn:
        conn.execute(update(ds_applications).where(ds_applications.c.id == app["id"]).values(expires_at=time.time()))
    Generation(redis.Redis.from_url(stack_settings.redis_url)).bump()
    detail = _refused(_plain(app["key"]), 401, "expired")
    assert "过期" in detail["message_zh"]


def test_calls_are_logged_to_clickhouse_and_stats_agree(people, signer, stack_settings):
    from sinks.clickhouse import client_from_url

    for i in range(5):
        assert _signed(signer, {"id": str(i + 1)}).status_code == 200
    _refused(_signed(signer, {"bogus": "1"}), 422, "bogus")
    client = client_from_url(stack_settings.clickhouse_url)

    def logged():
        rows = client.execute(
            "SELECT application, status, rows, bytes, client_ip, version, latency_ms FROM huiliu_service_calls "
            "WHERE scope = %(s)s AND service = %(n)s",
            {"s": TENANT, "n": SERVICE},
        )
        mine = [r for r in rows if r[0] == f"signer_{RUN}"]
        return rows if len([r for r in mine if r[1] == 200]) >= 7 and any(r[1] == 422 for r in mine) else None

    rows = wait_for(logged, timeout=20)
    served = [r for r in rows if r[0] == f"signer_{RUN}" and r[1] == 200]
    assert all(r[4] == "127.0.0.1" and r[5] == 1 and r[6] > 0 and r[3] > 0 for r in served)
    assert {1, 2} <= {r[2] for r in served}  # one-row calls and the two-row call
    time.sleep(1.5)  # let the flusher write every call made so far
    rows = client.execute(
        "SELECT count(), countIf(status >= 500), countIf(status >= 400 AND status < 500) FROM huiliu_service_calls "
        "WHERE scope = %(s)s AND service = %(n)s",
        {"s": TENANT, "n": SERVICE},
    )[0]
    client.disconnect()
    stats = people["author"].get(f"/services/{SERVICE}/stats", params={"period": "minute", "hours": 1})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["calls"] == rows[0] and body["calls"] == sum(p["calls"] for p in body["periods"])
    assert body["refused_ratio"] == round(rows[2] / rows[0], 4) and body["error_ratio"] == round(rows[1] / rows[0], 4)
    assert 0 < body["latency_ms"]["p50"] <= body["latency_ms"]["p95"] <= body["latency_ms"]["p99"]
    top = {a["application"]: a for a in body["top_applications"]}
    assert top[f"signer_{RUN}"]["calls"] >= 8
    assert people["author"].get(f"/services/{SERVICE}/stats", params={"period": "week"}).status_code == 422
    assert people["author"].get("/services/no_such_service/stats").status_code == 404


def test_the_call_log_never_fails_a_call_when_clickhouse_is_down():
    """A log to a ClickHouse nobody listens on (a real refused connection): batches dropped and
    counted; a full buffer drops and counts instead of blocking."""
    from streams.dataservices.calllog import CallLog

    log = CallLog("clickhouse://default:@127.0.0.1:9/default", max_buffer=100, flush_s=0.05)
    started = time.perf_counter()
    for _ in range(10):
        log.record(scope="", service="s", version=1, status=200, latency_ms=1.0)
    assert time.perf_counter() - started < 0.05
    wait_for(lambda: log.counters["dropped_failed"] == 10, timeout=20)
    full = CallLog("clickhouse://default:@127.0.0.1:9/default", max_buffer=1, flush_s=5)
    for _ in range(50):
        full.record(scope="", service="s", version=1, status=200)
    assert full.counters["dropped_full"] >= 48


def test_openapi_of_a_version(people, published):
    r = people["applicant"].get(f"/services/{SERVICE}/v1/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    op = doc["paths"][f"/services/{SERVICE}/v1"]["get"]
    names = {p["name"]: p for p in op["parameters"]}
    assert {"id", "id.in", "id.gte", "id.lte", "limit", "offset"} == set(names)
    assert names["id"]["schema"] == {"type": "integer"} and names["limit"]["schema"]["maximum"] == 1000
    row = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["rows"]["items"]
    assert list(row["properties"]) == FIELDS
    assert {"401", "403", "429"} <= set(op["responses"]) and "X-Signature" in doc["components"]["securitySchemes"]
    assert people["applicant"].get(f"/services/{SERVICE}/v9/openapi.json").status_code == 404


def test_metrics_and_alert_rules(api, people, signer):
    assert _signed(signer).status_code == 200
    text = api.get("/metrics").text
    assert f'huiliu_service_calls_total{{service="{SERVICE}",status="200",version="1"}}' in text
    assert f'huiliu_service_call_seconds_bucket{{le="+Inf",service="{SERVICE}"}}' in text
    assert "huiliu_service_calllog_dropped_total" in text
    time.sleep(1.5)  # the call log's flush
    rules = [
        ("latency", "service_latency", {"service": SERVICE, "threshold_ms": 0, "min_calls": 1, "window_minutes": 60}),
        ("errors", "service_error_ratio", {"service": SERVICE, "threshold_pct": 0, "min_calls": 1}),
        ("slow_ok", "service_latency", {"service": SERVICE, "threshold_ms": 60000, "min_calls": 1}),
    ]
    author = people["author"]
    for name, kind, params in rules:
        r = author.post("/alerts/rules", json={"name": f"{name}_{RUN}", "kind": kind, "params": params})
        assert r.status_code == 201, r.text
    latency = author.post(f"/alerts/rules/latency_{RUN}/evaluate").json()["alerts"]
    assert latency and SERVICE in latency[0]["subject"] and "p99" in latency[0]["subject"]
    assert author.post(f"/alerts/rules/errors_{RUN}/evaluate").json() == {"alerts": []}  # no 5xx
    assert author.post(f"/alerts/rules/slow_ok_{RUN}/evaluate").json() == {"alerts": []}
    r = author.post(
        "/alerts/rules", json={"name": f"bad_{RUN}", "kind": "service_latency", "params": {"service": SERVICE}}
    )
    assert r.status_code == 422 and "threshold_ms" in r.text


def test_credential_use_is_audited(api, signer):
    def entries():
        rows = api.get("/audit", params={"action": "services.call", "limit": 1000}).json()
        return [e for e in rows if e["detail"].get("service") == SERVICE]

    calls = entries()
    signed_ok = [e for e in calls if e["status"] == 200 and e["detail"].get("signed")]
    assert signed_ok and all(
        e["actor"] == f"app:signer_{RUN}" and e["detail"]["key_id"] == signer["key_id"] for e in signed_ok
    )
    replays = [e for e in calls if e["status"] == 401 and "replayed" in (e["detail"].get("reason") or "")]
    assert replays and replays[0]["detail"]["key_id"] == signer["key_id"]
    assert any(e["status"] == 403 for e in calls) and any(e["status"] == 429 for e in calls)
    approvals = api.get("/audit", params={"action": "services.application.approve", "limit": 1000}).json()
    quota = [e for e in approvals if e["detail"].get("application") == f"quota_{RUN}"]
    assert quota and quota[0]["detail"]["quota_daily"] == 3
