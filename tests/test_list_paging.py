"""Paging and the name filter of `GET /pipelines` and `GET /connectors` over HTTP: `limit` (1..500),
`offset` (>= 0) and `q` (case-insensitive substring of the name), pages by name with the number of
matches in `X-Total-Count`; without them the answer is the whole list as before (no header; for
connectors Kafka Connect's list of names or the expanded object); bad values 422 naming the
parameter; pipeline data grants narrow the pages and the count. The console's lists page them (50)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.identity import PASSWORD, login, make_user, start_keyed_api
from tests.support.pipelines import document

N = 65  # more than the console's page of 50


@pytest.fixture(scope="module", name="stack_settings")
def own_settings(stack_settings, tmp_path_factory):
    """The session's servers, a SQLite control DB of the module's own, and room for 66 connection
    checks (one per connector created)."""
    update = {"state_dir": tmp_path_factory.mktemp("paging-state"), "control_db_url": ""}
    return stack_settings.model_copy(update={**update, "probe_rate_per_minute": 6000.0, "probe_burst": 200})


@pytest.fixture(scope="module")
def api(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    try:
        yield base, seed(base, key)
    finally:  # also when seeding fails: the port is free for the next run
        proc.terminate()
        proc.wait(10)


def seed(base: str, key: str) -> dict:
    """N pipelines and N connectors (every 5th name ends in -Blue) in tenant lp, one of each elsewhere."""
    make_user(base, key, "lp-dev", roles=["developer"], tenant="lp")
    make_user(base, key, "lp-narrow", roles=["viewer"], tenant="lp", grants=["pipeline:lp-04*"])
    make_user(base, key, "lp-other", roles=["developer"], tenant="lp-other")
    for user, names in (
        ("lp-dev", [f"{i:03d}" if i % 5 else f"{i:03d}-Blue" for i in range(N)]),
        ("lp-other", ["elsewhere"]),
    ):
        with httpx.Client(base_url=base, headers=login(base, user), timeout=30) as http:
            for name in names:
                assert http.post("/pipelines", json=document("lp-" + name)).status_code == 201
                config = {"connector.class": "runner.lean", "topics": ["lc-t" + name]}
                body = {"name": "lc-" + name, "config": config, "initial_state": "PAUSED"}
                r = http.post("/connectors", json=body)
                assert r.status_code == 201, r.text
    return login(base, "lp-dev")


def names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()]


def test_pages_by_name_with_total_header(api):
    base, dev = api
    r = httpx.get(base + "/pipelines", headers=dev, params={"limit": 50})
    first = names(r)
    assert len(first) == 50 and r.headers["x-total-count"] == str(N)
    assert first == sorted(first) and "lp-elsewhere" not in first
    assert all("document" in p and "Sup3rSecret" not in str(p["document"]) for p in r.json())
    r = httpx.get(base + "/pipelines", headers=dev, params={"limit": 50, "offset": 50})
    second = names(r)
    assert len(second) == N - 50 and r.headers["x-total-count"] == str(N)
    assert not set(first) & set(second) and first[-1] < second[0]
    r = httpx.get(base + "/pipelines", headers=dev, params={"limit": 10, "offset": 1000})
    assert names(r) == [] and r.headers["x-total-count"] == str(N)


def test_name_filter(api):
    base, dev = api
    r = httpx.get(base + "/pipelines", headers=dev, params={"q": "blue"})  # case-insensitive
    blue = names(r)
    assert len(blue) == 13 and all(n.endswith("-Blue") for n in blue) and r.headers["x-total-count"] == "13"
    r = httpx.get(base + "/pipelines", headers=dev, params={"q": "blue", "limit": 5, "offset": 10})
    assert names(r) == blue[10:] and r.headers["x-total-count"] == "13"
    r = httpx.get(base + "/pipelines", headers=dev, params={"q": "%"})  # no wildcards
    assert names(r) == [] and r.headers["x-total-count"] == "0"


def test_unpaged_answer_unchanged(api):
    base, dev = api
    r = httpx.get(base + "/pipelines", headers=dev)
    assert len(names(r)) == N and "x-total-count" not in r.headers
    assert set(r.json()[0]) == {"name", "tenant", "owner", "version", "updated_at", "updated_by", "document"}


@pytest.mark.parametrize(
    "params, name",
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"), ({"offset": -1}, "offset")],
)
def test_bad_values_422_name_the_parameter(api, params, name):
    base, dev = api
    r = httpx.get(base + "/pipelines", headers=dev, params=params)
    assert r.status_code == 422
    assert any(e["loc"][-1] == name for e in r.json()["detail"]), r.text


def test_data_grants_narrow_pages_and_count(api):
    base, _ = api
    narrow = login(base, "lp-narrow")
    everything = names(httpx.get(base + "/pipelines", headers=narrow))
    assert len(everything) == 10 and all(n.startswith("lp-04") for n in everything)
    r = httpx.get(base + "/pipelines", headers=narrow, params={"limit": 4, "offset": 2})
    assert names(r) == everything[2:6] and r.headers["x-total-count"] == str(len(everything))


def test_console_pages_of_50(api):
    base, _ = api
    with httpx.Client(base_url=base, timeout=30) as http:
        page = http.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"username": "lp-dev", "password": PASSWORD, "csrf_token": token}
        assert http.post("/console/login", data=form).status_code in (200, 303)
        assert "huiliu_session" in http.cookies
        first = http.get("/console/pipelines").text
        assert first.count('<tr><th scope="row">') == 50 and 'id="pipelines-next"' in first
        assert 'id="pipelines-prev"' not in first
        second = http.get("/console/pipelines", params={"offset": 50}).text
        assert second.count('<tr><th scope="row">') == N - 50 and 'id="pipelines-prev"' in second
        assert 'id="pipelines-next"' not in second
        blue = http.get("/console/pipelines", params={"q": "Blue"}).text
        assert blue.count('<tr><th scope="row">') == 13 and 'value="Blue"' in blue


def test_connectors_pages_by_name_with_total_header(api):
    base, dev = api
    r = httpx.get(base + "/connectors", headers=dev, params={"limit": 50})
    assert r.status_code == 200 and r.headers["x-total-count"] == str(N)
    first = r.json()
    assert len(first) == 50 and first == sorted(first) and all(isinstance(n, str) for n in first)
    r = httpx.get(base + "/connectors", headers=dev, params={"limit": 50, "offset": 50})
    second = r.json()
    assert len(second) == N - 50 and first[-1] < second[0] and r.headers["x-total-count"] == str(N)
    params = [("expand", "status"), ("expand", "info"), ("limit", 50), ("offset", 50)]
    r = httpx.get(base + "/connectors", headers=dev, params=params)
    expanded = r.json()
    assert r.headers["x-total-count"] == str(N) and sorted(expanded) == second
    entry = expanded[second[0]]
    assert (
        entry["status"]["connector"]["state"] == "PAUSED"
        and entry["info"]["config"]["connector.class"] == "runner.lean"
    )


def test_connectors_filter_and_unchanged_unpaged_shape(api):
    base, dev = api
    r = httpx.get(base + "/connectors", headers=dev, params={"q": "BLUE", "limit": 5, "offset": 10})
    assert r.json() == [f"lc-{i:03d}-Blue" for i in range(50, N, 5)] and r.headers["x-total-count"] == "13"
    r = httpx.get(base + "/connectors", headers=dev, params=[("q", "blue"), ("expand", "status")])
    assert len(r.json()) == 13 and r.headers["x-total-count"] == "13"
    r = httpx.get(base + "/connectors", headers=dev)
    assert "x-total-count" not in r.headers and isinstance(r.json(), list) and len(r.json()) == N
    assert "lc-elsewhere" not in r.json()
    r = httpx.get(base + "/connectors", headers=dev, params={"expand": "status"})
    assert "x-total-count" not in r.headers and isinstance(r.json(), dict) and len(r.json()) == N


@pytest.mark.parametrize(
    "params, name",
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"), ({"offset": -1}, "offset")],
)
def test_connectors_bad_values_422_name_the_parameter(api, params, name):
    base, dev = api
    r = httpx.get(base + "/connectors", headers=dev, params=params)
    assert r.status_code == 422 and r.json()["error_code"] == 422
    assert f"query.{name}" in r.json()["message"], r.text


def test_console_connectors_pages_of_50(api):
    base, _ = api
    with httpx.Client(base_url=base, timeout=30) as http:
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/login").text).group(1)
        assert http.post("/console/login", data={"username": "lp-dev", "password": PASSWORD, "csrf_token": token})
        first = http.get("/console/connectors").text
        assert first.count('data-connector="') == 50
        assert 'id="connectors-next"' in first and 'id="connectors-prev"' not in first
        second = http.get("/console/connectors", params={"offset": 50}).text
        assert 'id="connectors-prev"' in second and 'id="connectors-next"' not in second
        assert "lc-064" in second and "lc-001" not in second
        blue = http.get("/console/connectors", params={"q": "Blue"}).text
        assert "lc-005-Blue" in blue and "lc-001<" not in blue and 'value="Blue"' in blue


@pytest.mark.parametrize("q", ["a\x00b", "%_\\", "'; drop table pipelines; --", "x" * 201])
def test_odd_filters_never_a_server_error(api, q):
    base, dev = api
    for path in ("/pipelines", "/connectors"):
        r = httpx.get(base + path, headers=dev, params={"q": q, "limit": 5})
        assert r.status_code in (200, 422), (path, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json() in ([], {}) and r.headers["x-total-count"] == "0"
