"""`huiliu demo`, second part: what the platform does with the table the pipeline loaded, done through
the API's own routes (in-process over the ASGI transport: the same sign-in, permission checks, tenant
scope and audit as any caller), as three people of the console's tenant:

- demo-admin (the console's demo sign-in) registers the pipeline and its ClickHouse table, harvests
  the table into the metadata catalogue, confirms what sensitive-data detection proposes as the
  fields' classification, writes a data service over the table and decides applications;
- demo-reviewer (role demo_service_reviewer) reviews and publishes the service;
- demo-applicant (role demo_app_developer) applies for it with every field and gets fewer.

Two calls with the application's key then answer rows masked by the fields' classification, the
second from the service's answer cache (`X-Huiliu-Cache: hit`).

    api = start_api(settings)          # in a thread while the pipeline runs: building the app takes seconds
    outcome = show_platform(api.result(), settings, pipeline_document, table)
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlencode

from deploy.settings import Settings

SERVICE = "population"
APPLICATION = "civil_affairs_portal"
CONNECTOR = "demo-population-clickhouse"
# Classification level -> mask for every field the service does not mask by name: identity numbers
# keep their region and check digits, other sensitive text its first characters (a name its surname).
LEVEL_MASKS = {"secret": {"fn": "keep", "first": 6, "last": 4}, "sensitive": {"fn": "keep", "first": 3, "last": 2}}
ROLES = {
    "demo_service_reviewer": ["services:review", "services:apply", "metadata:view"],
    "demo_app_developer": ["services:apply", "metadata:view"],
}
PEOPLE = {"demo-reviewer": "demo_service_reviewer", "demo-applicant": "demo_app_developer"}


class DemoStepFailed(RuntimeError):
    """A route answered what the demo did not expect: names the step and the answer."""


def start_api(settings: Settings) -> Future:
    """Build the API app in a thread (imports and router discovery take seconds)."""

    def build():
        from api.app import create_app

        return create_app(settings)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-api")
    future = pool.submit(build)
    pool.shutdown(wait=False)
    return future


class Caller:
    """One person's requests through the in-process API; an unexpected status raises DemoStepFailed."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 202), **kwargs):
        response = self.client.request(method, path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        if response.status_code not in ok:
            raise DemoStepFailed(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response

    def signed_in_as(self, user: str, password: str) -> Caller:
        token = self.call("POST", "/auth/token", data={"username": user, "password": password}).json()["access_token"]
        return Caller(self.client, token)


def _people(admin: Caller, client) -> dict[str, Caller]:
    """The reviewer and the applicant, each with only the permissions their part needs; on a later run
    they exist already and get a new password (nobody signs in as them but the demo)."""
    for role, permissions in ROLES.items():
        admin.call("POST", "/roles", ok=(201, 409), json={"name": role, "permissions": permissions})
    out = {}
    for user, role in PEOPLE.items():
        password = "hl-" + secrets.token_urlsafe(16)
        body = {"username": user, "password": password, "roles": [role], "display_name": user.replace("-", " ")}
        if admin.call("POST", "/users", ok=(201, 409), json=body).status_code == 409:
            admin.call("PATCH", f"/users/{user}", json={"password": password, "roles": [role]})
        out[user] = Caller(client).signed_in_as(user, password)
    return out


def _register(admin: Caller, settings: Settings, document: dict, table: str, topic: str) -> None:
    """The pipeline (for its pages and its quarantine browser) and its ClickHouse table as a stopped
    sink connector: what a harvest reads. Both are kept from an earlier run."""
    if admin.call("GET", f"/pipelines/{document['name']}", ok=(200, 404)).status_code == 404:
        admin.call("POST", "/pipelines", json=document)
    if admin.call("GET", f"/connectors/{CONNECTOR}", ok=(200, 404)).status_code == 404:
        config = {"connector.class": "clickhouse", "topics": [topic], "table": table, "url": settings.clickhouse_url}
        admin.call("POST", "/connectors", json={"name": CONNECTOR, "config": config, "initial_state": "STOPPED"})


def _harvest(admin: Caller, table: str) -> dict:
    """Harvest the table (a message-centre job), then the dataset as the catalogue holds it."""
    job_id = admin.call("POST", "/metadata/harvest", json={"connectors": [CONNECTOR]}).json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := admin.call("GET", f"/jobs/{job_id}").json())["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise DemoStepFailed(f"the harvest job {job_id} did not finish in 60 s")
        time.sleep(0.1)
    if job["state"] != "succeeded" or job["result"]["errors"]:
        raise DemoStepFailed(f"harvest: {job.get('error') or job['result']['errors']}")
    datasets = admin.call("GET", "/metadata/datasets", params={"kind": "sink_table", "limit": 500}).json()["items"]
    urn = next((d["urn"] for d in datasets if d["name"].rsplit(".", 1)[-1] == table), None)
    if urn is None:
        raise DemoStepFailed(f"harvest: no catalogue dataset for table {table}")
    return admin.call("GET", f"/metadata/datasets/{quote(urn, safe='')}").json()


def _classify(admin: Caller, urn: str) -> list[dict]:
    """Sensitive-data detection samples the table; its proposals are confirmed as the fields'
    classification (what a steward does on the console's detection page)."""
    findings = admin.call("POST", "/detection/scan", json={"dataset": urn}).json()["findings"]
    if findings:
        levels = {f["field"]: {"classification": f["classification"], "kind": f["kind"]} for f in findings}
        admin.call("POST", "/detection/confirm", json={"dataset": urn, "fields": levels})
    return findings


def _publish(admin: Caller, reviewer: Caller, dataset: dict, table: str, fields: list[str]) -> dict:
    """Write the service, submit it, have another person publish it; earlier published versions go
    offline (a later demo run publishes the next version)."""
    earlier = admin.call("GET", f"/services/{SERVICE}/versions", ok=(200, 404))
    if earlier.status_code == 200 and any(v["status"] == "in_review" for v in earlier.json()):
        # an interrupted earlier run: back to draft, so this run's document can be saved
        reviewer.call("POST", f"/services/{SERVICE}/review", json={"approve": False, "comment": "demo rerun"})
    document = {
        "name": SERVICE,
        "title": "人口基本信息查询",
        "description": "Population register, served to approved applications (demo)",
        "resource": {"kind": "clickhouse", "table": table},
        "fields": fields,
        "filters": [{"field": "division_code", "ops": ["eq", "in"]}, {"field": "person_id", "ops": ["eq", "range"]}],
        "sort": ["person_id"],
        "default_limit": 10,
        "max_limit": 100,
        "dataset": dataset["urn"],
        "classification_masking": LEVEL_MASKS,
        "cache_ttl_s": 60,
    }
    version = admin.call("POST", "/services", json=document).json()["version"]
    admin.call("POST", f"/services/{SERVICE}/submit")
    review = {"approve": True, "comment": "字段分级已确认"}
    published = reviewer.call("POST", f"/services/{SERVICE}/review", json=review).json()
    for old in admin.call("GET", f"/services/{SERVICE}/versions").json():
        if old["status"] == "published" and old["version"] != version:
            reviewer.call("POST", f"/services/{SERVICE}/v{old['version']}/offline")
    return published


def _grant(admin: Caller, applicant: Caller, version: int, fields: list[str], granted: list[str]) -> dict:
    """The applicant asks for every field; the owner approves fewer: the app key is in this answer only."""
    body = {"application": APPLICATION, "version": version, "purpose": "低保资格核查 (demo)", "fields": fields}
    app_id = applicant.call("POST", f"/services/{SERVICE}/applications", json=body).json()["id"]
    decision = {"approve": True, "fields": granted, "comment": "按最小必要原则"}
    return admin.call("POST", f"/services/applications/{app_id}/decision", json=decision).json()


def _calls(client, key: str, version: int) -> list[dict]:
    """The same query twice with the app key: the second is answered from the service's cache."""
    out = []
    for _ in range(2):
        started = time.perf_counter()
        r = client.get(f"/services/{SERVICE}/v{version}", params={"limit": 2}, headers={"X-App-Key": key})
        out.append(
            {
                "status": r.status_code,
                "cache": r.headers.get("x-huiliu-cache", ""),
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "rows": r.json().get("rows", []) if r.status_code == 200 else [],
                "refusal": "" if r.status_code == 200 else r.text[:300],
            }
        )
    return out


def show_platform(app, settings: Settings, document: dict, table: str, topic: str) -> dict[str, Any]:
    """Every step above against `app` (from start_api) for the pipeline `document` whose sink wrote
    `table` from the clean `topic`; returns what the summary prints."""
    from fastapi.testclient import TestClient

    from api.console.demo_login import demo_login

    user, password, _ = demo_login(settings)
    document = {**document, "tenant": settings.default_tenant or "default"}  # the console sign-in's tenant
    with TestClient(app, base_url=f"http://{settings.api_host}:{settings.api_port}") as client:
        admin = Caller(client).signed_in_as(user, password)
        people = _people(admin, client)
        _register(admin, settings, document, table, topic)
        dataset = _harvest(admin, table)
        findings = _classify(admin, dataset["urn"])
        dataset = admin.call("GET", f"/metadata/datasets/{quote(dataset['urn'], safe='')}").json()
        fields = [f["name"] for f in dataset["fields"] if not f["name"].startswith("_")]
        granted = [f for f in fields if f not in ("gender_code", "birth_date", "updated_at")]
        out = {
            "dataset": dataset,
            "findings": findings,
            "console": console_links(settings, dataset["urn"], document["name"]),
        }
        out["skipped"] = redis_missing(settings)
        if out["skipped"]:
            return out
        service = _publish(admin, people["demo-reviewer"], dataset, table, fields)
        grant = _grant(admin, people["demo-applicant"], service["version"], fields, granted)
        out["calls"] = _calls(client, grant["key"], service["version"])
    out["service"] = {**service, "asked": fields, "granted": grant["fields_granted"]}
    out["application"] = APPLICATION
    return out


def redis_missing(settings: Settings) -> str:
    """Why the data-service part cannot run ("" when it can): the services' change counter and every
    call's rate limit live in Redis, which a fresh machine may not have."""
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        return ""
    except redis.RedisError as exc:
        return (
            f"Redis not answering at {settings.redis_url.split('@')[-1]} ({type(exc).__name__}): data services need it"
        )
    finally:
        client.close()


def console_links(settings: Settings, urn: str, pipeline: str) -> dict[str, str]:
    """The console pages of the dataset, the service and the pipeline's quarantine."""
    base = f"http://{settings.api_host}:{settings.api_port}/console"
    return {
        "dataset": f"{base}/catalog/dataset?{urlencode({'urn': urn})}",
        "service": f"{base}/services/{SERVICE}",
        "quarantine": f"{base}/quality/quarantine?{urlencode({'pipeline': pipeline})}",
    }
