"""Data services through real HTTP against the test stack's ClickHouse (issue 17, slice 1): a service
document reviewed before publishing (the author refused as reviewer), an application approved with
fewer fields and a row filter, the app key shown once, calls returning only the granted fields,
masked, current rows only (FINAL, tombstones skipped), another division's rows kept out, the rate
limit answering 429 with Retry-After then recovering, revocation stopping the next call, bad input
answering a clear 4xx in English and Chinese (never 500), and the audit entries of all of it.
Fields the service does not mask by name are masked by their classification in the catalogue."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlparse

import httpx
import pytest

from tests.api_process import api_client  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
TENANT = f"dsa{RUN}"
SERVICE = f"people_{RUN}"
TABLE = f"ds_people_{RUN}"
APP = f"civil_affairs_{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
FIELDS = ["id", "name", "id_number", "phone", "division_code", "income"]
GRANTED = ["id", "name", "phone", "division_code"]


def _user(api, name: str, roles: list[str], tenant: str = TENANT, groups: list[str] | None = None) -> httpx.Client:
    body = {"username": name, "password": PASSWORD, "tenant": tenant, "roles": roles, "groups": groups or []}
    r = api.post("/users", json=body)
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def people(api):
    out = {k: _user(api, f"{TENANT}-{k}", ["admin"]) for k in ("author", "reviewer", "applicant")}
    yield out
    for c in out.values():
        c.close()


@pytest.fixture(scope="module")
def table(stack_settings):
    """A table as the ClickHouse sink writes it: ReplacingMergeTree by _version, _deleted tombstones."""
    from sinks.clickhouse import client_from_url

    client = client_from_url(stack_settings.clickhouse_url)
    client.execute(
        f"CREATE TABLE {TABLE} (id Int64, name String, id_number String, phone String, division_code String, "
        "income Float64, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    rows = [
        (1, "张三丰", "370102199001011234", "13800000001", "370102", 1000.0, 1, 0),
        (2, "李四", "370102198505052345", "13900000002", "370102", 2000.0, 1, 0),
        (3, "王五", "370103197707073456", "13700000003", "370103", 3000.0, 1, 0),
        (4, "赵六", "370102196606064567", "13600000004", "370102", 4000.0, 1, 0),
    ]
    client.execute(f"INSERT INTO {TABLE} VALUES", rows)
    # later versions in another part: id 1 moved to a new phone, id 4 deleted
    client.execute(
        f"INSERT INTO {TABLE} VALUES",
        [
            (1, "张三丰", "370102199001011234", "13800000011", "370102", 1100.0, 2, 0),
            (4, "赵六", "370102196606064567", "13600000004", "370102", 4000.0, 2, 1),
        ],
    )
    yield TABLE
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.disconnect()


def _catalogue(stack_settings, tenant: str, steward: httpx.Client) -> str:
    """The table in `tenant`'s catalogue as a harvest of the sink's tables records it (the shape of
    sinks/clickhouse/catalog.py; recorded directly, without a harvest job, to keep the module quick:
    the harvest itself is tested in tests/test_clickhouse_catalog.py and the demo), then classified
    by a steward over HTTP: division_code internal, phone secret."""
    from deploy.control import engine_for
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, host_namespace, system_urn
    from sinks.clickhouse import client_from_url
    from sinks.clickhouse.reader import table_columns

    client = client_from_url(stack_settings.clickhouse_url)
    columns = table_columns(client, TABLE)
    client.disconnect()
    address = urlparse(stack_settings.clickhouse_url)
    namespace = host_namespace("clickhouse", f"{address.hostname}:{address.port}")
    fields = [FieldInfo(name=n, type=t, position=i + 1, key=n == "id") for i, (n, t) in enumerate(columns.items())]
    urn = dataset_urn(namespace, f"default.{TABLE}")
    harvest = Harvest(
        system=SystemInfo(
            urn=system_urn(namespace, "default"),
            name="clickhouse default",
            kind="clickhouse",
            properties={"namespace": namespace, "database": "default"},
        ),
        datasets=[DatasetInfo(urn=urn, name=f"default.{TABLE}", kind="sink_table", fields=fields)],
    )
    CatalogStore(engine_for(stack_settings.resolved_control_db_url)).record(harvest, tenant)
    levels = {"division_code": {"classification": "internal"}, "phone": {"classification": "secret"}}
    r = steward.patch(f"/metadata/datasets/{urn}", json={"fields": levels})
    assert r.status_code == 200, r.text
    return urn


@pytest.fixture(scope="module")
def catalogued(stack_settings, people, table) -> str:
    return _catalogue(stack_settings, TENANT, people["author"])


LEVELS = {"internal": {"fn": "keep", "first": 4}, "secret": "null"}  # masks by classification level


def _document(**extra) -> dict:
    return {
        "name": SERVICE,
        "title": "人口基本信息",
        "resource": {"kind": "clickhouse", "table": TABLE},
        "fields": FIELDS,
        "filters": [{"field": "id", "ops": ["eq", "in", "range"]}, {"field": "division_code", "ops": ["eq"]}],
        "sort": ["id"],
        "default_limit": 10,
        "max_limit": 100,
        "masking": {"name": "name", "id_number": "id_number", "phone": "phone"},
        "rate_limit": {"rate": 5, "burst": 3},
        **extra,
    }


@pytest.fixture(scope="module")
def published(people, catalogued):
    author = people["author"]
    r = author.post("/services", json=_document(dataset=catalogued, classification_masking=LEVELS))
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["status"]) == (1, "draft")
    assert author.post(f"/services/{SERVICE}/submit").json()["status"] == "in_review"
    return SERVICE


@pytest.fixture(scope="module")
def grant(people, published):
    """The applicant asks for every field; the owner grants four of them, bound to division 370102."""
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": APP, "version": 1, "purpose": "低保资格核查", "fields": FIELDS},
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["status"] == "pending"
    r = people["author"].post(
        f"/services/applications/{app['id']}/decision",
        json={"approve": True, "fields": GRANTED, "row_filter": {"division_code": "370102"}, "comment": "按最小必要"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "approved" and out["fields_granted"] == GRANTED
    assert out["key"].startswith("hls_")
    return out


def _call(key: str | None, version: int = 1, service: str = SERVICE, **params) -> httpx.Response:
    headers = {"X-App-Key": key} if key else {}
    time.sleep(0.25)  # one token back (rate 5/s) between the checks that are not about the limit
    return httpx.get(f"{BASE[0]}/services/{service}/v{version}", params=params, headers=headers, timeout=30)


BASE: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _base(api):
    BASE[:] = [str(api.base_url).rstrip("/")]


def test_a_bad_document_names_the_field(people, table):
    r = people["author"].post(
        "/services", json=_document(fields=["id", "id"], masking={"nope": "phone"}, default_limit=500)
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["message_zh"] and detail["problems"] and all(p["msg_zh"] for p in detail["problems"])
    r = people["author"].post("/services", json=_document(masking={"phone": "no_such_mask"}))
    assert r.status_code == 422 and "no_such_mask" in r.text
    r = people["author"].post("/services", json=_document(classification_masking={"secret": "redact"}))
    assert r.status_code == 422 and "dataset" in r.text
    r = people["author"].post("/services", json=_document(dataset="x", classification_masking={"top": "redact"}))
    assert r.status_code == 422 and "top" in r.text


def test_review_refuses_the_author_and_publishes_by_another(people, published):
    r = people["author"].post(f"/services/{SERVICE}/review", json={"approve": True})
    assert r.status_code == 403, r.text
    assert r.json()["detail"]["problems"][0]["field"] == "reviewer"
    r = people["reviewer"].post(f"/services/{SERVICE}/review", json={"approve": True, "comment": "ok"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reviewer"]) == ("published", f"{TENANT}-reviewer")
    again = people["reviewer"].post(f"/services/{SERVICE}/review", json={"approve": True})
    assert again.status_code == 409, again.text
    versions = people["applicant"].get(f"/services/{SERVICE}/versions").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published")]


def test_applications_only_for_exposed_fields_and_decided_by_the_owner(people, published):
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": APP, "version": 1, "purpose": "x", "fields": ["id", "secret_column"]},
    )
    assert r.status_code == 422 and "secret_column" in r.text
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": f"{APP}_b", "version": 1, "purpose": "查询", "fields": ["id"]},
    )
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    r = people["reviewer"].post(f"/services/applications/{other}/decision", json={"approve": True})
    assert r.status_code == 403, r.text  # not the owner
    r = people["author"].post(f"/services/applications/{other}/decision", json={"approve": True, "fields": ["name"]})
    assert r.status_code == 422, r.text  # more than asked for
    r = people["author"].post(
        f"/services/applications/{other}/decision", json={"approve": False, "comment": "用途不明"}
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected" and "key" not in r.json()


def test_call_returns_only_granted_fields_masked_current_rows_of_the_own_division(people, grant):
    r = _call(grant["key"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["application"] == APP and body["limit"] == 10
    rows = body["rows"]
    assert [row["id"] for row in rows] == [1, 2]  # 3 is another division's, 4 is deleted
    assert all(sorted(row) == sorted(GRANTED) for row in rows)
    assert rows[0]["name"] == "张**" and rows[1]["name"] == "李*"
    assert rows[0]["phone"] == "138****0011"  # the current version's phone, masked by name (not "secret": null)
    assert [row["division_code"] for row in rows] == ["3701**", "3701**"]  # "internal" in the catalogue
    assert "13800000011" not in r.text and "370102199001011234" not in r.text
    # the row filter bound to the application wins over the caller's filters
    assert _call(grant["key"], division_code="370103").json()["rows"] == []
    assert _call(grant["key"], id="3").json()["rows"] == []
    assert [x["id"] for x in _call(grant["key"], **{"id.in": "1,3"}).json()["rows"]] == [1]
    assert [x["id"] for x in _call(grant["key"], **{"id.gte": "2"}).json()["rows"]] == [2]
    assert [x["id"] for x in _call(grant["key"], limit="1", offset="1").json()["rows"]] == [2]
    listed = people["author"].get(f"/services/{SERVICE}/applications").json()
    assert grant["key"] not in str(listed) and all("key" not in a for a in listed)


@pytest.mark.parametrize(
    "params, status",
    [
        ({"bogus": "1"}, 422),
        ({"id": "abc"}, 422),
        ({"id.like": "1"}, 422),
        ({"division_code.in": "1,2"}, 422),
        ({"limit": "1000"}, 422),
        ({"limit": "x"}, 422),
        ({"offset": "-1"}, 422),
    ],
)
def test_bad_calls_answer_a_clear_4xx(grant, params, status):
    r = _call(grant["key"], **params)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail["message"] and detail["message_zh"]


def test_credentials_are_checked(grant):
    assert _call(None).status_code == 401
    assert _call("hls_nothing_here").status_code == 401
    key_id = grant["key"][4:].split("_", 1)[0]
    assert _call(f"hls_{key_id}_wrong-secret").status_code == 401
    r = _call(grant["key"], version=2)
    assert r.status_code == 403 and "v1" in r.json()["detail"]["message"]


def test_rate_limit_answers_429_then_recovers(grant):
    time.sleep(1.0)  # a full bucket (burst 3)
    url = f"{BASE[0]}/services/{SERVICE}/v1"
    statuses, refused = [], None
    with httpx.Client(headers={"X-App-Key": grant["key"]}, timeout=30) as c:
        for _ in range(12):
            r = c.get(url)
            statuses.append(r.status_code)
            if r.status_code == 429:
                refused = r
                break
    assert refused is not None, statuses
    assert statuses[:3] == [200, 200, 200]
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 2 and refused.json()["detail"]["message_zh"]
    time.sleep(retry)
    assert httpx.get(url, headers={"X-App-Key": grant["key"]}).status_code == 200


def test_revocation_stops_the_next_call_and_everything_is_audited(api, people, grant):
    assert _call(grant["key"]).status_code == 200
    r = people["applicant"].post(f"/services/applications/{grant['id']}/revoke")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    r = _call(grant["key"])
    assert r.status_code == 401 and "revoked" in r.json()["detail"]["message"]
    assert people["author"].post(f"/services/applications/{grant['id']}/revoke").status_code == 409

    def entries(action: str) -> list[dict]:
        return api.get("/audit", params={"action": action, "limit": 1000}).json()

    approvals = [e for e in entries("services.application.approve") if e["detail"].get("application") == APP]
    assert approvals and approvals[0]["actor"] == f"{TENANT}-author"
    assert approvals[0]["detail"]["fields"] == GRANTED and approvals[0]["detail"]["key_id"] == grant["key_id"]
    calls = [e for e in entries("services.call") if e["detail"].get("service") == SERVICE]
    served = [e for e in calls if e["status"] == 200]
    assert served and all(e["actor"] == f"app:{APP}" for e in served)
    assert any(e["status"] == 429 for e in calls) and any(e["status"] == 401 for e in calls)
    # the service's tenant admin sees its applications' calls too (the entries carry the service's tenant)
    own = people["author"].get("/audit", params={"action": "services.call", "limit": 1000}).json()
    assert {e["request_id"] for e in served} <= {e["request_id"] for e in own}
    reviews = entries("services.review.approve")
    assert any(e["detail"].get("name") == SERVICE and e["actor"] == f"{TENANT}-reviewer" for e in reviews)


REQ_TENANT = f"dsr{RUN}"
REQ_SERVICE = f"people_req_{RUN}"


@pytest.fixture
def requestable(api, stack_settings, table):
    """What the access-request test stands on, made for it alone in a tenant of its own, so it passes
    by itself as in the module: its people (the owner in the group that will own the dataset), the
    table catalogued there without an owner, and a service serving it published by a reviewer."""
    group = f"{REQ_TENANT}-owners"
    r = api.post("/groups", json={"name": group, "tenant": REQ_TENANT})
    assert r.status_code == 201, r.text
    people = {k: _user(api, f"{REQ_TENANT}-{k}", ["admin"], REQ_TENANT) for k in ("author", "reviewer", "applicant")}
    people["owner"] = _user(api, f"{REQ_TENANT}-owner", ["admin"], REQ_TENANT, [group])
    urn = _catalogue(stack_settings, REQ_TENANT, people["author"])
    doc = _document(name=REQ_SERVICE, dataset=urn, classification_masking=LEVELS)
    r = people["author"].post("/services", json=doc)
    assert r.status_code == 201, r.text
    assert people["author"].post(f"/services/{REQ_SERVICE}/submit").status_code == 200
    r = people["reviewer"].post(f"/services/{REQ_SERVICE}/review", json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "published", r.text
    yield {**people, "dataset": urn, "group": group}
    for c in people.values():
        c.close()


def test_request_access_to_the_dataset_decided_by_its_owning_group(api, requestable):
    """ "Request access" on the catalogue dataset: its owner (a group in the business metadata) approves
    fewer fields; the approval grants an application of the published service serving the dataset."""
    people, catalogued, group, owner = requestable, requestable["dataset"], requestable["group"], requestable["owner"]
    applicant = people["applicant"]
    ask = {"dataset": catalogued, "application": f"{APP}_req", "purpose": "核对人员", "fields": ["id", "name", "phone"]}
    r = applicant.post("/access-requests", json=ask)
    assert r.status_code == 409 and r.json()["detail"]["problems"][0]["field"] == "owner"  # nobody to decide yet
    r = people["author"].patch(f"/metadata/datasets/{catalogued}", json={"owner": f"group:{group}"})
    assert r.status_code == 200, r.text
    r = applicant.post("/access-requests", json={**ask, "fields": ["id", "no_such_field"]})
    assert r.status_code == 422 and "no_such_field" in r.text
    r = applicant.post("/access-requests", json={**ask, "dataset": catalogued + "_ghost"})
    assert r.status_code == 404, r.text
    r = applicant.post("/access-requests", json={**ask, "period_days": 30})
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["status"], req["owner"], req["fields_wanted"]) == ("pending", f"group:{group}", ask["fields"])
    waiting = owner.get("/access-requests", params={"dataset": catalogued})
    assert waiting.status_code == 200 and [x["id"] for x in waiting.json()] == [req["id"]]
    decision = f"/access-requests/{req['id']}/decision"
    r = people["reviewer"].post(decision, json={"approve": True})
    assert r.status_code == 403 and r.json()["detail"]["problems"][0]["field"] == "decided_by"
    r = owner.post(decision, json={"approve": True, "fields": ["id", "income"]})
    assert r.status_code == 422 and "income" in r.text  # not asked for
    r = owner.post(decision, json={"approve": True, "fields": ["id"], "row_filter": {"no such column": "x"}})
    assert r.status_code == 422 and "row_filter" in r.text  # refused: the request still waits
    r = owner.post(decision, json={"approve": True, "fields": ["id", "name"], "comment": "电话不需要"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["fields_granted"], out["service"], out["version"]) == (
        "approved",
        ["id", "name"],
        REQ_SERVICE,
        1,
    )
    assert owner.post(decision, json={"approve": False}).status_code == 409
    r = _call(out["key"], service=REQ_SERVICE)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["id"] for row in rows] == [1, 2, 3] and all(sorted(row) == ["id", "name"] for row in rows)
    assert rows[0]["name"] == "张**"  # masked as the service masks it
    apps = {a["id"]: a for a in people["author"].get(f"/services/{REQ_SERVICE}/applications").json()}
    granted = apps[out["application_id"]]
    assert (granted["status"], granted["decided_by"], granted["period_days"]) == ("approved", f"{REQ_TENANT}-owner", 30)
    r = applicant.post("/access-requests", json={**ask, "application": f"{APP}_req2"})
    r = owner.post(f"/access-requests/{r.json()['id']}/decision", json={"approve": False, "comment": "用途不明"})
    assert (r.status_code, r.json()["status"], r.json()["comment"]) == (200, "rejected", "用途不明")
    assert "key" not in r.json()
    audit = api.get("/audit", params={"action": "services.access_request.approve", "limit": 1000}).json()
    mine = [e for e in audit if e["detail"].get("request_id") == req["id"]]
    assert mine and mine[0]["actor"] == f"{REQ_TENANT}-owner" and mine[0]["detail"]["fields"] == ["id", "name"]


def test_a_new_draft_leaves_the_published_version_served_and_offline_stops_it(people, grant):
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": f"{APP}_c", "version": 1, "purpose": "统计", "fields": ["id"]},
    )
    assert r.status_code == 201, r.text
    r = people["author"].post(f"/services/applications/{r.json()['id']}/decision", json={"approve": True})
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    r = people["author"].post("/services", json=_document(fields=["id", "name"], masking={"name": "name"}))
    assert (r.status_code, r.json()["version"], r.json()["status"]) == (201, 2, "draft")
    time.sleep(1.0)
    r = _call(key)
    assert r.status_code == 200 and [sorted(row) for row in r.json()["rows"]] == [["id"]] * 3  # no row filter
    assert people["author"].post(f"/services/{SERVICE}/v1/offline").status_code == 200
    r = _call(key)
    assert r.status_code == 404 and r.json()["detail"]["message_zh"], r.text
    assert people["author"].post(f"/services/{SERVICE}/v1/offline").status_code == 409
    versions = people["applicant"].get(f"/services/{SERVICE}/versions").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "offline"), (2, "draft")]


CACHED = f"people_cached_{RUN}"


def test_a_cache_ttl_reuses_an_answer_after_every_check_and_never_across_grants_or_masks(
    people, table, catalogued, stack_settings
):
    """`cache_ttl_s`: the same query, fields and masks within the TTL are answered without ClickHouse
    (a newer row in the table is not seen until it expires); another grant, a classification change
    or a revocation is never answered from it."""
    from sinks.clickhouse import client_from_url

    author, reviewer, applicant = people["author"], people["reviewer"], people["applicant"]
    doc = _document(
        name=CACHED,
        dataset=catalogued,
        classification_masking=LEVELS,
        cache_ttl_s=3,
        rate_limit={"rate": 50, "burst": 50},
    )
    assert author.post("/services", json=doc).status_code == 201
    assert author.post(f"/services/{CACHED}/submit").status_code == 200
    assert reviewer.post(f"/services/{CACHED}/review", json={"approve": True}).json()["status"] == "published"

    def approved(name: str, fields: list[str], decision: dict) -> str:
        r = applicant.post(
            f"/services/{CACHED}/applications",
            json={"application": name, "version": 1, "purpose": "核查", "fields": fields},
        )
        r = author.post(f"/services/applications/{r.json()['id']}/decision", json={"approve": True, **decision})
        assert r.status_code == 200, r.text
        return r.json()

    a = approved(f"cached_a_{RUN}", GRANTED, {"fields": GRANTED, "row_filter": {"division_code": "370102"}})
    b = approved(f"cached_b_{RUN}", ["id", "division_code"], {"fields": ["id", "division_code"]})

    def call(app: dict) -> httpx.Response:
        return httpx.get(f"{BASE[0]}/services/{CACHED}/v1", headers={"X-App-Key": app["key"]}, timeout=30)

    first = call(a)
    assert first.status_code == 200 and first.headers["X-Huiliu-Cache"] == "miss", first.text
    assert [(r["id"], r["phone"]) for r in first.json()["rows"]] == [(1, "138****0011"), (2, "139****0002")]
    clickhouse = client_from_url(stack_settings.clickhouse_url)
    clickhouse.execute(
        f"INSERT INTO {TABLE} VALUES", [(2, "李四", "370102198505052345", "13900000022", "370102", 2000.0, 3, 0)]
    )
    again = call(a)
    assert again.headers["X-Huiliu-Cache"] == "hit" and again.json()["rows"] == first.json()["rows"]
    other = call(b)  # other fields, no row filter: its own answer
    assert other.headers["X-Huiliu-Cache"] == "miss"
    assert [r["id"] for r in other.json()["rows"]] == [1, 2, 3]
    # a steward makes division_code public: other masks, so not the kept answer
    r = author.patch(
        f"/metadata/datasets/{catalogued}", json={"fields": {"division_code": {"classification": "public"}}}
    )
    assert r.status_code == 200, r.text
    fresh = call(a)
    assert fresh.headers["X-Huiliu-Cache"] == "miss"
    assert [(r["id"], r["phone"], r["division_code"]) for r in fresh.json()["rows"]] == [
        (1, "138****0011", "370102"),
        (2, "139****0022", "370102"),
    ]
    assert applicant.post(f"/services/applications/{a['id']}/revoke").status_code == 200
    assert call(a).status_code == 401  # the checks come before the cache
    time.sleep(3.2)
    assert call(b).headers["X-Huiliu-Cache"] == "miss"  # expired
    metrics = author.get("/metrics").text
    assert f'huiliu_service_cache_lookups_total{{outcome="hit",service="{CACHED}"}} 1.0' in metrics
    clickhouse.disconnect()
