"""Tenant b attacks tenant a through every route of the API.

For each route declared in api/tenancy_rules.py (test_tenancy_rules.py checks that this is every
route of the running API's /openapi.json) and each of tenant b's principals (a user of every
built-in role, a user manager, an admin API key), the route is called with tenant a's objects in
its path (and, for creating routes, a body naming tenant a or tenant a's objects). The route's rule
says what must come back; in every case no secret (key files, tenant a's passwords) may be in the
answer, and tenant a's objects, read by tenant a's admin before and after, must be unchanged.
An attack that changed or removed an object is reported and the object restored for later cases.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, unquote

import httpx
import pytest

from api.tenancy_rules import ROUTES, RULES
from quality_stream.governance.excel import export_elements
from schemas.naming import topic_name
from tests.security.world import ATTACKERS, PASSWORD, A, B, files_config, pipeline_document, tenant_root

pytestmark = pytest.mark.security

# Which of tenant a's objects a route can touch (by its first path segment): compared before/after.
KINDS_OF = {
    "pipelines": ("pipeline",),
    "connectors": ("connector", "import"),
    "imports": ("import", "connector"),
    "users": ("user",),
    "groups": ("group",),
    "roles": ("role",),
    "api-keys": ("apikey",),
    "jobs": ("job",),
    "messages": ("message",),
    "schedules": ("schedule",),
    "schedule-runs": ("schedule",),
    "alerts": ("alert", "message"),
    "auth": ("user",),
    "metadata": ("dataset",),
    "lineage": ("dataset",),
    "impact": ("dataset",),
    "impact-exports": ("dataset", "job"),
    "standards": ("standard",),
    "quality": ("pipeline", "report", "ticket"),
}


def segment(template: str) -> str:
    return template.strip("/").split("/")[0]


GHOSTS = {
    "import": 987654321,
    "message": 987654321,
    "schema_change": 987654321,
    "dataset": f"hl:dataset:kafka://127.0.0.1:9/{A}-ghost",
    "review": 987654321,
    "service": f"{A}_ghost_svc",
    "application": 987654321,
    "report": 987654321,
    "subscription": 987654321,
    "ticket": 987654321,
    "access_request": 987654321,
}  # ids no object has (others: a name no object has)


def _a_topic(world) -> str:
    """The topic tenant a's files connector writes."""
    config = world.a_connector_config
    return topic_name(world.settings.topic_prefix, config["system"], None, config["table"])


def fill(world, template: str, ghost: bool = False) -> str:
    """The template with tenant a's object ids in its path parameters; `ghost`: with ids of objects
    that exist nowhere instead (the answer for tenant a's object must not differ from that)."""
    o, seg = world.a.objects, segment(template)
    if ghost:
        o = {k: GHOSTS.get(k, f"{A}-ghost-{k}") for k in o}
    values = {
        ("pipelines", "name"): o["pipeline"],
        ("pipelines", "version"): 1,
        ("connectors", "name"): o["connector"],
        ("connectors", "task"): 0,
        ("connectors", "change_id"): o["schema_change"],
        ("connector-plugins", "plugin"): "files",
        ("users", "username"): o["victim"],
        ("groups", "name"): o["group"],
        ("roles", "name"): o["role"],
        ("api-keys", "key_id"): o["apikey"],
        ("imports", "import_id"): o["import"],
        ("jobs", "job_id"): o["job"],
        ("messages", "mid"): o["message"],
        ("schedules", "sid"): o["schedule"],
        ("schedule-runs", "run_id"): o["run"],
        ("alerts", "rid"): o["rule"],
        ("metadata", "urn"): o["dataset"],
        ("metadata", "version"): 1,
        ("lineage", "urn"): o["dataset"],
        ("impact", "urn"): o["dataset"],
        ("impact-exports", "job_id"): o["job"],
        ("standards", "code"): o["standard"],
        ("standards", "rid"): o["review"],
        ("services", "name"): o["service"],
        ("services", "version"): 1,
        ("services", "app_id"): o["application"],
        ("access-requests", "request_id"): o["access_request"],
        ("service-downloads", "download_id"): o["download"],
        ("quality", "report_id"): o["report"],
        ("quality", "subscription_id"): o["subscription"],
        ("quality", "ticket_id"): o["ticket"],
        ("topics", "name"): f"{A}-ghost-topic" if ghost else _a_topic(world),
    }

    def one(m: re.Match) -> str:
        key = (seg, m.group(1))
        if key not in values:
            pytest.fail(f"{template}: no tenant-a value for path parameter {m.group(1)!r}; add it to fill()")
        return quote(str(values[key]), safe="")

    return re.sub(r"\{([^}]+)\}", one, template)


def has_tenant_field(openapi: dict, method: str, template: str) -> bool:
    """The operation's JSON body schema has a `tenant` property (or takes any object)."""
    op = openapi["paths"][template][method.lower()]
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return "tenant" in schema.get("properties", {}) or (
        schema.get("type") == "object" and not schema.get("properties") and schema.get("additionalProperties", True)
    )


def b_files_config(world, who: str) -> dict:
    return files_config(tenant_root(world.settings, B), f"sb{who}", f"t_{who}")


def attack(world, openapi, method: str, template: str, who: str) -> tuple[str, dict, bool]:
    """(path, request keywords, whether the body names tenant a or its objects) for one attack."""
    o, route = world.a.objects, f"{method} {template}"
    path = fill(world, template)
    mine = f"{B}-{who}-x"  # names of objects tenant b's attacker creates
    tenant = {"tenant": A} if has_tenant_field(openapi, method, template) else {}
    bodies: dict[str, tuple[dict, bool]] = {
        # creating: the body names tenant a, or tenant a's objects
        "POST /pipelines": ({"json": pipeline_document(mine, "x", tenant=A)}, True),
        # a free-form body: a `tenant` key may be ignored, but the connector must not land in tenant a
        "POST /connectors": ({"json": {"name": mine, "config": b_files_config(world, who), **tenant}}, False),
        "POST /imports": ({"json": {"connector": o["connector"], "path": "manual/a.csv"}}, True),
        "POST /users": ({"json": {"username": mine, "password": PASSWORD, "tenant": A, "roles": ["viewer"]}}, True),
        "POST /groups": ({"json": {"name": mine, "tenant": A, "roles": []}}, True),
        "POST /roles": ({"json": {"name": mine, "permissions": ["pipeline:view"], **tenant}}, bool(tenant)),
        "POST /api-keys": ({"json": {"name": mine, "tenant": A, "roles": ["viewer"]}}, True),
        "POST /jobs": ({"json": {"action": "noop", "params": {}, **tenant}}, bool(tenant)),
        "POST /schedules": (
            {"json": {"name": mine, "action": "noop", "params": {}, "depends_on": [o["schedule"]], **tenant}},
            True,
        ),
        "POST /alerts/rules": (
            {"json": {"name": mine, "kind": "task_failed", "params": {}, "interval_seconds": 86400, **tenant}},
            bool(tenant),
        ),
        # changing tenant a's objects
        "PUT /pipelines/{name}": (
            {
                "json": pipeline_document(o["pipeline"], "x", description="changed by tenant b"),
                "headers": {"If-Match": '"1"'},
                "params": {"version": _version(world)},
            },
            True,
        ),
        "POST /pipelines/{name}/rollback": ({"json": {"version": 1}}, True),
        "PUT /connectors/{name}/config": ({"json": b_files_config(world, who)}, True),
        "POST /connectors/{name}/snapshot": ({"json": {"tables": []}}, True),
        "POST /connectors/{name}/schema-changes/{change_id}/accept": ({"json": {"mode": "new_version"}}, True),
        "PATCH /users/{username}": ({"json": {"display_name": "changed by tenant b", "disabled": True}}, True),
        "PATCH /groups/{name}": ({"json": {"description": "changed by tenant b", "roles": ["viewer"]}}, True),
        "PATCH /roles/{name}": ({"json": {"description": "changed by tenant b", "permissions": ["ops:view"]}}, True),
        "PATCH /api-keys/{key_id}": ({"json": {"owner": f"{B}-admin"}}, True),
        "PATCH /schedules/{sid}": ({"json": {"enabled": False}}, True),
        "POST /schedules/{sid}/trigger": ({"json": {"key": f"b-{who}"}}, True),
        "PATCH /alerts/rules/{rid}": ({"json": {"enabled": False, "throttle_seconds": 1}}, True),
        # a config reading tenant a's file area
        "PUT /connector-plugins/{plugin}/config/validate": (
            {"json": files_config(tenant_root(world.settings, A), f"sb{who}", "probe", pattern="manual/*.csv")},
            True,
        ),
        "POST /auth/token": ({"data": {"username": o["victim"], "password": "Wrong-Password-1234"}}, True),
        # searches filtered by tenant a's objects, and full lists
        "GET /pipelines/{name}/diff": ({"params": {"from": 1, "to": 1}}, True),
        "GET /topics/{name}/schema/diff": ({"params": {"from": 1, "to": 1}}, True),
        "GET /metadata/datasets/{urn}/diff": ({"params": {"from": 1, "to": 1}}, True),
        "PATCH /metadata/datasets/{urn}": ({"json": {"description": "changed by tenant b"}}, True),
        "POST /metadata/harvest": ({"json": {"connectors": [o["connector"]]}}, True),
        "GET /metadata/search": ({"params": {"q": A[2:]}}, False),  # the run id: in tenant a's topic names
        # lineage reported by tenant b about the dataset tenant a catalogued: b's own copy, a's untouched
        "POST /lineage/edges": (
            {"json": {"job": f"b-{who}", "edges": [{"source": o["dataset"], "target": f"{o['dataset']}-b"}]}},
            False,
        ),
        "POST /api/v1/lineage": (
            {"json": {"job": {"namespace": "b", "name": who}, "inputs": [_ol(o["dataset"])], "outputs": []}},
            False,
        ),
        # a Flink job of tenant b reading the topic tenant a catalogued: b's own copy, a's untouched
        "POST /lineage/flink-jobs": ({"json": {"name": f"b-{who}", "config": _flink(o["dataset"])}}, False),
        # an impact export of tenant a's dataset: unknown to tenant b
        "POST /impact-exports": ({"json": {"urn": o["dataset"]}}, True),
        "GET /imports": ({"params": {"connector": o["connector"]}}, True),
        "GET /messages": ({"params": {"rule": o["rule"], "limit": 1000}}, True),
        "GET /connectors": ({"params": {"expand": ["info", "status"]}}, False),
        "GET /audit": ({"params": {"limit": 1000}}, False),
        "GET /logs": ({"params": {"limit": 5000}}, False),
        "GET /jobs": ({"params": {"limit": 1000}}, False),
        "GET /alerts/rules": ({}, False),
        # data standards: codes and reviews of tenant a in paths and bodies
        "POST /standards/elements": ({"json": {"code": mine, "name_zh": "乙方数据元"}}, False),
        "POST /standards/code-sets": (
            {"json": {"code": mine, "name": "乙方代码集", "items": [{"code": "1", "label": "x"}]}},
            False,
        ),
        "PATCH /standards/elements/{code}": ({"json": {"definition": "changed by tenant b"}}, True),
        "PATCH /standards/code-sets/{code}": ({"json": {"description": "changed by tenant b"}}, True),
        "GET /standards/elements/{code}/diff": ({"params": {"from": 1, "to": 1}}, True),
        "GET /standards/code-sets/{code}/diff": ({"params": {"from": 1, "to": 1}}, True),
        "POST /standards/categories": ({"json": {"code": mine, "name": "x", "parent": o["standard"]}}, True),
        "POST /standards/reviews": ({"json": {"items": [{"kind": "element", "code": o["standard"]}]}}, True),
        "POST /standards/reviews/{rid}/decision": ({"json": {"approve": True}}, True),
        # data services: tenant b's own service document; tenant a's service, versions and applications
        "POST /services": (
            {"json": {"name": f"{B}_{who}_svc", "resource": {"table": "t"}, "fields": ["a"]}},
            False,
        ),
        "POST /services/{name}/review": ({"json": {"approve": True}}, True),
        "POST /services/{name}/applications": (
            {"json": {"application": f"{B}_{who}_app", "version": 1, "purpose": "b", "fields": ["id"]}},
            True,
        ),
        "POST /services/applications/{app_id}/decision": ({"json": {"approve": True}}, True),
        "POST /services/{name}/v{version}/downloads": ({"json": {"format": "csv"}}, True),
        # a request for access to tenant a's dataset; a decision on tenant a's request
        "POST /access-requests": (
            {"json": {"dataset": o["dataset"], "application": "b_attacker", "purpose": "b", "fields": ["id"]}},
            True,
        ),
        "POST /access-requests/{request_id}/decision": ({"json": {"approve": True}}, True),
        # sensitive-data detection over tenant a's catalogued dataset
        "POST /detection/scan": ({"json": {"dataset": o["dataset"]}}, True),
        "POST /detection/confirm": (
            {"json": {"dataset": o["dataset"], "fields": {"x": {"classification": "secret"}}}},
            True,
        ),
        "POST /standards/mappings": ({"json": {"field_urn": f"{o['dataset']}#x", "element": mine}}, True),
        "DELETE /standards/mappings": ({"params": {"field_urn": f"{o['dataset']}#x"}}, True),
        "GET /standards/mappings": ({"params": {"dataset": o["dataset"]}}, True),
        "GET /standards/suggestions": ({"params": {"dataset": o["dataset"]}}, True),
        "GET /standards/conformance": ({"params": {"dataset": o["dataset"]}}, True),
        "GET /quality/quarantine": ({"params": {"pipeline": o["pipeline"]}}, True),
        "POST /quality/quarantine/replay": ({"json": {"pipeline": o["pipeline"], "rule": "r", "reason": "b"}}, True),
        "POST /quality/quarantine/replay-jobs": (
            {"json": {"pipeline": o["pipeline"], "rule": "r", "reason": "b"}},
            True,
        ),
        "POST /quality/quarantine/accept": (
            {"json": {"pipeline": o["pipeline"], "records": [{"partition": 0, "offset": 0}], "reason": "b"}},
            True,
        ),
        # quality tickets: tenant a's pipeline in bodies, its ticket in paths
        "GET /quality/tickets": ({"params": {"pipeline": o["pipeline"]}}, True),
        "POST /quality/tickets": (
            {"json": {"pipeline": o["pipeline"], "records": [{"partition": 0, "offset": 0}]}},
            True,
        ),
        "PUT /quality/tickets/thresholds": ({"json": {"pipeline": o["pipeline"], "min_failed": 1}}, True),
        "POST /quality/tickets/{ticket_id}/transitions": ({"json": {"action": "start"}}, True),
        "POST /quality/tickets/{ticket_id}/comments": ({"json": {"text": "b"}}, True),
        # quality profiles of tenant a's dataset; reports and subscriptions land in tenant b's own scope
        "POST /quality/profiles": ({"json": {"dataset": o["dataset"]}}, True),
        "POST /quality/profile-jobs": ({"json": {"dataset": o["dataset"]}}, True),
        "GET /quality/profiles": ({"params": {"dataset": o["dataset"]}}, True),
        # (a report is always the caller's own tenant's, `tenant` is refused as an unknown field; this world has
        # no ClickHouse, so the probe stops at validation; tests/test_quality_reports.py checks the figures' tenant)
        "POST /quality/reports": ({"json": {"period": "daily", "kind": "system"}}, False),
        "POST /quality/report-subscriptions": (
            {"json": {"channel": {"smtp_host": "127.0.0.1", "to": [f"{who}@b.test"]}}},
            False,
        ),
        "POST /standards/import": (
            {
                "content": export_elements([{"code": mine, "name_zh": "乙方", "category": o["standard"]}]),
                "headers": {"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
            },
            True,
        ),
    }
    if route in bodies:
        kw, names_a = bodies[route]
        return path, kw, names_a
    op = openapi["paths"][template][method.lower()]
    if op.get("requestBody", {}).get("required"):
        pytest.fail(f"{route}: needs a body; add a minimal valid one to attack()")
    return path, {}, "{" in template


def _ol(urn: str) -> dict:
    """An OpenLineage dataset {namespace, name} of a catalogue URN."""
    scheme, _, rest = urn.removeprefix("hl:dataset:").partition("://")
    host, _, name = rest.partition("/")
    return {"namespace": f"{scheme}://{host}", "name": name}


def _flink(urn: str) -> dict:
    """A Flink job config reading the topic of a catalogue URN, deduplicated into another."""
    ol = _ol(urn)
    bootstrap = ol["namespace"].partition("://")[2]
    return {"kafka": {"bootstrap": bootstrap}, "inputs": [{"topic": ol["name"], "dedupe": {"output": "b-dedup"}}]}


def _version(world) -> int:
    r = world.as_a("admin", "GET", f"/pipelines/{world.a.objects['pipeline']}")
    return r.json().get("version", 1) if r.status_code == 200 else 1


def created_path(template: str, kw: dict, r: httpx.Response) -> str | None:
    """Where the object a creating route made can be read (and deleted)."""
    body = kw.get("json") or {}
    try:
        out = r.json()
    except ValueError:
        out = {}
    seg = segment(template)
    if seg in ("pipelines", "connectors", "groups", "roles"):
        return f"/{seg}/{body.get('name')}"
    if seg == "users":
        return f"/users/{body.get('username')}"
    if seg in ("api-keys", "schedules", "jobs") and isinstance(out, dict) and "id" in out:
        return f"/{seg}/{out['id']}"
    if template == "/alerts/rules" and isinstance(out, dict) and "id" in out:
        return f"/alerts/rules/{out['id']}"
    if template in ("/standards/elements", "/standards/code-sets"):
        return f"{template}/{body.get('code')}"
    if seg == "imports" and isinstance(out, dict) and "id" in out:
        return f"/jobs/{out['id']}"
    return None


def expect(world, rule: str, route: str, who: str, kw: dict, names_a: bool, r: httpx.Response) -> list[str]:
    """What is wrong with answer `r` under the route's rule (empty: as the rule says)."""
    method, template = route.split(" ", 1)
    status, problems = r.status_code, []
    if status >= 500:
        return [f"server error {status}: {r.text[:300]}"]
    if rule == "tenant-object":
        if status not in (403, 404):
            problems.append(f"expected 404 (or 403), got {status}: {r.text[:300]}")
    elif rule == "tenant-upsert":
        if status not in (403, 404, 409):
            problems.append(f"expected 404/403/409 for tenant a's name, got {status}: {r.text[:300]}")
    elif rule == "tenant-list":
        if status == 404 and names_a:
            pass  # a filter naming tenant a's object: 404 is as good as nothing
        elif status not in (200, 403):
            problems.append(f"expected 200 (own tenant only) or 403, got {status}: {r.text[:300]}")
        elif status == 200:
            problems += _list_leaks(world, template, r)
    elif rule == "tenant-create":
        if 200 <= status < 300:
            where = created_path(template, kw, r)
            if names_a:
                problems.append(f"created although the body names tenant a or its objects: {status} {r.text[:300]}")
            if where is not None:
                seen = world.as_a("admin", "GET", where)
                if seen.status_code == 200:
                    problems.append(f"tenant b's new object {where} is visible to tenant a's admin: {seen.text[:200]}")
                if template not in ("/jobs", "/imports"):
                    world.op("DELETE", where)  # tidy: later cases and lists start clean
        elif status not in (403, 404, 409, 422):
            problems.append(f"expected 403/404/422, got {status}: {r.text[:300]}")
        elif status == 422 and (kw.get("json") or {}).get("tenant") == A:
            # the refusal must be about tenant a: the same body for the caller's own tenant is valid
            control = {**kw["json"], "tenant": B}
            c = world.call(world.b.headers[who], method, template, json=control)
            if c.status_code == 422:
                problems.append(f"the attack body is invalid even for tenant b (fix the suite): {c.text[:300]}")
            elif 200 <= c.status_code < 300 and (where := created_path(template, {"json": control}, c)):
                world.op("DELETE", where)
    elif rule == "public" and route == "GET /livez":  # liveness: constant, nothing of any tenant
        if status != 200 or r.json() != {"status": "ok"}:
            problems.append(f"expected 200 {{'status': 'ok'}} and nothing else, got {status}: {r.text[:200]}")
    elif rule == "public":
        if status not in (401, 429):
            problems.append(f"a wrong password for tenant a's user answered {status}")
    elif rule == "self":
        if status != 200 or r.json().get("tenant") != B:
            problems.append(f"expected the caller's own account (tenant {B}), got {status}: {r.text[:200]}")
    elif rule == "shared-read":
        if status not in (200, 403):
            problems.append(f"expected 200 or 403, got {status}")
        elif status == 200 and A in r.text:
            problems.append(f"names tenant a's objects ({A}...)")
    elif rule == "probe":
        if status == 200 and r.json().get("error_count", 0) == 0:
            problems.append("a config reading tenant a's file area validated without errors")
        elif status not in (200, 400, 403, 404, 422, 429):
            problems.append(f"unexpected {status}: {r.text[:300]}")
    elif rule == "app-key":  # a user credential is no app key: tenant a's service answers nothing
        if status not in (401, 403, 404) or A in r.text:
            problems.append(f"expected 401/403/404 without an app key, got {status}: {r.text[:300]}")
    elif rule == "global-superuser":
        if status != 403:
            problems.append(f"expected 403 (superusers only), got {status}")
    else:
        problems.append(f"rule {rule!r} has no expectation in this suite")
    return problems


def _list_leaks(world, template: str, r: httpx.Response) -> list[str]:
    if template == "/audit":
        # Entries are filed under the caller's tenant (with the attacked tenant as affected_tenant):
        # none may be tenant a's own.
        theirs = [e for e in r.json() if e.get("tenant") == A]
        return [f"{len(theirs)} audit entries of tenant a, e.g. {theirs[0]}"] if theirs else []
    if template == "/logs":
        lines = r.json().get("lines", [])
        theirs = [ln for ln in lines if ln.get("request_id") in world.a_request_ids]
        problems = [f"{len(theirs)} log lines of tenant a's requests, e.g. {theirs[0]}"] if theirs else []
        if world.failure_canary in r.text:
            problems.append("tenant a's job error is in the log search")
        return problems
    # Every name of tenant a's objects (and its job error) contains tenant a's name.
    if A in r.text:
        at = r.text.index(A)
        return [f"lists tenant a's data: ...{r.text[max(0, at - 120) : at + 80]}..."]
    return []


CASES = [(route, who) for route in sorted(ROUTES) for who in ATTACKERS]


@pytest.mark.parametrize("route,who", CASES, ids=[f"{r}-as-{w}" for r, w in CASES])
def test_tenant_b_cannot_reach_tenant_a(world, openapi, route, who):
    method, template = route.split(" ", 1)
    if template not in openapi["paths"] or method.lower() not in openapi["paths"][template]:
        pytest.fail(f"{route} is declared in api/tenancy_rules.py but not in the running API's /openapi.json")
    rule = ROUTES[route]
    assert rule in RULES
    kinds = KINDS_OF.get(segment(template), ())
    before = world.snapshot(kinds)
    path, kw, names_a = attack(world, openapi, method, template, who)
    headers = {} if rule == "public" else world.b.headers[who]
    r = world.call(headers, method, path, **kw)
    problems = [f"{method} {path} as tenant b's {who}: {p}" for p in expect(world, rule, route, who, kw, names_a, r)]
    problems += [f"answer contains {leak}" for leak in world.leaks(r.text)]
    if rule == "tenant-object":  # existence is not revealed: the same answer as for no object at all
        ghost = fill(world, template, ghost=True)
        g = world.call(headers, method, ghost, **kw)
        if (r.status_code, _unnamed(r.text, path, ghost)) != (g.status_code, _unnamed(g.text, ghost, path)):
            problems.append(
                f"answers differently than for a missing object ({ghost}): "
                f"{r.status_code} {r.text[:200]} / {g.status_code} {g.text[:200]}"
            )
    after = world.snapshot(kinds)
    changed = [k for k in before if before[k] != after.get(k)]
    for k in changed:
        problems.append(f"tenant a's object changed: {k}\n  before: {_short(before[k])}\n  after:  {_short(after[k])}")
    if changed:
        repaired = world.repair(kinds)
        if repaired:
            problems.append(f"(re-created tenant a's {repaired} for later cases)")
    assert not problems, "\n".join(problems)


def _unnamed(text: str, path: str, other: str) -> str:
    """`text` with the path segments that differ from `other`'s (the object's id) as a placeholder."""
    for mine, theirs in zip(path.strip("/").split("/"), other.strip("/").split("/")):
        if mine != theirs:
            text = re.sub(rf"(?<![\w-]){re.escape(unquote(mine))}(?![\w-])", "<id>", text)
    return text


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 400 else text[:400] + "..."


# ------------------------------------------------------------------------------ beyond one route
def test_tenant_a_has_one_object_of_every_kind(world):
    """The matrix attacks real objects: every kind exists, and the file import ran through the API
    (not a report seeded by the suite because the import job could not run)."""
    kinds = ("pipeline", "connector", "import", "schedule", "run", "rule", "message", "role", "group")
    missing = [k for k in (*kinds, "victim", "apikey", "job") if world.a.objects.get(k) in (None, "")]
    assert not missing, f"tenant a lacks {missing}"
    assert not world.seeded_import, "tenant a's file import did not run through the API; its report was seeded"


def test_tenant_a_admin_reads_every_object_the_matrix_compares(world):
    """The before/after comparison means something only if tenant a's admin can read the objects."""
    unread = []
    for kind in world.KINDS:
        for path, params in world._snapshot_paths(kind):
            r = world.as_a("admin", "GET", path, params=params)
            if r.status_code != 200:
                unread.append(f"{path}: {r.status_code} {r.text[:120]}")
    mine = world.as_a("admin", "GET", "/messages", params={"limit": 1000}).json()
    if not any(m.get("id") == world.a.objects["message"] for m in mine):
        unread.append("GET /messages: tenant a's message is not listed for tenant a's admin")
    assert not unread, "tenant a's admin cannot read its own objects:\n" + "\n".join(unread)


def test_tenant_b_alert_rules_never_report_tenant_a_failures(world):
    """A rule of tenant b watching everything (or tenant a's schedule by name) must not bring tenant
    a's failed runs, job errors or schedule names into tenant b's alerts or messages."""
    op = world.b.headers["operator"]
    created, problems = [], []
    for params in ({}, {"schedule": world.a.objects["schedule_name"]}, {"schedule": world.a.objects["schedule"]}):
        body = {"name": f"{B}-watch-{len(created)}", "kind": "task_failed", "params": params, "interval_seconds": 86400}
        r = world.call(op, "POST", "/alerts/rules", json=body)
        if r.status_code != 201:
            continue  # refusing a rule about tenant a's schedule is fine
        created.append(r.json()["id"])
        ev = world.call(op, "POST", f"/alerts/rules/{r.json()['id']}/evaluate")
        if A in ev.text:
            problems.append(f"evaluating {params} reports tenant a: {ev.text[:300]}")
    msgs = world.call(op, "GET", "/messages", params={"limit": 1000})
    if A in msgs.text:
        problems.append("tenant b's messages name tenant a's schedule or job error")
    for rid in created:
        world.op("DELETE", f"/alerts/rules/{rid}")
    assert not problems, "\n".join(problems)


def test_attempts_on_tenant_a_are_in_its_audit_log(world):
    """The attacked tenant sees the attempt: tenant b's probe of tenant a's pipeline is filed under
    tenant b with affected_tenant = a, and tenant a's admin finds it in GET /audit."""
    rid = f"sec-probe-{A}"
    r = world.call(
        world.b.headers["developer"], "GET", f"/pipelines/{world.a.objects['pipeline']}", headers={"X-Request-ID": rid}
    )
    assert r.status_code == 404
    every = world.op("GET", "/audit", params={"limit": 1000}).json()
    entry = next((e for e in every if e["request_id"] == rid), None)
    assert entry is not None and entry["tenant"] == B
    problems = []
    if entry.get("affected_tenant") != A:
        problems.append(f"GET /audit shows no affected_tenant {A!r}: {entry}")
    theirs = world.as_a("admin", "GET", "/audit", params={"limit": 1000}).json()
    if not any(e["request_id"] == rid for e in theirs):
        problems.append("tenant a's admin does not see the attempt on its pipeline in GET /audit")
    assert not problems, "\n".join(problems)


def test_secrets_of_tenant_a_are_masked_for_tenant_a_too(world):
    """Tenant a's own reads show its secrets masked (the canaries never come back to anyone)."""
    o, problems = world.a.objects, []
    for path in (
        f"/pipelines/{o['pipeline']}",
        f"/pipelines/{o['pipeline']}/versions/1",
        f"/connectors/{o['connector']}",
        f"/connectors/{o['connector']}/config",
        f"/connectors/{o['connector']}/tasks",
        f"/alerts/rules/{o['rule']}",
        "/alerts/rules",
        "/messages",
    ):
        r = world.as_a("admin", "GET", path)
        assert r.status_code == 200, f"{path}: {r.status_code}"
        problems += [f"{path}: {leak}" for leak in world.leaks(r.text)]
    assert not problems, "\n".join(problems)
