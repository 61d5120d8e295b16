"""Connection probes: a connector's live check (and a capture job) connects where the caller says.
Outside the allow-list it must be refused before connecting -- quickly, and with the same answer
whether anything listens there or not, so the API is neither a port scanner nor a way into the
cloud metadata service or a private network.
"""

from __future__ import annotations

import time

import pytest

from tests.security.world import RUN, B, pipeline_document

pytestmark = pytest.mark.security

TARGETS = {
    "cloud metadata": "169.254.169.254:80",
    "unroutable private address": "10.255.255.1:5432",
    "local ssh port": "127.0.0.1:22",
    "local closed port": "127.0.0.1:1",
}


def _config(hostport: str) -> dict:
    return {
        "connector.class": "relational.timestamp",
        "url": f"postgresql+psycopg://etl:pw@{hostport}/civil",
        "system": f"pr{RUN}",
        "table": "population",
        "timestamp_column": "updated_at",
    }


@pytest.mark.parametrize("label", list(TARGETS))
def test_live_checks_outside_the_allow_list_are_refused_without_connecting(world, label):
    hostport, dev, problems = TARGETS[label], world.b.headers["developer"], []
    started = time.monotonic()
    v = world.call(dev, "PUT", "/connector-plugins/relational.timestamp/config/validate", json=_config(hostport))
    took = time.monotonic() - started
    if v.status_code == 200 and v.json().get("error_count", 0) == 0:
        problems.append(f"validate {hostport}: no error")
    if v.status_code >= 500:
        problems.append(f"validate {hostport}: {v.status_code}")
    if took > 2.5:
        problems.append(f"validate {hostport}: took {took:.1f}s (it tried to connect)")
    if any(word in v.text.lower() for word in ("connection refused", "timed out", "timeout expired", "no route")):
        problems.append(f"validate {hostport}: the answer tells what is there: {v.text[:300]}")
    name = f"{B}-probe-{list(TARGETS).index(label)}"
    r = world.call(dev, "POST", "/connectors", json={"name": name, "config": _config(hostport)})
    if 200 <= r.status_code < 300:
        problems.append(f"POST /connectors to {hostport}: created")
        world.op("DELETE", f"/connectors/{name}")
    doc = pipeline_document(f"{B}-probe", "pw")
    doc["source"]["config"]["url"] = f"postgresql+psycopg://etl:pw@{hostport}/civil"
    j = world.call(
        world.b.headers["operator"], "POST", "/jobs", json={"action": "pipeline.capture", "params": {"document": doc}}
    )
    if j.status_code not in (400, 403, 422, 429):
        problems.append(f"POST /jobs capture from {hostport}: {j.status_code} (expected a refusal)")
    assert not problems, "\n".join(problems)


def test_an_open_and_a_closed_local_port_answer_alike(world):
    """127.0.0.1:22 (maybe open) and 127.0.0.1:1 (closed): the same answer but for the port."""
    dev, answers = world.b.headers["developer"], []
    for port in (22, 1):
        r = world.call(
            dev, "PUT", "/connector-plugins/relational.timestamp/config/validate", json=_config(f"127.0.0.1:{port}")
        )
        answers.append((r.status_code, r.text.replace(f"127.0.0.1:{port}", "<target>")))
    assert answers[0] == answers[1], f"different answers:\n{answers[0]}\n{answers[1]}"


def test_live_checks_are_rate_limited_per_principal(world, sec_settings):
    """With the default limits (the package's own API runs with them raised), a second API process
    on the same state answers 429 with Retry-After once a principal has used its burst of live
    checks (checks refused by the allow-list connect nowhere and are not counted)."""
    from deploy.settings import Settings
    from tests.api_process import start_api, stop_api
    from tests.conftest import PORT_BASE

    limits = {"probe_rate_per_minute": 12.0, "probe_burst": 6}
    missing = [k for k in limits if k not in Settings.model_fields]
    assert not missing, f"no setting for a live-check rate limit: {missing}"
    settings = sec_settings.model_copy(update={**limits, "api_port": PORT_BASE + 301})
    proc, base = start_api(settings)
    try:
        prober = world.b.headers["developer"]
        codes, retry_after = [], None
        for _ in range(limits["probe_burst"] + 4):
            r = world.client.put(
                base + "/connector-plugins/relational.timestamp/config/validate",
                headers=prober,
                json=_config("127.0.0.1:5432"),  # allowed (local PostgreSQL port): a real live check
            )
            codes.append(r.status_code)
            if r.status_code == 429:
                retry_after = r.headers.get("retry-after")
                break
        assert 429 in codes, f"no 429 after {len(codes)} live checks in a row: {codes}"
        assert retry_after and int(retry_after) > 0, "429 without Retry-After"
    finally:
        stop_api(proc)
