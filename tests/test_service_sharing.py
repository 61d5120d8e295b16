"""Data-service downloads and real-time subscriptions through real HTTP, ClickHouse and the broker
(issue 17): CSV, XLSX and Parquet exports hold only the granted fields, masked, of the application's
own division; a large export runs as a message-centre job with progress and a signed link that
expires; the SSE stream of the service's clean topic gives the granted masked fields, resumes after
a disconnect from Last-Event-ID without loss or duplicates, and ends as soon as the key is revoked.
Every refusal is a clear 4xx in English and Chinese."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import uuid

import httpx
import pytest

from tests.api_process import api_client  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
TENANT = f"dsh{RUN}"
SERVICE = f"residents_{RUN}"
TABLE = f"ds_residents_{RUN}"
TOPIC = f"clean.residents_{RUN}"
APP = f"health_{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
FIELDS = ["id", "name", "id_number", "phone", "division_code", "income"]
GRANTED = ["id", "name", "phone", "division_code"]
BIG = 120_000  # rows of the table a download job exports
ROW = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "id_number", "type": "string"},
        {"name": "phone", "type": "string"},
        {"name": "division_code", "type": "string"},
        {"name": "income", "type": "double"},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "fields": [
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Row"], "default": None},
        {"name": "op", "type": "string"},
    ],
}


def _user(api, name: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": roles})
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
    """Four people as the sink writes them (id 4 deleted), then BIG generated rows of division 370102."""
    from sinks.clickhouse import client_from_url

    client = client_from_url(stack_settings.clickhouse_url)
    client.execute(
        f"CREATE TABLE {TABLE} (id Int64, name String, id_number String, phone String, division_code String, "
        "income Float64, _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    client.execute(
        f"INSERT INTO {TABLE} VALUES",
        [
            (1, "张三丰", "370102199001011234", "13800000001", "370102", 1000.0, 1, 0),
            (2, "李四", "370102198505052345", "13900000002", "370102", 2000.0, 1, 0),
            (3, "王五", "370103197707073456", "13700000003", "370103", 3000.0, 1, 0),
            (4, "赵六", "370102196606064567", "13600000004", "370102", 4000.0, 1, 0),
        ],
    )
    client.execute(
        f"INSERT INTO {TABLE} VALUES", [(4, "赵六", "370102196606064567", "13600000004", "370102", 0.0, 2, 1)]
    )
    yield TABLE
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.disconnect()


def _big(stack_settings) -> None:
    from sinks.clickhouse import client_from_url

    client = client_from_url(stack_settings.clickhouse_url)
    client.execute(
        f"INSERT INTO {TABLE} SELECT toInt64(number + 1000) AS id, '孙悟空' AS name, '370102199001011234' AS id_number, "
        "toString(toUInt64(13900000000) + number) AS phone, '370102' AS division_code, "
        f"toFloat64(number) AS income, toUInt64(1) AS _version, toUInt8(0) AS _deleted FROM system.numbers LIMIT {BIG}"
    )
    client.disconnect()


@pytest.fixture(scope="module")
def grant(people, table):
    author = people["author"]
    document = {
        "name": SERVICE,
        "title": "居民信息",
        "resource": {"kind": "clickhouse", "table": TABLE, "topic": TOPIC},
        "fields": FIELDS,
        "filters": [{"field": "id", "ops": ["eq", "in", "range"]}],
        "sort": ["id"],
        "masking": {"name": "name", "id_number": "id_number", "phone": "phone"},
        "rate_limit": {"rate": 50, "burst": 50},
    }
    r = author.post("/services", json=document)
    assert r.status_code == 201, r.text
    assert author.post(f"/services/{SERVICE}/submit").status_code == 200
    assert people["reviewer"].post(f"/services/{SERVICE}/review", json={"approve": True}).status_code == 200
    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": APP, "version": 1, "purpose": "健康档案核对", "fields": FIELDS},
    )
    assert r.status_code == 201, r.text
    r = author.post(
        f"/services/applications/{r.json()['id']}/decision",
        json={"approve": True, "fields": GRANTED, "row_filter": {"division_code": "370102"}},
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def base(api) -> str:
    return str(api.base_url).rstrip("/")


def _get(base: str, path: str, key: str | None, **kw) -> httpx.Response:
    headers = {"X-App-Key": key} if key else {}
    return httpx.get(base + path, headers={**headers, **kw.pop("headers", {})}, timeout=60, **kw)


def _check_rows(rows: list[dict]) -> None:
    """Ids 1 and 2 only (3 is another division's, 4 deleted), granted fields only, masked."""
    assert [int(r["id"]) for r in rows] == [1, 2]
    assert all(sorted(r) == sorted(GRANTED) for r in rows)
    assert [r["name"] for r in rows] == ["张**", "李*"] and [r["phone"] for r in rows] == ["138****0001", "139****0002"]


def test_csv_download_has_only_granted_masked_fields_of_the_own_division(base, grant):
    r = _get(base, f"/services/{SERVICE}/v1/download", grant["key"], params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    _check_rows(rows)
    assert "370102199001011234" not in r.text and "13800000001" not in r.text
    r = _get(base, f"/services/{SERVICE}/v1/download", grant["key"], params={"format": "csv", "id": "2"})
    assert [x["id"] for x in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))] == ["2"]


def test_xlsx_and_parquet_downloads_hold_the_same(base, grant):
    import openpyxl
    import pyarrow.parquet as pq

    r = _get(base, f"/services/{SERVICE}/v1/download", grant["key"], params={"format": "xlsx"})
    assert r.status_code == 200, r.text
    sheet = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True).active
    header, *values = [list(row) for row in sheet.iter_rows(values_only=True)]
    _check_rows([dict(zip(header, v)) for v in values])
    r = _get(base, f"/services/{SERVICE}/v1/download", grant["key"], params={"format": "parquet"})
    assert r.status_code == 200, r.text
    _check_rows(pq.read_table(io.BytesIO(r.content)).to_pylist())


@pytest.mark.parametrize(
    "key, params, status",
    [
        (None, {}, 401),
        ("hls_nope_nope", {}, 401),
        ("GRANT", {"format": "pdf"}, 422),
        ("GRANT", {"bogus": "1"}, 422),
        ("GRANT", {"id": "x"}, 422),
    ],
)
def test_bad_downloads_answer_a_clear_4xx(base, grant, key, params, status):
    r = _get(base, f"/services/{SERVICE}/v1/download", grant["key"] if key == "GRANT" else key, params=params)
    assert r.status_code == status, r.text
    if status != 422 or "format" not in params:
        assert r.json()["detail"]["message_zh"]
    r = _get(base, f"/services/{SERVICE}/v2/download", grant["key"])
    assert r.status_code == 403 and r.json()["detail"]["message_zh"], r.text  # the key is for v1


def test_a_large_download_runs_as_a_job_with_progress_and_a_link_that_expires(base, stack_settings, people, grant):
    _big(stack_settings)
    key = grant["key"]
    r = httpx.post(
        f"{base}/services/{SERVICE}/v1/downloads",
        headers={"X-App-Key": key},
        json={"format": "csv", "link_ttl_s": 10},
        timeout=60,
    )
    assert r.status_code == 202, r.text
    job = r.json()
    seen = []
    deadline = time.time() + 120
    while time.time() < deadline:
        state = _get(base, job["status"], key).json()
        seen.append(state["progress"])
        if state["state"] in ("ready", "failed"):
            break
        time.sleep(0.2)
    assert state["state"] == "ready", state
    assert state["rows"] == BIG + 2 and state["progress"] == 100.0 and seen == sorted(seen)
    assert state["link"].startswith(f"/service-downloads/{job['id']}/file?")
    r = httpx.get(base + state["link"], timeout=60)  # the link is the credential: no key
    assert r.status_code == 200, r.text
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(GRANTED) and len(lines) == BIG + 3
    assert "370102199001011234" not in r.text and "13900000007" not in r.text and "139****0007" in r.text
    # a tampered link, another key's view of the job, a message in the centre
    assert httpx.get(base + state["link"].replace("sig=", "sig=0"), timeout=30).status_code == 401
    assert _get(base, job["status"], "hls_nope_nope").status_code == 401
    assert _get(base, f"/service-downloads/{uuid.uuid4().hex}", key).status_code == 404
    messages = people["author"].get("/messages", params={"category": "download"}).json()
    assert any(SERVICE in m["subject"] and str(BIG + 2) in m["subject"] for m in messages), messages
    time.sleep(max(0.0, state["expires_at"] - time.time()) + 1.5)
    r = httpx.get(base + state["link"], timeout=30)
    assert r.status_code == 410 and r.json()["detail"]["message_zh"] == "下载链接已过期", r.text
    assert _get(base, job["status"], key).json()["state"] == "expired"
    # beyond what a direct XLSX download gives: refused with the way to go
    r = _get(base, f"/services/{SERVICE}/v1/download", key, params={"format": "xlsx"})
    assert r.status_code == 413 and "downloads" in r.json()["detail"]["message"], r.text[:300]


# -- the live stream --------------------------------------------------------------------------------
def _produce(stack_settings, rows: list[tuple[str, dict]]) -> None:
    from confluent_kafka import Producer

    from schemas.naming import value_subject
    from schemas.serde import WireCodec

    codec = WireCodec(stack_settings.schema_registry_url)
    schema_id = codec.register(value_subject(TOPIC), ENVELOPE)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    for op, row in rows:
        value = {"before": row if op == "d" else None, "after": None if op == "d" else row, "op": op}
        producer.produce(TOPIC, key=str(row["id"]).encode(), value=codec.encode(schema_id, value))
    assert producer.flush(30) == 0


def _person(i: int, division: str = "370102") -> dict:
    return {
        "id": i,
        "name": "钱七" if i % 2 else "欧阳娜娜",
        "id_number": "370102199001011234",
        "phone": f"137{i:08d}",
        "division_code": division,
        "income": float(i),
    }


class Events:
    """An SSE subscriber in a thread: collects (id, event, data) until told to stop or the stream ends."""

    def __init__(self, url: str, key: str, last_id: str | None = None):
        self.items: list[tuple[str | None, str, dict]] = []
        self.ended = threading.Event()
        self.stop = threading.Event()
        self.status: int | None = None
        self.socket = None
        headers = {"X-App-Key": key, **({"Last-Event-ID": last_id} if last_id else {})}
        self.client = httpx.Client(timeout=httpx.Timeout(60, read=60))
        self.thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self.thread.start()

    def _run(self, url, headers):
        try:
            with self.client.stream("GET", url, headers=headers) as r:
                self.status = r.status_code
                self.socket = r.extensions["network_stream"].get_extra_info("socket")
                event_id, name, data = None, "message", None
                for line in r.iter_lines():
                    if self.stop.is_set():
                        break
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                    elif line == "" and data is not None:
                        self.items.append((event_id, name, data))
                        name, data = "message", None
        except httpx.HTTPError:
            pass  # closed from outside: the subscriber went away
        self.ended.set()

    def wait_for(self, n: int, timeout: float = 60.0) -> list:
        deadline = time.time() + timeout
        while len(self.items) < n and time.time() < deadline and not self.ended.is_set():
            time.sleep(0.05)
        return self.items

    def close(self):
        """Disconnect now (not at the next keep-alive): the connection is closed under the reader."""
        self.stop.set()
        if self.socket is not None:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
        self.thread.join(30)
        self.client.close()


def test_stream_refusals(base, grant):
    r = _get(base, f"/services/{SERVICE}/v1/stream", None)
    assert r.status_code == 401
    r = _get(base, f"/services/{SERVICE}/v1/stream", grant["key"], headers={"Last-Event-ID": "garbage"})
    assert r.status_code == 422 and r.json()["detail"]["message_zh"], r.text


def test_sse_gives_granted_masked_rows_resumes_without_loss_and_ends_on_revoke(base, stack_settings, people, grant):
    key, url = grant["key"], f"{base}/services/{SERVICE}/v1/stream?start=earliest"
    _produce(stack_settings, [("c", _person(i)) for i in range(1, 6)] + [("c", _person(99, "370103"))])
    first = Events(url, key)
    got = first.wait_for(5)
    first.close()
    assert first.status == 200
    rows = [d["row"] for _, _, d in got[:5]]
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4, 5]  # 99 is another division's
    assert all(sorted(r) == sorted(GRANTED) for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["name"] == "钱*" and by_id[2]["name"] == "欧阳**" and by_id[1]["phone"] == "137****0001"
    assert all(e[0] for e in got)
    last_id = got[4][0]
    # while nobody listens: more changes (a delete among them), then resume from the last id seen
    _produce(stack_settings, [("u", _person(6)), ("d", _person(2)), ("c", _person(7))])
    second = Events(url, key, last_id=last_id)
    got2 = second.wait_for(3)
    time.sleep(1.0)  # anything after the three would be a duplicate or a stray
    second.close()
    # partitions interleave: each change once, in any order across keys
    assert sorted((d["row"]["id"], d["op"]) for _, _, d in second.items) == [(2, "d"), (6, "u"), (7, "c")], got2
    assert "370102199001011234" not in json.dumps(second.items, ensure_ascii=False)
    # a live stream ends as soon as the key is revoked
    live = Events(f"{base}/services/{SERVICE}/v1/stream", key)
    time.sleep(1.5)
    revoked = people["author"].post(f"/services/applications/{grant['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    t0 = time.time()
    assert live.ended.wait(10), "the stream did not end after the revocation"
    assert time.time() - t0 < 5
    end = [d for _, name, d in live.items if name == "end"]
    assert end and end[0]["status"] == 401 and end[0]["message_zh"], live.items
    r = _get(base, f"/services/{SERVICE}/v1/stream", key)
    assert r.status_code == 401 and r.json()["detail"]["message_zh"], r.text


def test_a_signing_application_downloads_and_streams_with_signed_requests(base, people, grant):
    """An application that chose signed requests (auth hmac) uses them here too: a signed download,
    its replay refused, a signed download job and its state, a signed stream."""
    from streams.dataservices.access import signed_headers

    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": f"{APP}_signer", "version": 1, "purpose": "签名下载", "fields": FIELDS, "auth": "hmac"},
    )
    assert r.status_code == 201, r.text
    r = people["author"].post(
        f"/services/applications/{r.json()['id']}/decision",
        json={"approve": True, "fields": GRANTED, "row_filter": {"division_code": "370102"}},
    )
    signer = r.json()
    assert r.status_code == 200 and signer["secret"], r.text
    path, query = f"/services/{SERVICE}/v1/download", [("format", "csv"), ("id.lte", "2")]
    headers = signed_headers(signer["key_id"], signer["secret"], "GET", path, query)
    r = httpx.get(base + path, params=query, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    _check_rows(list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))))
    again = httpx.get(base + path, params=query, headers=headers, timeout=60)
    assert again.status_code == 401 and again.json()["detail"]["message_zh"], again.text  # a replay
    body = json.dumps({"format": "parquet", "filters": {"id.lte": "2"}}).encode()
    path = f"/services/{SERVICE}/v1/downloads"
    headers = signed_headers(signer["key_id"], signer["secret"], "POST", path, [], body)
    r = httpx.post(base + path, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 202, r.text
    status = r.json()["status"]
    deadline = time.time() + 60
    while time.time() < deadline:
        state = httpx.get(base + status, headers=signed_headers(signer["key_id"], signer["secret"], "GET", status, []))
        assert state.status_code == 200, state.text
        if state.json()["state"] in ("ready", "failed"):
            break
        time.sleep(0.3)
    assert (state.json()["state"], state.json()["rows"]) == ("ready", 2), state.text
    path, query = f"/services/{SERVICE}/v1/stream", [("start", "earliest")]
    headers = signed_headers(signer["key_id"], signer["secret"], "GET", path, query)
    with httpx.stream("GET", base + path, params=query, headers=headers, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                assert sorted(event["row"]) == sorted(GRANTED)
                break


def _metric(api, name: str) -> float:
    text = api.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_streams_of_one_topic_share_one_reader_each_with_its_own_grant(base, api, stack_settings, people):
    """Three applications with different grants subscribe to the topic at once: each gets only its
    fields, masked, rows of its own division where it has a row filter, and the API decodes every
    record once for all three (its one reader of the topic, counted in /metrics)."""
    grants = {
        "names": (["id", "name", "phone"], {}),
        "division": (["id", "name", "division_code"], {"division_code": "370102"}),
        "phones": (["id", "phone"], {}),
    }
    keys = {}
    for label, (fields, row_filter) in grants.items():
        r = people["applicant"].post(
            f"/services/{SERVICE}/applications",
            json={"application": f"{APP}_{label}", "version": 1, "purpose": "实时订阅", "fields": FIELDS},
        )
        assert r.status_code == 201, r.text
        r = people["author"].post(
            f"/services/applications/{r.json()['id']}/decision",
            json={"approve": True, "fields": fields, "row_filter": row_filter},
        )
        assert r.status_code == 200, r.text
        keys[label] = r.json()["key"]
    streams = {label: Events(f"{base}/services/{SERVICE}/v1/stream", key) for label, key in keys.items()}
    wait_for_shared = time.time() + 30
    while _metric(api, 'huiliu_service_stream_subscribers{reader="shared"}') < 3 and time.time() < wait_for_shared:
        time.sleep(0.1)
    assert _metric(api, "huiliu_service_stream_readers") == 1
    decoded = _metric(api, "huiliu_service_stream_decoded_records_total")
    _produce(stack_settings, [("c", _person(i)) for i in range(150, 154)] + [("c", _person(154, "370103"))])
    got = {label: stream.wait_for(n) for (label, stream), n in zip(streams.items(), (5, 4, 5), strict=True)}
    time.sleep(0.5)
    for stream in streams.values():
        stream.close()
    rows = {label: [d["row"] for _, _, d in items] for label, items in got.items()}
    assert sorted(r["id"] for r in rows["names"]) == [150, 151, 152, 153, 154]
    assert sorted(r["id"] for r in rows["division"]) == [150, 151, 152, 153]  # 154 is another division's
    assert all(sorted(r) == ["id", "name", "phone"] for r in rows["names"])
    assert all(sorted(r) == ["division_code", "id", "name"] for r in rows["division"])
    assert all(sorted(r) == ["id", "phone"] for r in rows["phones"])
    by_id = {r["id"]: r for r in rows["names"]}
    assert by_id[151]["name"] == "钱*" and by_id[150]["name"] == "欧阳**" and by_id[151]["phone"] == "137****0151"
    assert {r["phone"] for r in rows["phones"]} == {f"137****0{i}" for i in range(150, 155)}
    assert _metric(api, "huiliu_service_stream_decoded_records_total") - decoded == 5  # once, not three times


# -- a subscriber's own derived topic (Kafka-native subscribers) -----------------------------------
def _read_json(stack_settings, topic: str, want: set[int], timeout: float = 60.0) -> list[dict]:
    """The derived topic read from its beginning (assigned, no group: tansu's group joins are slow)
    until the rows `want` arrived or `timeout` passed."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": stack_settings.kafka_bootstrap, "group.id": f"read-{RUN}"})
    out, deadline = [], time.time() + timeout
    try:
        while time.time() < deadline:  # the runner creates the topic
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                break
            time.sleep(0.5)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        while not want <= {e["row"]["id"] for e in out} and time.time() < deadline:
            out += [json.loads(m.value()) for m in consumer.consume(100, 0.5) if not m.error()]
    finally:
        consumer.close()
    return out


def test_a_derived_topic_carries_only_granted_masked_fields_and_stops_on_revoke(stack_settings, people, grant):
    """The runner.subscription plugin copies the clean topic to the application's own topic: granted
    fields only, masked by the service and the catalogue, other divisions' rows left out; revoked,
    it writes nothing more."""
    from streams.dataservices.derived_topics import DerivedTopicConfig, DerivedTopicTask, derived_names

    r = people["applicant"].post(
        f"/services/{SERVICE}/applications",
        json={"application": f"{APP}_kafka", "version": 1, "purpose": "实时核对", "fields": FIELDS},
    )
    assert r.status_code == 201, r.text
    r = people["author"].post(
        f"/services/applications/{r.json()['id']}/decision",
        json={"approve": True, "fields": GRANTED, "row_filter": {"division_code": "370102"}},
    )
    assert r.status_code == 200, r.text
    app = r.json()
    names = derived_names(TOPIC, app)
    # deployed for the workers to run (a connector of the processor plugin in the tenant)
    r = people["reviewer"].post(f"/services/applications/{app['id']}/topic")
    assert r.status_code == 403 and r.json()["detail"]["message_zh"], r.text  # neither applicant nor owner
    r = people["applicant"].post(f"/services/applications/{app['id']}/topic")
    assert r.status_code == 200, r.text
    assert (r.json()["topic"], r.json()["group"]) == (names["topic"], names["group"])
    config = people["author"].get(f"/connectors/{r.json()['connector']}/config")
    assert config.status_code == 200 and config.json()["connector.class"] == "runner.subscription", config.text
    assert config.json()["key_id"] == app["key_id"]
    assert people["author"].delete(f"/connectors/{r.json()['connector']}").status_code in (200, 204)
    task = DerivedTopicTask(DerivedTopicConfig(key_id=app["key_id"], service=SERVICE, version=1), stack_settings)
    stop = threading.Event()
    runner = threading.Thread(target=task.run, args=(stop,), daemon=True)
    runner.start()
    try:
        _produce(stack_settings, [("c", _person(201)), ("c", _person(202, "370103")), ("u", _person(203))])
        seen = _read_json(stack_settings, names["topic"], {201, 203})
        mine = {e["row"]["id"]: e for e in seen if e["row"]["id"] >= 200}
        assert sorted(mine) == [201, 203], seen  # 202 is another division's
        assert all(sorted(e["row"]) == sorted(GRANTED) for e in seen)
        row = mine[201]["row"]
        assert (mine[201]["op"], row["name"], row["phone"], row["division_code"]) == (
            "c",
            "钱*",
            "137****0201",
            "370102",
        )
        assert mine[203]["op"] == "u" and mine[203]["row"]["id"] == 203  # unmasked fields intact
        assert "370102199001011234" not in json.dumps(seen, ensure_ascii=False)
        # revoked: the runner ends before writing anything more
        assert people["applicant"].post(f"/services/applications/{app['id']}/revoke").status_code == 200
        written = task.written
        _produce(stack_settings, [("c", _person(204))])
        runner.join(30)
        assert not runner.is_alive() and task.written == written
    finally:
        stop.set()
        runner.join(30)
