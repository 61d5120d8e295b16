"""Security issue 20: caller-given paths stay inside the tenant's data root (never the server's
state), live connection checks only reach allowed host:port pairs and are rate-limited, and the
API runs as an unprivileged user. Real API processes over HTTP (tests/api_process.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx
import pytest
import yaml

from api.auth import api_key_for
from deploy.settings import settings_env
from tests.api_process import own_state_settings, start_api, stop_api, wait_for  # noqa: F401 - fixture

RUN = uuid.uuid4().hex[:6]
PASSWORD = "correct-horse-9"
KEY_FILES = ("jwt_signing_key", "connector_secrets.key", "api_key")
PASSWD_MARK = "root:x:0:0"


@pytest.fixture(scope="module")
def api(stack_settings):
    settings = stack_settings.model_copy(update={"probe_burst": 3, "probe_rate_per_minute": 1.0})
    proc, base = start_api(settings, port=settings.api_port + 7)
    op = {"X-API-Key": api_key_for(settings)}
    yield base, op, settings
    stop_api(proc)


def user(base, op, name, role, tenant) -> dict:
    r = httpx.post(
        base + "/users", headers=op, json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": [role]}
    )
    assert r.status_code == 201, r.text
    r = httpx.post(base + "/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def secrets_of(settings) -> list[str]:
    """The key files' contents (as the server wrote them): none may ever appear in an answer."""
    out = []
    for name in KEY_FILES:
        path = settings.state_dir / name
        if path.exists():
            out.append(path.read_text(encoding="utf-8", errors="replace").strip())
    return [s for s in out if s]


def assert_nothing_quoted(text: str, settings) -> None:
    assert PASSWD_MARK not in text
    for secret in secrets_of(settings):
        assert secret not in text and secret[:16] not in text


def capture_doc(url: str, name: str) -> dict:
    doc = yaml.safe_load(open("deploy/demo/population.yaml", encoding="utf-8"))
    doc["name"] = name
    doc["tenant"] = None
    doc["source"]["config"].update(url=url, system=f"paths{RUN}")
    return doc


# -- the domain module -------------------------------------------------------------------------


def test_resolve_inside_refuses_escapes_and_the_servers_own_files(own_state_settings_local):
    from connectors.paths import PathRefused, check_sqlite_url, resolve_inside, root_for

    settings = own_state_settings_local
    root = root_for(settings, "ta")
    (root / "ok.csv").write_text("a\n1\n", encoding="utf-8")
    os.symlink("/etc/passwd", root / "escape.csv")
    assert resolve_inside(root, "ok.csv", "p", settings) == (root / "ok.csv").resolve()
    assert resolve_inside(root, str(root / "ok.csv"), "p", settings) == (root / "ok.csv").resolve()
    for bad in ("/etc/passwd", "../../../../etc/passwd", "escape.csv", "../tb/x", "~/x", "", "a\x00b"):
        with pytest.raises(PathRefused) as refused:
            resolve_inside(root, bad, "params.path", settings)
        assert refused.value.param == "params.path"
    with pytest.raises(PathRefused):  # tenant names cannot climb out of the data root
        root_for(settings, "..")
    # a root misconfigured to hold the state dir still never reaches the server's files
    wide = settings.model_copy(update={"data_root": settings.state_dir})
    everything = root_for(wide, None, superuser=True)
    for name in (*KEY_FILES, "control.db", "control.db-wal", "logs/huiliu.jsonl"):
        with pytest.raises(PathRefused, match="server's own state"):
            resolve_inside(everything, str(settings.state_dir / name), "params.path", wide)
        with pytest.raises(PathRefused):
            check_sqlite_url(f"sqlite:///{settings.state_dir / name}", everything, "url", wide)
    for url in (f"sqlite:///file:{root}/ok.csv?uri=true", "sqlite:///relative.db", "sqlite:////etc/passwd"):
        with pytest.raises(PathRefused):
            check_sqlite_url(url, root, "url", settings)
    assert check_sqlite_url(f"sqlite:///{root}/a.db", root, "url", settings) == str(root / "a.db")


@pytest.fixture()
def own_state_settings_local(stack_settings, tmp_path):
    return stack_settings.model_copy(update={"state_dir": tmp_path, "control_db_url": "", "data_root": None})


def test_the_action_checks_again_when_it_runs(own_state_settings_local):
    """A schedule stored before the check (or a direct call) is refused when it runs."""
    from api.scheduling.actions import Scope, pipeline_capture
    from connectors.paths import PathRefused

    settings = own_state_settings_local
    (settings.state_dir / "api_key").write_text("hlk-secret-value", encoding="utf-8")
    for scope in (Scope("ta"), Scope(None, True)):
        for path in ("/etc/passwd", str(settings.state_dir / "api_key"), "../../etc/passwd"):
            with pytest.raises(PathRefused) as refused:
                pipeline_capture(None, {"path": path}, settings, scope)
            assert "params.path" in str(refused.value) and "hlk-secret" not in str(refused.value)
    with pytest.raises(PathRefused, match="tenant"):  # no tenant and not a superuser: no paths at all
        pipeline_capture(None, {"path": "x.yaml"}, settings, Scope(None, False))


# -- jobs, schedules, imports over HTTP ------------------------------------------------------


def test_operator_role_cannot_read_server_files_through_jobs(api):
    base, op, settings = api
    operator = user(base, op, f"ops-a-{RUN}", "operator", "ta")
    state = settings.state_dir
    root_a = settings.resolved_data_root / "ta"
    root_a.mkdir(parents=True, exist_ok=True)
    link = root_a / f"link-{RUN}.yaml"
    os.symlink(state / "jwt_signing_key", link)
    attempts = [
        "/etc/passwd",
        *(str(state / n) for n in KEY_FILES),
        str(state / "control.db"),
        "../../../../../../etc/passwd",
        "../" * 12 + str(state / "api_key").lstrip("/"),
        link.name,
        str(link),
    ]
    for path in attempts:
        r = httpx.post(base + "/jobs", headers=operator, json={"action": "pipeline.capture", "params": {"path": path}})
        assert r.status_code == 422, (path, r.text)
        assert "params.path" in r.text
        assert_nothing_quoted(r.text, settings)
    # a SQLite source pointing at the control DB or a key file is refused the same way
    for target in (state / "control.db", state / "jwt_signing_key"):
        doc = capture_doc(f"sqlite:///{target}", f"evil-{RUN}")
        r = httpx.post(
            base + "/jobs", headers=operator, json={"action": "pipeline.capture", "params": {"document": doc}}
        )
        assert r.status_code == 422 and "params.document.source.config.url" in r.text, r.text
    # no job was queued for any of them
    jobs = httpx.get(base + "/jobs", headers=operator).json()
    assert jobs == []


def test_schedules_refuse_paths_outside_the_root(api):
    base, op, settings = api
    operator = user(base, op, f"ops-s-{RUN}", "operator", "ta")
    for path in ("/etc/passwd", str(settings.state_dir / "api_key"), "../tb/x.yaml"):
        body = {"name": f"s-{uuid.uuid4().hex[:6]}", "action": "pipeline.capture", "params": {"path": path}}
        r = httpx.post(base + "/schedules", headers=operator, json=body)
        assert r.status_code == 422 and "params.path" in r.text, r.text
        assert_nothing_quoted(r.text, settings)
    # the superuser's root is the whole data root: still not the state dir
    body = {"name": f"s-{RUN}", "action": "pipeline.capture", "params": {"path": str(settings.state_dir / "api_key")}}
    assert httpx.post(base + "/schedules", headers=op, json=body).status_code == 422
    ok = {"name": f"ok-{RUN}", "action": "noop", "params": {}}
    assert httpx.post(base + "/schedules", headers=operator, json=ok).status_code == 201
    r = httpx.patch(
        base + f"/schedules/ok-{RUN}",
        headers=operator,
        json={"action": "pipeline.capture", "params": {"path": "/etc/passwd"}},
    )
    assert r.status_code == 422 and "params.path" in r.text


def test_a_scheduled_run_is_checked_again_when_it_fires(api):
    """Saved while the file was inside the root; by the run it is a symlink to a key file."""
    base, op, settings = api
    operator = user(base, op, f"ops-run-{RUN}", "operator", "ta")
    root_a = settings.resolved_data_root / "ta"
    root_a.mkdir(parents=True, exist_ok=True)
    doc = root_a / f"swap-{RUN}.yaml"
    doc.write_text(yaml.safe_dump(capture_doc(f"sqlite:///{root_a / 'nothing.db'}", f"swap-{RUN}")), "utf-8")
    body = {"name": f"swap-{RUN}", "action": "pipeline.capture", "params": {"path": doc.name}}
    r = httpx.post(base + "/schedules", headers=operator, json=body)
    assert r.status_code == 201, r.text
    doc.unlink()
    os.symlink(settings.state_dir / "jwt_signing_key", doc)
    run = httpx.post(base + f"/schedules/swap-{RUN}/run", headers=operator)
    assert run.status_code in (200, 201, 202), run.text
    done = wait_for(
        lambda: (
            (x := httpx.get(base + f"/schedule-runs/{run.json()['id']}", headers=operator).json())["status"]
            != "running"
            and x
        ),
        60,
    )
    assert done["status"] == "failed" and "params.path" in done["error"], done
    assert_nothing_quoted(str(done), settings)


def test_capture_sources_must_be_on_the_allow_list(api):
    base, op, settings = api
    operator = user(base, op, f"ops-h-{RUN}", "operator", "ta")
    for url in ("postgresql+psycopg://u:p@10.9.8.7:5432/db", "postgresql+psycopg://u:p@127.0.0.1:22/db"):
        doc = capture_doc(url, f"far-{RUN}")
        r = httpx.post(
            base + "/jobs", headers=operator, json={"action": "pipeline.capture", "params": {"document": doc}}
        )
        assert r.status_code == 422 and "params.document.source.config.url" in r.text and "allowed" in r.text, r.text


def test_a_file_inside_the_root_still_works_and_other_tenants_cannot_reach_it(api):
    from deploy.demo.seed import seed

    base, op, settings = api
    op_a = user(base, op, f"ops-in-{RUN}", "operator", "ta")
    op_b = user(base, op, f"ops-b-{RUN}", "operator", "tb")
    root_a = settings.resolved_data_root / "ta"
    root_a.mkdir(parents=True, exist_ok=True)
    db = root_a / f"source-{RUN}.db"
    seed(f"sqlite:///{db}", 12)
    (root_a / f"p-{RUN}.yaml").write_text(yaml.safe_dump(capture_doc(f"sqlite:///{db}", f"inside-{RUN}")), "utf-8")
    r = httpx.post(
        base + "/jobs", headers=op_a, json={"action": "pipeline.capture", "params": {"path": f"p-{RUN}.yaml"}}
    )
    assert r.status_code == 202, r.text
    job = wait_for(
        lambda: (
            (j := httpx.get(base + f"/jobs/{r.json()['id']}", headers=op_a).json())["state"]
            not in ("queued", "running")
            and j
        ),
        90,
    )
    assert job["state"] == "succeeded" and job["result"]["published"] == 12, job
    # tenant b: neither absolute nor relative paths reach tenant a's root
    for path in (str(root_a / f"p-{RUN}.yaml"), f"../ta/p-{RUN}.yaml"):
        r = httpx.post(base + "/jobs", headers=op_b, json={"action": "pipeline.capture", "params": {"path": path}})
        assert r.status_code == 422, r.text
    doc = capture_doc(f"sqlite:///{db}", f"b-{RUN}")
    r = httpx.post(base + "/jobs", headers=op_b, json={"action": "pipeline.capture", "params": {"document": doc}})
    assert r.status_code == 422, r.text
    # a file that is not a pipeline: named by position and problem, its content not quoted
    (root_a / f"bad-{RUN}.yaml").write_text("secret-line-7f3: [unclosed\n", encoding="utf-8")
    r = httpx.post(
        base + "/jobs", headers=op_a, json={"action": "pipeline.capture", "params": {"path": f"bad-{RUN}.yaml"}}
    )
    assert r.status_code == 422 and "line" in r.text and "secret-line-7f3" not in r.text, r.text
    (root_a / f"notdoc-{RUN}.yaml").write_text("name: secret-value-91\nsource: 1\n", encoding="utf-8")
    r = httpx.post(
        base + "/jobs", headers=op_a, json={"action": "pipeline.capture", "params": {"path": f"notdoc-{RUN}.yaml"}}
    )
    assert r.status_code == 422 and "secret-value-91" not in r.text, r.text


def test_imports_and_file_connectors_stay_inside_the_root(api):
    base, op, settings = api
    dev = user(base, op, f"dev-f-{RUN}", "developer", "ta")
    root_a = settings.resolved_data_root / "ta" / f"files-{RUN}"
    (root_a / "manual").mkdir(parents=True)
    os.symlink("/etc/passwd", root_a / "manual" / "passwd.csv")

    def connector(name, root, **store):
        config = {
            "connector.class": "files",
            "system": f"fp{RUN}",
            "table": name.replace("-", "_"),
            "store": {"root": str(root), "pattern": "watched/*.csv", **store},
            "settle_seconds": 0,
        }
        return httpx.post(base + "/connectors", headers=dev, json={"name": name, "config": config})

    for name, root in (
        (f"etc-{RUN}", "/etc"),
        (f"state-{RUN}", settings.state_dir),
        (f"up-{RUN}", root_a / ".." / ".." / ".."),
    ):
        r = connector(name, root)
        assert r.status_code == 400 and "store.root" in r.text, r.text
    r = connector(f"pat-{RUN}", root_a, pattern="../../*")
    assert r.status_code == 400 and "store.pattern" in r.text, r.text
    r = connector(f"ctl-{RUN}", root_a)
    assert r.status_code == 201, r.text
    r = httpx.post(
        base + "/connectors",
        headers=dev,
        json={
            "name": f"cdb-{RUN}",
            "config": {
                "connector.class": "files",
                "system": "x",
                "table": "x",
                "store": {"root": str(root_a)},
                "control_db_url": f"sqlite:///{settings.state_dir / 'control.db'}",
            },
        },
    )
    assert r.status_code == 400 and "control_db_url" in r.text, r.text
    for path in ("/etc/passwd", "../../../etc/passwd", "manual/../../../../etc/passwd"):
        r = httpx.post(base + "/imports", headers=dev, json={"connector": f"ctl-{RUN}", "path": path})
        assert r.status_code == 422, r.text
    # a symlink inside the root pointing out: the import runs, the file is not read
    r = httpx.post(base + "/imports", headers=dev, json={"connector": f"ctl-{RUN}", "path": "manual/passwd.csv"})
    assert r.status_code == 202, r.text
    job = wait_for(
        lambda: (
            (j := httpx.get(base + f"/jobs/{r.json()['id']}", headers=op).json())["state"] not in ("queued", "running")
            and j
        ),
        90,
    )
    assert job["state"] == "succeeded" and job["result"]["imports"] == [], job
    assert_nothing_quoted(str(job), settings)


# -- live connection checks -------------------------------------------------------------------


class Listener:
    """A local TCP socket that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


def test_validation_of_a_disallowed_host_is_refused_before_any_connection(api, own_state_settings_local):
    from connectors.validation import validate

    base, op, settings = api
    dev = user(base, op, f"dev-p-{RUN}", "developer", "ta")
    listener = Listener()
    try:
        config = {
            "connector.class": "relational.timestamp",
            "url": f"postgresql+psycopg://u:guess@127.0.0.1:{listener.port}/db",
            "system": "s",
            "table": "t",
            "timestamp_column": "ts",
        }
        for route in ("/connector-plugins/relational.timestamp/config/validate", "/connectors"):
            body = config if route.endswith("validate") else {"name": f"probe-{RUN}", "config": config}
            method = httpx.put if route.endswith("validate") else httpx.post
            r = method(base + route, headers=dev, json=body)
            assert "not in the allowed hosts" in r.text and "guess" not in r.text, r.text
        for host in ("169.254.169.254", "10.1.2.3", "localhost"):
            r = httpx.put(
                base + "/connector-plugins/relational.timestamp/config/validate",
                headers=dev,
                json={**config, "url": f"postgresql+psycopg://u:p@{host}:{listener.port}/db"},
            )
            assert r.json()["error_count"] == 1 and "allowed hosts" in r.text, r.text
        time.sleep(0.5)
        assert listener.accepted == 0
        # the same check, allowed: it does connect (the listener sees it), and says no more than this
        allowed = own_state_settings_local.model_copy(
            update={"probe_allow": [f"127.0.0.1:{listener.port}"], "probe_timeout_s": 1.0}
        )
        _, errors = validate("x", config, allowed, tenant="ta", superuser=False)
        assert [e.field for e in errors] == ["url"] and errors[
            0
        ].message == f"cannot connect to 127.0.0.1:{listener.port}"
        assert listener.accepted >= 1
    finally:
        listener.close()


def test_sqlite_urls_only_inside_the_tenants_root(api):
    base, op, settings = api
    dev = user(base, op, f"dev-q-{RUN}", "developer", "ta")
    route = base + "/connector-plugins/relational.snapshot/config/validate"
    for target in (settings.state_dir / "control.db", "/etc/passwd", settings.resolved_data_root / "tb" / "x.db"):
        r = httpx.put(
            route,
            headers=dev,
            json={"connector.class": "relational.snapshot", "url": f"sqlite:///{target}", "system": "s"},
        )
        assert r.status_code == 200 and r.json()["error_count"] >= 1, r.text
        assert "data root" in r.text or "server's own" in r.text, r.text
        assert "does not exist" not in r.text


def test_live_checks_are_rate_limited_per_principal(api):
    base, op, settings = api
    dev = user(base, op, f"dev-r-{RUN}", "developer", "ta")
    other = user(base, op, f"dev-r2-{RUN}", "developer", "ta")
    root_a = settings.resolved_data_root / "ta"
    root_a.mkdir(parents=True, exist_ok=True)
    body = {"connector.class": "relational.snapshot", "url": f"sqlite:///{root_a / 'rate.db'}", "system": "s"}
    route = base + "/connector-plugins/relational.snapshot/config/validate"
    codes = [httpx.put(route, headers=dev, json=body).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429], codes
    r = httpx.put(route, headers=dev, json=body)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert httpx.put(route, headers=other, json=body).status_code == 200  # per principal


# -- running unprivileged ----------------------------------------------------------------------


def _unprivileged_prefix() -> list[str]:
    """A command prefix running as `nobody` that can still execute this interpreter, or skip."""
    if os.geteuid() != 0:
        pytest.skip("the test process is not root: it cannot switch to another user")
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    if not setpriv:
        pytest.skip("setpriv is not installed")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    probe = subprocess.run([*drop, sys.executable, "-c", "import api.app"], capture_output=True)
    if probe.returncode == 0:
        return drop
    # The interpreter lives under a directory `nobody` cannot enter (e.g. /root/.pyenv): in a private
    # mount namespace, put an empty /root over it and bind only the interpreter's tree back.
    real = os.path.realpath(sys.executable)
    top = "/root/.pyenv" if real.startswith("/root/.pyenv/") else None
    if not (unshare and top):
        pytest.skip(f"nobody cannot execute {real} and no way around it here")
    script = (
        f"set -e; mkdir -p /tmp/hl-py-{RUN}; mount --bind {top} /tmp/hl-py-{RUN}; "
        f"mount -t tmpfs -o mode=0755 tmpfs /root; mkdir -p {top}; mount --bind /tmp/hl-py-{RUN} {top}; "
        'exec "$@"'
    )
    prefix = [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", *drop]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import api.app"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot run the interpreter as nobody: {probe.stderr.decode()[-300:]}")
    return prefix


def test_the_api_runs_as_an_unprivileged_user(stack_settings):
    prefix = _unprivileged_prefix()
    state = tempfile.mkdtemp(prefix="huiliu-nobody-")
    os.chmod(state, 0o755)
    os.chown(state, 65534, 65534)
    port = stack_settings.api_port + 8
    settings = stack_settings.model_copy(update={"state_dir": state, "control_db_url": "", "api_port": port})
    env = {**os.environ, **settings_env(settings), "HOME": state, "HUILIU_OPS_LOOPS": "1"}
    env.pop("HUILIU_API_KEY", None)
    log = open(os.path.join(state, "..", f"huiliu-nobody-{RUN}.out"), "wb")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log, cwd=os.getcwd()
    )
    base = f"http://{settings.api_host}:{port}"
    try:
        key_file = os.path.join(state, "api_key")
        wait_for(lambda: os.path.exists(key_file) and _get(base + "/openapi.json"), timeout=60)
        with open(key_file, encoding="utf-8") as f:
            key = f.read().strip()
        op = {"X-API-Key": key}
        health = httpx.get(base + "/health", headers=op, timeout=30)
        assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded"), health.text
        uids = {os.stat(os.path.join(state, n)).st_uid for n in ("api_key", "jwt_signing_key", "control.db")}
        assert uids == {65534}  # written by the unprivileged process
        for name in (*KEY_FILES, "control.db"):
            r = httpx.post(
                base + "/jobs",
                headers=op,
                json={"action": "pipeline.capture", "params": {"path": os.path.join(state, name)}},
            )
            assert r.status_code == 422 and key not in r.text, r.text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def _get(url):
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_a_worker_never_runs_a_stored_connector_pointing_outside_its_root(own_state_settings_local):
    """Connectors saved before the checks (or straight into the control DB) fail at once."""
    from connectors.store import ConnectorRecord
    from connectors.task_runner import ConfigInvalid, build_runtime

    settings = own_state_settings_local
    inside = settings.resolved_data_root / "ta" / "in"
    inside.mkdir(parents=True)
    for tenant, root in (
        ("ta", "/etc"),
        ("ta", str(settings.resolved_data_root / "tb")),
        (None, str(settings.state_dir)),
    ):
        config = {"connector.class": "files", "system": "s", "table": "t", "store": {"root": root}}
        record = ConnectorRecord(f"old-{RUN}", "source", "files", config, "RUNNING", 1, 1, 0.0, 0.0, tenant)
        with pytest.raises(ConfigInvalid, match="store.root"):
            build_runtime(record, settings, codec=object())
    config = {"connector.class": "files", "system": "s", "table": "t", "store": {"root": str(inside)}}
    record = ConnectorRecord(f"ok-{RUN}", "source", "files", config, "RUNNING", 1, 1, 0.0, 0.0, "ta")
    runtime = build_runtime(record, settings, codec=object())  # builds (nothing read yet)
    runtime.task.close()


def test_alert_email_to_a_host_off_the_allow_list_is_not_attempted(api):
    base, op, settings = api
    listener = Listener()
    try:
        channel = {"smtp_host": "127.0.0.1", "smtp_port": listener.port, "to": ["ops@example.org"]}
        rule = {
            "name": f"smtp-probe-{RUN}",
            "kind": "sink_down",
            "enabled": False,
            "params": {"pipeline": f"never-{RUN}", "for_seconds": 0},
            "channel": channel,
        }
        assert httpx.post(base + "/alerts/rules", headers=op, json=rule).status_code in (200, 201)
        out = httpx.post(base + f"/alerts/rules/smtp-probe-{RUN}/evaluate", headers=op).json()["alerts"]
        assert out[0]["delivery"].startswith("refused:") and "allowed hosts" in out[0]["delivery"], out
        time.sleep(0.3)
        assert listener.accepted == 0
    finally:
        listener.close()


def test_a_connector_is_checked_in_its_own_tenants_scope(api):
    """The operator creating tenant a's connector: its paths must be inside tenant a's root."""
    base, op, settings = api
    other = settings.resolved_data_root / "tb" / f"x-{RUN}"
    other.mkdir(parents=True, exist_ok=True)
    config = {"connector.class": "files", "system": "s", "table": "t", "store": {"root": str(other)}}
    r = httpx.post(base + "/connectors", headers=op, json={"name": f"cross-{RUN}", "config": config, "tenant": "ta"})
    assert r.status_code == 400 and "store.root" in r.text, r.text
    mine = settings.resolved_data_root / "ta" / f"x-{RUN}"
    mine.mkdir(parents=True, exist_ok=True)
    config["store"]["root"] = str(mine)
    r = httpx.post(base + "/connectors", headers=op, json={"name": f"own-{RUN}", "config": config, "tenant": "ta"})
    assert r.status_code == 201, r.text
