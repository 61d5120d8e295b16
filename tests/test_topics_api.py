"""Topics API (issue 18, for the console's topic browser) over real HTTP, the session's broker (tansu)
and schema registry: a developer's files connector names a topic; the test gives it two partitions,
registers two versions of its value schema and produces Avro records in one batch per partition
(tansu's high watermark is then below the end: the end offsets must come from the tail read). The
topic is harvested into the catalogue through the API and two fields classified.

Checks: the list shows the topic with its partitions and true end offsets, only to its tenant; the
detail lists the subject's versions; the diff of v1 and v2 names the added field; messages page by
offset and decode, masked by classification for a reader with data:view (secret redacted,
sensitive partly hidden) and entirely for a viewer; bad input answers 4xx naming the parameter.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from schemas.naming import value_subject
from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.identity import login, make_user
from tests.support.topics import tenant_topic

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:6]
TENANT, OTHER_TENANT = f"tpa{RUN}", f"tpb{RUN}"
DEV, VIEWER, OTHER = f"tp-dev-{RUN}", f"tp-viewer-{RUN}", f"tp-other-{RUN}"
SYSTEM = f"tpsys{RUN}"
CONNECTOR = f"tp-files-{RUN}"
PER_PARTITION = {0: 5, 1: 3}


@pytest.fixture(scope="module")
def world(stack_settings):
    settings = stack_settings
    proc, base = start_api(settings, port=PORT_BASE + 410)
    key = (settings.state_dir / "api_key").read_text().strip()
    try:
        make_user(base, key, DEV, ["developer"], tenant=TENANT)
        make_user(base, key, VIEWER, ["viewer"], tenant=TENANT)
        make_user(base, key, OTHER, ["admin"], tenant=OTHER_TENANT)
        dev, viewer, other = login(base, DEV), login(base, VIEWER), login(base, OTHER)
        topic = tenant_topic(settings, base, key, dev, TENANT, SYSTEM, CONNECTOR, PER_PARTITION)
        yield {"base": base, "dev": dev, "viewer": viewer, "other": other, "topic": topic}
    finally:
        stop_api(proc)


def test_list_shows_own_topics_with_true_end_offsets(world):
    base, topic = world["base"], world["topic"]
    r = httpx.get(f"{base}/topics", headers=world["dev"], params={"q": SYSTEM}, timeout=60)
    assert r.status_code == 200, r.text
    items = {i["name"]: i for i in r.json()["items"]}
    assert list(items) == [topic]
    parts = {p["partition"]: p for p in items[topic]["partitions"]}
    assert {p: parts[p]["end"] - parts[p]["start"] for p in parts} == PER_PARTITION
    assert items[topic]["messages"] == sum(PER_PARTITION.values())
    # another tenant neither lists nor opens it
    r = httpx.get(f"{base}/topics", headers=world["other"], timeout=60)
    assert r.status_code == 200 and topic not in {i["name"] for i in r.json()["items"]}
    for path in (f"/topics/{topic}", f"/topics/{topic}/messages", f"/topics/{topic}/schema/diff?from=1&to=2"):
        r = httpx.get(base + path, headers=world["other"], timeout=60)
        assert r.status_code == 404, (path, r.text)
        assert "没有主题" in r.json()["detail"]


def test_detail_versions_and_diff(world):
    base, topic, dev = world["base"], world["topic"], world["dev"]
    r = httpx.get(f"{base}/topics/{topic}", headers=dev, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["versions"] == [1, 2] and body["subject"] == value_subject(topic)
    assert [f["name"] for f in body["latest"]["fields"]] == ["id", "citizen_id", "name", "phone"]
    r = httpx.get(f"{base}/topics/{topic}/schema/diff", headers=dev, params={"from": 1, "to": 2})
    assert r.status_code == 200, r.text
    assert [f["name"] for f in r.json()["diff"]["added"]] == ["phone"] and not r.json()["diff"]["removed"]
    r = httpx.get(f"{base}/topics/{topic}/schema/diff", headers=dev, params={"from": 1, "to": 9})
    assert r.status_code == 404 and "no schema version 9" in r.json()["detail"]
    r = httpx.get(f"{base}/topics/{topic}/schema/diff", headers=dev, params={"from": 0, "to": 2})
    assert r.status_code == 422 and "from" in r.text


def test_messages_page_decode_and_mask_by_classification(world):
    base, topic, dev = world["base"], world["topic"], world["dev"]
    r = httpx.get(f"{base}/topics/{topic}/messages", headers=dev, params={"partition": 0, "limit": 2}, timeout=60)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["offset"] for i in page["items"]] == [0, 1] and page["next"] == 2
    first, second = page["items"][0]["value"], page["items"][1]["value"]
    assert first == {"id": 1, "citizen_id": "*" * 18, "name": "张三1"}  # v1: no phone; secret redacted
    assert second["phone"] == "1" + "*" * 9 + "2"  # sensitive: first and last kept
    assert page["items"][0]["key"] == "1" and page["masked"] == "classification"
    r = httpx.get(f"{base}/topics/{topic}/messages", headers=dev, params={"partition": 0, "offset": 2, "limit": 10})
    assert [i["offset"] for i in r.json()["items"]] == [2, 3, 4] and r.json()["at_end"]
    # a viewer (no data:view) sees no value at all
    r = httpx.get(f"{base}/topics/{topic}/messages", headers=world["viewer"], params={"partition": 1}, timeout=60)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == PER_PARTITION[1] and r.json()["masked"] == "all"
    assert all(set(i["value"].values()) <= {"****", None} and i["key"] == "****" for i in items)


def test_bad_input_names_the_parameter(world):
    base, topic, dev = world["base"], world["topic"], world["dev"]
    r = httpx.get(f"{base}/topics/{topic}/messages", headers=dev, params={"partition": 7}, timeout=60)
    assert r.status_code == 422 and "partition" in r.json()["detail"] and "分区" in r.json()["detail"]
    r = httpx.get(f"{base}/topics/{topic}/messages", headers=dev, params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.text
    r = httpx.get(f"{base}/topics/bad name!", headers=dev)
    assert r.status_code == 422
    assert httpx.get(f"{base}/topics").status_code == 401
