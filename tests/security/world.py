"""The attacker's world: two tenants, their principals, tenant a's objects, and the shared checks.

Tenant a (`A`) and tenant b (`B`) each get a user of every built-in role (admin, developer, viewer,
operator) and a user manager holding only `users:manage` (a custom role of their tenant), all made
through the API with the operator key; tenant b also gets an admin API key. Tenant a owns one object
of every kind the API manages: pipeline, connector, file import, schedule (and a run of it), alert
rule (and the message it raised), custom role, group, user, API key and job, each carrying canary
strings (its tenant's name, secrets) that must never reach tenant b or any response.

The API runs with its own state dir and SQLite control DB, and only the broker and schema registry
of the stack (file imports publish to them); ClickHouse is not needed. Ports: HUILIU_TEST_PORT_BASE
+ 300 (API), + 381 (registry), + 392 (broker): clear of the session stack's block.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from deploy.settings import Settings

RUN = uuid.uuid4().hex[:6]
A, B = f"ta{RUN}", f"tb{RUN}"  # every name of a tenant's objects starts with its tenant's name
PASSWORD = "Quartz-Lumen-7741-Tarn"  # long, uncommon, without a username in it
ROLES = ("admin", "developer", "viewer", "operator", "usermgr")
ATTACKERS = (*ROLES, "apikey")  # tenant b's principals: a user of every role and an admin API key
ETC_PASSWD_LINE = "root:x:0:0:"


# --------------------------------------------------------------------------- helpers
def tenant_root(settings: Settings, tenant: str) -> Path:
    """A tenant's file area: <data_root>/<tenant> (fix A's connectors/paths.py); made if missing."""
    base = Path(getattr(settings, "resolved_data_root", settings.state_dir / "files"))
    root = base / tenant
    root.mkdir(parents=True, exist_ok=True)
    return root


def files_config(root: Path, system: str, table: str, password: str | None = None, pattern: str = "watched/*.csv"):
    store: dict[str, Any] = {"root": str(root), "pattern": pattern}
    if password:
        store["password"] = password
    return {
        "connector.class": "files",
        "system": system,
        "table": table,
        "store": store,
        "settle_seconds": 0,
        "columns": [{"name": "id", "type": "int", "key": True}, {"name": "name"}],
    }


def pipeline_document(name: str, password: str, **extra) -> dict:
    return {
        "name": name,
        "description": f"{name} population register",
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": f"postgresql+psycopg://etl:{password}@db.example:5432/civil",
                "system": "civil",
                "table": "population",
                "timestamp_column": "updated_at",
            },
        },
        "transforms": [{"kind": "trim", "fields": ["name"]}],
        "rules": [{"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"}],
        "sink": {"kind": "clickhouse", "config": {"table": "population"}},
        **extra,
    }


def wait_until(fn, timeout: float = 30.0, every: float = 0.2):
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return value


@dataclass
class Tenant:
    name: str
    headers: dict[str, dict] = field(default_factory=dict)  # role (or "apikey") -> credential headers
    objects: dict[str, Any] = field(default_factory=dict)  # kind -> id or name (tenant a)


class World:
    """Both tenants, their principals and tenant a's objects, plus the checks every case shares."""

    def __init__(self, base: str, settings: Settings):
        from api.auth import api_key_for

        self.base, self.settings = base, settings
        # Every answer this client gets is searched for secrets (test_zz_every_response.py reports).
        self.leak_log: list[str] = []
        self.client = httpx.Client(base_url=base, timeout=60, event_hooks={"response": [self._record]})
        self.operator = {"X-API-Key": api_key_for(settings)}
        self.a, self.b = Tenant(A), Tenant(B)
        self.a_request_ids: set[str] = set()  # X-Request-IDs of tenant a's own requests (GET /logs check)
        self.canaries = {  # secrets of tenant a: never in any response
            "pipeline password": f"PipeSecret{RUN}x9",
            "connector password": f"ConnSecret{RUN}x9",
            "smtp password": f"SmtpSecret{RUN}x9",
            "user password": PASSWORD,
        }
        self.failure_canary = f"{A}-failure-canary"  # a's job error: a's data, never tenant b's
        self.a_connector_config: dict = {}
        self.a_pipeline_document: dict = {}
        self.seeded_import = False

    # -- requests ---------------------------------------------------------------------------
    def call(self, auth: dict, method: str, path: str, **kw) -> httpx.Response:
        """`auth`: the caller's credential headers; `headers=` in kw: more headers."""
        extra = kw.pop("headers", None) or {}
        return self.client.request(method, path, headers={**auth, **extra}, **kw)

    def as_a(self, role: str, method: str, path: str, **kw) -> httpx.Response:
        r = self.call(self.a.headers[role], method, path, **kw)
        if "x-request-id" in r.headers:
            self.a_request_ids.add(r.headers["x-request-id"])
        return r

    def op(self, method: str, path: str, **kw) -> httpx.Response:
        return self.call(self.operator, method, path, **kw)

    # -- leaks --------------------------------------------------------------------------------
    def _record(self, response: httpx.Response) -> None:
        response.read()
        found = self.leaks(response.text)
        if found:
            self.leak_log.append(f"{response.request.method} {response.request.url.raw_path.decode()}: {found}")

    _keys: dict[str, str] = {}

    def key_files(self) -> dict[str, str]:
        if len(self._keys) == 3:
            return self._keys
        out = {}
        for name in ("jwt_signing_key", "connector_secrets.key", "api_key"):
            path = self.settings.state_dir / name
            if path.exists():
                text = path.read_text().strip()
                if text:
                    out[name] = text
        self._keys = out
        return out

    def leaks(self, text: str) -> list[str]:
        """Labels of secrets found in a response body (key files, tenant a's secrets, /etc/passwd)."""
        found = [f"contents of {k}" for k, v in self.key_files().items() if v in text]
        found += [f"tenant a's {k}" for k, v in self.canaries.items() if v in text]
        if ETC_PASSWD_LINE in text:
            found.append("contents of /etc/passwd")
        return found

    # -- tenant a's objects: snapshots as tenant a's admin -------------------------------------
    def _snapshot_paths(self, kind: str) -> list[tuple[str, dict | None]]:
        o = self.a.objects
        table: dict[str, list[tuple[str, dict | None]]] = {
            "pipeline": [
                (f"/pipelines/{o['pipeline']}", None),
                (f"/pipelines/{o['pipeline']}/versions", None),
                (f"/pipelines/{o['pipeline']}/deployment", None),
            ],
            "connector": [
                (f"/connectors/{o['connector']}", None),
                (f"/connectors/{o['connector']}/status", None),
                (f"/connectors/{o['connector']}/snapshots", None),
                (f"/connectors/{o['connector']}/schema-changes", None),
            ],
            "import": [(f"/imports/{o['import']}", None), ("/imports", {"connector": o["connector"]})],
            "schedule": [
                (f"/schedules/{o['schedule']}", None),
                (f"/schedules/{o['schedule']}/runs", None),
                (f"/schedule-runs/{o['run']}", None),
            ],
            "alert": [(f"/alerts/rules/{o['rule']}", None)],
            "message": [("/messages", {"limit": 1000})],
            "role": [(f"/roles/{o['role']}", None)],
            "group": [(f"/groups/{o['group']}", None)],
            "user": [(f"/users/{o['victim']}", None)],
            "apikey": [(f"/api-keys/{o['apikey']}", None)],
            "job": [(f"/jobs/{o['job']}", None)],
            "dataset": [(f"/metadata/datasets/{quote(o['dataset'], safe='')}", None)],
            "standard": [
                (f"/standards/elements/{o['standard']}", None),
                (f"/standards/code-sets/{o['standard']}", None),
                (f"/standards/reviews/{o['review']}", None),
                ("/standards/categories", None),
            ],
            "report": [(f"/quality/reports/{o['report']}", None), ("/quality/report-subscriptions", None)],
            "ticket": [(f"/quality/tickets/{o['ticket']}", None), ("/quality/tickets/thresholds", None)],
        }
        return table[kind]

    KINDS = (
        "pipeline",
        "connector",
        "import",
        "schedule",
        "alert",
        "message",
        "role",
        "group",
        "user",
        "apikey",
        "job",
        "dataset",
        "standard",
        "ticket",
        "report",
    )

    def snapshot(self, kinds) -> dict:
        out = {}
        for kind in kinds:
            for path, params in self._snapshot_paths(kind):
                r = self.as_a("admin", "GET", path, params=params)
                body: Any = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
                out[f"{kind} GET {path}"] = (r.status_code, _stable(kind, body, self.a.objects))
        return out

    # -- tenant a's objects: creation (also used to repair after a successful attack) ----------
    def create_role(self) -> None:
        name = f"{A}-role"
        r = self.as_a(
            "admin",
            "POST",
            "/roles",
            json={"name": name, "description": f"{A} custom role", "permissions": ["pipeline:view", "ops:view"]},
        )
        assert r.status_code in (201, 409), r.text
        self.a.objects["role"] = name

    def create_group(self) -> None:
        name = f"{A}-group"
        r = self.as_a("admin", "POST", "/groups", json={"name": name, "description": f"{A} group", "roles": []})
        assert r.status_code in (201, 409), r.text
        self.a.objects["group"] = name

    def create_victim(self) -> None:
        name = f"{A}-victim"
        body = {"username": name, "password": PASSWORD, "tenant": A, "display_name": f"{A} victim", "roles": []}
        r = self.op("POST", "/users", json=body)
        assert r.status_code in (201, 409), r.text
        self.a.objects["victim"] = name

    def create_apikey(self) -> None:
        r = self.op("POST", "/api-keys", json={"name": f"{A}-key", "tenant": A, "roles": ["viewer"]})
        assert r.status_code == 201, r.text
        self.a.objects["apikey"] = r.json()["id"]

    def create_pipeline(self) -> None:
        name = f"{A}-pipe"
        self.a_pipeline_document = pipeline_document(name, self.canaries["pipeline password"])
        r = self.as_a("developer", "POST", "/pipelines", json=self.a_pipeline_document)
        if r.status_code == 409:  # taken (e.g. moved away by an attack): delete and create again
            self.op("DELETE", f"/pipelines/{name}")
            r = self.as_a("developer", "POST", "/pipelines", json=self.a_pipeline_document)
        assert r.status_code == 201, r.text
        self.a.objects["pipeline"] = name

    def create_connector(self) -> None:
        name = f"{A}-conn"
        root = tenant_root(self.settings, A)
        (root / "watched").mkdir(exist_ok=True)
        (root / "manual").mkdir(exist_ok=True)
        self.a_connector_config = files_config(root, f"sa{RUN}", "people", self.canaries["connector password"])
        r = self.as_a("developer", "POST", "/connectors", json={"name": name, "config": self.a_connector_config})
        if r.status_code == 409:
            self.op("DELETE", f"/connectors/{name}")
            r = self.as_a("developer", "POST", "/connectors", json={"name": name, "config": self.a_connector_config})
        assert r.status_code == 201, r.text
        self.a.objects["connector"] = name

    def create_schema_change(self) -> None:
        """A held schema change of tenant a's connector, stored the way a capture task holds one (a
        log-CDC task needs a replication slot; tests/test_schema_evolution.py drives that path)."""
        from connectors.schema_change_store import SchemaChangeStore

        change = {"kind": "narrowed", "column": "score", "old_type": "BIGINT", "new_type": "INTEGER", "key": False}
        self.a.objects["schema_change"] = SchemaChangeStore(self.settings.resolved_control_db_url).add(
            A, self.a.objects["connector"], "public.people", "0" * 64, [change], compatible=0, status="held"
        )

    def create_import(self) -> None:
        root = tenant_root(self.settings, A)
        (root / "manual" / "a.csv").write_text("id,name\n1,ann\n2,bob\nx,bad\n", encoding="utf-8")
        r = self.as_a(
            "developer", "POST", "/imports", json={"connector": self.a.objects["connector"], "path": "manual/a.csv"}
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        done = wait_until(
            lambda: (j := self.op("GET", f"/jobs/{job_id}").json()).get("state") not in ("queued", "running") and j,
            60,
        )
        imports = ((done or {}).get("result") or {}).get("imports") or []
        if imports:
            self.a.objects["import"] = imports[0]["id"]
            return
        # The import did not run to a report here (no broker?): give tenant a a report of that file
        # the way the file source records one, so GET /imports/{id} still has an object to attack.
        from connectors.files.reports import ImportReports

        f = root / "manual" / "a.csv"
        reports = ImportReports(self.settings.resolved_control_db_url)
        self.a.objects["import"] = reports.begin(
            self.a.objects["connector"], str(f), f.stat().st_size, f.stat().st_mtime, None, status="done"
        )
        self.seeded_import = True

    def create_schedule(self) -> None:
        name = f"{A}-sched"
        body = {"name": name, "action": "fail", "params": {"message": self.failure_canary}}
        r = self.as_a("operator", "POST", "/schedules", json=body)
        if r.status_code == 409:
            self.op("DELETE", f"/schedules/{name}")
            r = self.as_a("operator", "POST", "/schedules", json=body)
        assert r.status_code == 201, r.text
        self.a.objects["schedule"] = r.json()["id"]
        self.a.objects["schedule_name"] = name
        run = self.as_a("operator", "POST", f"/schedules/{r.json()['id']}/run")
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        wait_until(lambda: self.as_a("operator", "GET", f"/schedule-runs/{run_id}").json().get("status") == "failed")
        self.a.objects["run"] = run_id

    def create_alert(self) -> None:
        name = f"{A}-rule"
        body = {
            "name": name,
            "kind": "task_failed",
            "params": {"schedule": self.a.objects["schedule_name"]},
            "channel": {
                "smtp_host": "127.0.0.1",
                "smtp_port": 9,  # nothing listens: delivery fails at once
                "to": [f"ops@{A}.example"],
                "password": self.canaries["smtp password"],
                "timeout": 1,
            },
            "throttle_seconds": 86400,
            "interval_seconds": 86400,
        }
        r = self.as_a("operator", "POST", "/alerts/rules", json=body)
        if r.status_code == 409:
            self.op("DELETE", f"/alerts/rules/{name}")
            r = self.as_a("operator", "POST", "/alerts/rules", json=body)
        assert r.status_code == 201, r.text
        self.a.objects["rule"] = r.json()["id"]

    def create_message(self) -> None:
        r = self.as_a("operator", "POST", f"/alerts/rules/{self.a.objects['rule']}/evaluate")
        assert r.status_code == 200, r.text

        def mine():
            msgs = self.as_a("admin", "GET", "/messages", params={"limit": 1000}).json()
            return next((m for m in msgs if self.a.objects["schedule_name"] in m.get("subject", "")), None)

        found = wait_until(mine, 10)
        assert found, "tenant a's alert rule raised no message"
        self.a.objects["message"] = found["id"]

    def create_job(self) -> None:
        r = self.as_a("admin", "POST", "/jobs", json={"action": "noop", "params": {"count": 1}})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        wait_until(lambda: self.as_a("admin", "GET", f"/jobs/{job_id}").json().get("state") == "succeeded")
        self.a.objects["job"] = job_id

    def create_dataset(self) -> None:
        """Tenant a's connector harvested into the catalogue (its topic), with business metadata."""
        r = self.as_a("developer", "POST", "/metadata/harvest", json={"connectors": [self.a.objects["connector"]]})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = wait_until(
            lambda: (j := self.op("GET", f"/jobs/{job_id}").json()).get("state") not in ("queued", "running") and j
        )
        assert job["state"] == "succeeded", job
        items = self.as_a("developer", "GET", "/metadata/datasets").json()["items"]
        self.a.objects["dataset"] = items[0]["urn"]
        path = f"/metadata/datasets/{quote(items[0]['urn'], safe='')}"
        assert self.as_a("developer", "PATCH", path, json={"owner": f"{A}-steward"}).status_code == 200
        # lineage tenant a reports from outside: GET /lineage-reports must not show it to tenant b
        edges = {"job": f"{A}-etl", "edges": [{"source": items[0]["urn"], "target": f"{items[0]['urn']}-{A}-copy"}]}
        r = self.as_a("developer", "POST", "/lineage/edges", json=edges)
        assert r.status_code == 200, r.text

    def create_standard(self) -> None:
        """Tenant a's category, code set and element (same code), submitted as an open review."""
        code = f"{A}std"
        self.a.objects["standard"] = code
        r = self.as_a("admin", "POST", "/standards/categories", json={"code": code, "name": f"{A} 基础类"})
        assert r.status_code == 201, r.text
        items = [{"code": "1", "label": f"{A} secret label"}]
        r = self.as_a("admin", "POST", "/standards/code-sets", json={"code": code, "name": f"{A} set", "items": items})
        assert r.status_code == 201, r.text
        element = {"code": code, "name_zh": f"{A} 数据元", "code_set": code, "category": code}
        assert self.as_a("admin", "POST", "/standards/elements", json=element).status_code == 201
        items = [{"kind": "code_set", "code": code}, {"kind": "element", "code": code}]
        r = self.as_a("admin", "POST", "/standards/reviews", json={"items": items})
        assert r.status_code == 201, r.text
        self.a.objects["review"] = r.json()["id"]

    def create_ticket(self) -> None:
        """Tenant a's quality ticket (and threshold), stored the way the monitor opens one: the monitor
        needs a runner quarantining data (tests/test_quality_tickets.py drives that path)."""
        from deploy.control import engine_for
        from quality_stream.tickets.store import TicketStore
        from quality_stream.tickets.thresholds import Threshold

        store = TicketStore(engine_for(self.settings.resolved_control_db_url))
        sample = {"partition": 0, "offset": 0, "violations": [], "event": {"after": {"name": f"{A} sample"}}}
        ticket, _ = store.open(
            A,
            pipeline=self.a.objects["pipeline"],
            dataset_urn=self.a.objects["dataset"],
            rule=f"{A}_rule",
            dimension="validity",
            failed=3,
            evaluated=10,
            samples=[sample],
            assignee=f"{A}-steward",
            department=f"{A} dept",
            actor="system",
            origin="auto",
            sla_hours=72,
        )
        store.set_threshold(A, self.a.objects["pipeline"], "", Threshold(min_failed=5), "system")
        self.a.objects["ticket"] = ticket["id"]

    def create_service(self) -> None:
        """Tenant a's data service, published (by a second admin: the author may not review it), and an
        approved application for it with its app key (tests/test_data_services.py has the whole flow)."""
        name = f"{A}svc"
        self.a.objects["service"] = name
        doc = {"name": name, "resource": {"table": f"{A}_people"}, "fields": ["id", "name"]}
        assert self.as_a("admin", "POST", "/services", json=doc).status_code == 201
        assert self.as_a("admin", "POST", f"/services/{name}/submit").status_code == 200
        reviewer = f"{A}-svc-reviewer"
        body = {"username": reviewer, "password": PASSWORD, "tenant": A, "roles": ["admin"]}
        assert self.op("POST", "/users", json=body).status_code == 201
        token = self.client.post("/auth/token", data={"username": reviewer, "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        r = self.call(auth, "POST", f"/services/{name}/review", json={"approve": True})
        assert r.status_code == 200, r.text
        app = {"application": f"{A}app", "version": 1, "purpose": f"{A} purpose", "fields": ["id", "name"]}
        r = self.as_a("admin", "POST", f"/services/{name}/applications", json=app)
        assert r.status_code == 201, r.text
        self.a.objects["application"] = r.json()["id"]
        r = self.as_a("admin", "POST", f"/services/applications/{r.json()['id']}/decision", json={"approve": True})
        assert r.status_code == 200 and r.json()["key"], r.text
        # a download job of that application (stored directly: the service's table is not in ClickHouse)
        from deploy.control import engine_for
        from streams.dataservices.download_store import DownloadStore

        store = DownloadStore(engine_for(self.settings.resolved_control_db_url))
        download = store.create(A, r.json()["key_id"], f"{A}app", name, 1, "csv", [], 3600)
        self.a.objects["download"] = download["id"]
        # a request for access to tenant a's dataset, left pending for its owner (tenant a's steward)
        path = f"/metadata/datasets/{quote(self.a.objects['dataset'], safe='')}"
        field = self.as_a("admin", "GET", path).json()["fields"][0]["name"]
        ask = {"dataset": self.a.objects["dataset"], "application": f"{A}req", "purpose": "a", "fields": [field]}
        r = self.as_a("admin", "POST", "/access-requests", json=ask)
        assert r.status_code == 201, r.text
        self.a.objects["access_request"] = r.json()["id"]

    def create_quality_report(self) -> None:
        """Tenant a's quality report and report subscription, stored directly: this world has no
        ClickHouse to build a report from, and the subscription's SMTP host would have to be on the
        tenant's allow-list (tests/test_quality_reports.py drives both through the API)."""
        from api.quality.reporting import report_store

        store = report_store(self.settings)
        data = {"start": "2026-01-01", "end": "2026-01-02", "title": f"{A} report", "totals": {"evaluated": 0}}
        report = store.save(A, "all", "", "daily", data, f"<p>{A}</p>", b"%PDF-1.4", f"{A}-admin")
        self.a.objects["report"] = report["id"]
        channel = {"smtp_host": "mail.a.test", "smtp_port": 25, "to": [f"{A}-lead@a.test"]}
        self.a.objects["subscription"] = store.subscribe(A, "all", "", "daily", channel, f"{A}-admin")["id"]

    def repair(self, kinds) -> list[str]:
        """Re-create tenant a's objects an attack removed (tenant a's admin gets 404); names what it did."""
        checks = {
            "pipeline": ("pipeline", self.create_pipeline),
            "connector": ("connector", self.create_connector),
            "schedule": ("schedule", self.create_schedule),
            "alert": ("rule", self.create_alert),
            "role": ("role", self.create_role),
            "group": ("group", self.create_group),
            "user": ("victim", self.create_victim),
            "apikey": ("apikey", self.create_apikey),
        }
        done = []
        for kind in kinds:
            if kind not in checks:
                continue
            path = self._snapshot_paths(kind)[0][0]
            if self.as_a("admin", "GET", path).status_code == 404:
                checks[kind][1]()
                done.append(kind)
        return done


VOLATILE = {"heartbeat_at"}


def _stable(kind: str, body: Any, objects: dict) -> Any:
    """A snapshot body without fields that change on their own; messages: only tenant a's message."""
    if kind == "message" and isinstance(body, list):
        return [m for m in body if m.get("id") == objects.get("message")]
    if isinstance(body, dict):
        return {k: _stable(kind, v, objects) for k, v in body.items() if k not in VOLATILE}
    if isinstance(body, list):
        return [_stable(kind, v, objects) for v in body]
    return body


def _login(world: World, username: str) -> dict:
    r = world.client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, f"{username}: {r.status_code} {r.text}"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def make_principals(world: World, t: Tenant) -> None:
    """Users of every built-in role and a user manager (custom role with only users:manage)."""
    for role in ("admin", "developer", "viewer", "operator"):
        r = world.op(
            "POST",
            "/users",
            json={"username": f"{t.name}-{role}", "password": PASSWORD, "tenant": t.name, "roles": [role]},
        )
        assert r.status_code == 201, r.text
        t.headers[role] = _login(world, f"{t.name}-{role}")
    umgr = f"{t.name}-umgr"
    r = world.call(t.headers["admin"], "POST", "/roles", json={"name": umgr, "permissions": ["users:manage"]})
    assert r.status_code == 201, r.text
    r = world.op(
        "POST",
        "/users",
        json={"username": f"{t.name}-usermgr", "password": PASSWORD, "tenant": t.name, "roles": [umgr]},
    )
    assert r.status_code == 201, r.text
    t.headers["usermgr"] = _login(world, f"{t.name}-usermgr")
    r = world.op("POST", "/api-keys", json={"name": f"{t.name}-admin-key", "tenant": t.name, "roles": ["admin"]})
    assert r.status_code == 201, r.text
    t.headers["apikey"] = {"X-API-Key": r.json()["key"]}
