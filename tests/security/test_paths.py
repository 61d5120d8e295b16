"""File paths from callers: job and schedule params, imports, file connectors' roots and patterns,
SQLite URLs in connector configs and pipeline documents, and path parameters in URLs.

Each is sent traversal (`../../etc/passwd`), absolute paths (`/etc/passwd`, the state dir's
`jwt_signing_key`, `connector_secrets.key`, `api_key`), tenant a's files, and names that are
symlinks (placed in tenant b's data root) to the key files. Escapes must be refused (4xx) before
anything runs; and whatever happens, no response -- nor any job error, run error or import report
read afterwards -- may contain a key file's content or /etc/passwd's.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.security.world import RUN, A, B, files_config, pipeline_document, tenant_root, wait_until

pytestmark = pytest.mark.security

REFUSED = (400, 403, 404, 409, 422, 429)


def escapes(world) -> dict[str, str]:
    """Paths that leave tenant b's data root (or reach the server's state): must be refused."""
    state = world.settings.state_dir
    b_root = tenant_root(world.settings, B)
    return {
        "traversal": "../../etc/passwd",
        "deep traversal": "../" * 12 + "etc/passwd",
        "absolute /etc/passwd": "/etc/passwd",
        "absolute jwt_signing_key": str(state / "jwt_signing_key"),
        "absolute connector_secrets.key": str(state / "connector_secrets.key"),
        "absolute api_key": str(state / "api_key"),
        "relative to jwt_signing_key": os.path.relpath(state / "jwt_signing_key", b_root),
        "tenant a's file (relative)": f"../{A}/manual/a.csv",
        "tenant a's file (absolute)": str(tenant_root(world.settings, A) / "manual" / "a.csv"),
        "home dir": "~/.ssh/id_rsa",
        "proc environ": "/proc/self/environ",
        "symlink to jwt_signing_key": "evil-link.yaml",
        "symlink to api_key (csv)": "evil.csv",
        "through a symlinked dir": "evil-dir/connector_secrets.key",
    }


# Odd but literal names: inside the root as far as the file system is concerned (a file called
# "..%2f.."), so refusal is not required -- only that nothing leaks.
LITERAL = {
    "encoded traversal": "..%2f..%2f..%2fetc%2fpasswd",
    "double-encoded traversal": "%2e%2e/%2e%2e/etc/passwd",
    "backslash traversal": "..\\..\\etc\\passwd",
}


@pytest.fixture(scope="module")
def b_files(world):
    """Tenant b's file connector (for imports) and the symlinks in tenant b's data root."""
    state, b_root = world.settings.state_dir, tenant_root(world.settings, B)
    (b_root / "watched").mkdir(exist_ok=True)
    for name, target in (
        ("evil-link.yaml", state / "jwt_signing_key"),
        ("evil.csv", state / "api_key"),
        ("evil-dir", state),
    ):
        link = b_root / name
        if not link.is_symlink():
            link.symlink_to(target)
    name = f"{B}-files"
    r = world.call(
        world.b.headers["developer"],
        "POST",
        "/connectors",
        json={"name": name, "config": files_config(b_root, f"sb{RUN}", "files_in")},
    )
    assert r.status_code == 201, r.text
    return name


def _outcome(world, r, what: str, must_refuse: bool) -> list[str]:
    problems = [f"{what}: answer contains {leak}" for leak in world.leaks(r.text)]
    if r.status_code >= 500:
        problems.append(f"{what}: server error {r.status_code}")
    elif must_refuse and r.status_code not in REFUSED:
        problems.append(f"{what}: accepted ({r.status_code}), expected a refusal: {r.text[:200]}")
    return problems


def _finished_job(world, auth, job_id: str) -> dict:
    """The job once finished, read with the operator key: jobs are their submitter's, and a
    developer submits imports without holding jobs:manage."""
    return (
        wait_until(
            lambda: (j := world.op("GET", f"/jobs/{job_id}").json()).get("state") not in ("queued", "running") and j,
            15,
            0.3,
        )
        or {}
    )


def _after_job(world, auth, r, what: str) -> list[str]:
    """An accepted job: its final state, error and result must not carry file contents."""
    if not (200 <= r.status_code < 300):
        return []
    job_id = r.json().get("id") or r.json().get("job_id")
    if not job_id:
        return []
    job = _finished_job(world, auth, job_id)
    return [f"{what}: the job's answer contains {leak}" for leak in world.leaks(str(job))]


def _labels() -> list[tuple[str, bool]]:
    # escapes() needs the world; the labels are fixed, so list them here for parametrisation
    return [
        ("traversal", True),
        ("deep traversal", True),
        ("absolute /etc/passwd", True),
        ("absolute jwt_signing_key", True),
        ("absolute connector_secrets.key", True),
        ("absolute api_key", True),
        ("relative to jwt_signing_key", True),
        ("tenant a's file (relative)", True),
        ("tenant a's file (absolute)", True),
        ("home dir", True),
        ("proc environ", True),
        ("symlink to jwt_signing_key", True),
        ("symlink to api_key (csv)", True),
        ("through a symlinked dir", True),
        *((label, False) for label in LITERAL),
    ]


def _path(world, label: str) -> str:
    return LITERAL.get(label) or escapes(world)[label]


@pytest.mark.parametrize("label,must_refuse", _labels(), ids=[x for x, _ in _labels()])
def test_job_params_path(world, b_files, label, must_refuse):
    """POST /jobs pipeline.capture {"path": P}: tenant b's operator, and the operator key (whose
    root is the whole data root, but never the server's state)."""
    path, problems = _path(world, label), []
    callers = [("tenant b's operator", world.b.headers["operator"])]
    if label.startswith("absolute") and label.endswith("key"):  # server state: refused even to superusers
        callers.append(("the operator key", world.operator))
    for who, auth in callers:
        r = world.call(auth, "POST", "/jobs", json={"action": "pipeline.capture", "params": {"path": path}})
        problems += _outcome(world, r, f"POST /jobs path={path!r} as {who}", must_refuse)
        problems += _after_job(world, auth, r, f"POST /jobs path={path!r} as {who}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label,must_refuse", _labels(), ids=[x for x, _ in _labels()])
def test_schedule_params_path(world, b_files, label, must_refuse):
    """POST /schedules and PATCH /schedules/{sid} with pipeline.capture {"path": P}."""
    path, auth, problems = _path(world, label), world.b.headers["operator"], []
    name = f"{B}-fuzz-{abs(hash(label)) % 10**8}"
    body = {"name": name, "action": "pipeline.capture", "params": {"path": path}}
    r = world.call(auth, "POST", "/schedules", json=body)
    problems += _outcome(world, r, f"POST /schedules path={path!r}", must_refuse)
    sid = r.json().get("id") if r.status_code == 201 else None
    if sid is None:  # refused: try the same through PATCH of a harmless schedule of tenant b
        r = world.call(auth, "POST", "/schedules", json={"name": name, "action": "noop", "params": {}})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        p = world.call(
            auth, "PATCH", f"/schedules/{sid}", json={"action": "pipeline.capture", "params": {"path": path}}
        )
        problems += _outcome(world, p, f"PATCH /schedules params.path={path!r}", must_refuse)
    run = world.call(auth, "POST", f"/schedules/{sid}/run")
    if run.status_code == 202 and run.json().get("id"):
        rid = run.json()["id"]
        done = wait_until(
            lambda: (x := world.call(auth, "GET", f"/schedule-runs/{rid}").json()).get("status") != "running" and x, 15
        )
        problems += [f"schedule run of path={path!r}: contains {leak}" for leak in world.leaks(str(done))]
    world.call(auth, "DELETE", f"/schedules/{sid}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label,must_refuse", _labels(), ids=[x for x, _ in _labels()])
def test_import_path(world, b_files, label, must_refuse):
    """POST /imports {"connector": tenant b's file connector, "path": P}; then the job and reports.

    An import path is a glob below the connector's root, so a refusal may also come when the job
    runs (the job fails and imports nothing); `~` is a literal name there, not the home dir."""
    path, auth = _path(world, label), world.b.headers["developer"]
    must_refuse = must_refuse and label != "home dir"
    r = world.call(auth, "POST", "/imports", json={"connector": b_files, "path": path})
    problems = _outcome(world, r, f"POST /imports path={path!r}", False)
    if 200 <= r.status_code < 300:
        job = _finished_job(world, auth, r.json()["id"])
        problems += [f"POST /imports path={path!r}: the job's answer contains {leak}" for leak in world.leaks(str(job))]
        imported = ((job.get("result") or {}).get("imports")) or []
        if job.get("state") in (None, "queued", "running"):
            problems.append(f"POST /imports path={path!r}: the job did not finish: {job}")
        elif must_refuse and imported:
            problems.append(f"POST /imports path={path!r}: imported a file outside the root: {imported}")
    elif must_refuse and r.status_code not in REFUSED:
        problems.append(f"POST /imports path={path!r}: unexpected {r.status_code}")
    reports = world.call(auth, "GET", "/imports", params={"connector": b_files, "limit": 1000})
    problems += [f"GET /imports after path={path!r}: contains {leak}" for leak in world.leaks(reports.text)]
    for item in reports.json().get("imports", []) if reports.status_code == 200 else []:
        one = world.call(auth, "GET", f"/imports/{item['id']}")
        problems += [f"GET /imports/{item['id']}: contains {leak}" for leak in world.leaks(one.text)]
    assert not problems, "\n".join(problems)


def _roots(world) -> dict[str, tuple[str, str]]:
    """(root, pattern) of file connector configs that reach outside tenant b's data root."""
    state, b_root, a_root = world.settings.state_dir, tenant_root(world.settings, B), tenant_root(world.settings, A)
    return {
        "root /etc": ("/etc", "passwd"),
        "root = state dir": (str(state), "jwt_signing_key"),
        "root = data root (all tenants)": (str(b_root.parent), "*/manual/*.csv"),
        "root = tenant a's area": (str(a_root), "manual/*.csv"),
        "root relative ../..": ("../..", "*"),
        "root through a symlinked dir": (str(b_root / "evil-dir"), "*"),
        "pattern traversal": (str(b_root), "../../*"),
        "pattern absolute": (str(b_root), "/etc/passwd"),
        "pattern into tenant a": (str(b_root), f"../{A}/manual/*.csv"),
    }


ROOT_LABELS = [
    "root /etc",
    "root = state dir",
    "root = data root (all tenants)",
    "root = tenant a's area",
    "root relative ../..",
    "root through a symlinked dir",
    "pattern traversal",
    "pattern absolute",
    "pattern into tenant a",
]


@pytest.mark.parametrize("label", ROOT_LABELS)
def test_file_connector_roots(world, label):
    """A file connector of tenant b may only watch tenant b's data root: create and validate."""
    root, pattern = _roots(world)[label]
    auth, problems = world.b.headers["developer"], []
    config = files_config(root, f"sb{RUN}", "fz", pattern=pattern)
    name = f"{B}-root-{ROOT_LABELS.index(label)}"
    r = world.call(auth, "POST", "/connectors", json={"name": name, "config": config})
    problems += _outcome(world, r, f"POST /connectors {label}", True)
    if r.status_code == 201:
        world.op("DELETE", f"/connectors/{name}")
    v = world.call(auth, "PUT", "/connector-plugins/files/config/validate", json=config)
    problems += [f"validate {label}: contains {leak}" for leak in world.leaks(v.text)]
    if v.status_code == 200 and v.json().get("error_count", 0) == 0:
        problems.append(f"PUT /connector-plugins/files/config/validate {label}: no error")
    assert not problems, "\n".join(problems)


def _sqlite_urls(world) -> dict[str, str]:
    state = world.settings.state_dir
    return {
        "control DB": f"sqlite:///{state / 'control.db'}",
        "/etc/passwd": "sqlite:////etc/passwd",
        "jwt_signing_key": f"sqlite:///{state / 'jwt_signing_key'}",
        "tenant a's area": f"sqlite:///{tenant_root(world.settings, A) / 'a.db'}",
        "URI filename": f"sqlite:///file:{state / 'control.db'}?mode=ro&uri=true",
    }


SQLITE_LABELS = ["control DB", "/etc/passwd", "jwt_signing_key", "tenant a's area", "URI filename"]


def _sqlite_config(url: str) -> dict:
    return {
        "connector.class": "relational.timestamp",
        "url": url,
        "system": f"sq{RUN}",
        "table": "identity_users",
        "timestamp_column": "created_at",
    }


@pytest.mark.parametrize("label", SQLITE_LABELS)
def test_sqlite_urls_outside_the_data_root(world, label):
    """SQLite URLs are file paths: connector configs (create, validate) and job documents."""
    url, problems = _sqlite_urls(world)[label], []
    dev, op = world.b.headers["developer"], world.b.headers["operator"]
    name = f"{B}-sqlite-{SQLITE_LABELS.index(label)}"
    r = world.call(dev, "POST", "/connectors", json={"name": name, "config": _sqlite_config(url)})
    problems += _outcome(world, r, f"POST /connectors sqlite {label}", True)
    if r.status_code == 201:
        world.op("DELETE", f"/connectors/{name}")
    v = world.call(dev, "PUT", "/connector-plugins/relational.timestamp/config/validate", json=_sqlite_config(url))
    problems += [f"validate sqlite {label}: contains {leak}" for leak in world.leaks(v.text)]
    if v.status_code == 200 and v.json().get("error_count", 0) == 0:
        problems.append(f"validate sqlite {label}: no error")
    doc = pipeline_document(f"{B}-sq", "x")
    doc["source"]["config"]["url"] = url
    j = world.call(op, "POST", "/jobs", json={"action": "pipeline.capture", "params": {"document": doc}})
    problems += _outcome(world, j, f"POST /jobs document with sqlite {label}", True)
    problems += _after_job(world, op, j, f"POST /jobs document with sqlite {label}")
    assert not problems, "\n".join(problems)


def test_sqlite_existence_is_not_an_oracle(world):
    """Validating a SQLite URL outside the root answers the same for a file that exists and one
    that does not (the refusal never says what is at the path)."""
    dev, state = world.b.headers["developer"], world.settings.state_dir
    answers = []
    for path in (state / "control.db", state / f"nothing-here-{RUN}.db"):
        r = world.call(
            dev,
            "PUT",
            "/connector-plugins/relational.timestamp/config/validate",
            json=_sqlite_config(f"sqlite:///{path}"),
        )
        answers.append((r.status_code, r.text.replace(str(path), "<path>")))
    assert answers[0] == answers[1], f"existing vs missing file answer differently:\n{answers[0]}\n{answers[1]}"


def test_path_parameters_in_urls_name_objects_not_files(world, openapi):
    """Traversal in URL path parameters (`..%2f`) finds no object and no file, on every GET route."""
    auth, problems = world.b.headers["admin"], []
    for template, item in openapi["paths"].items():
        if "get" not in item or "{" not in template:
            continue
        for evil in ("..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fjwt_signing_key", "..%252f..%252fapi_key"):
            path = template
            for p in item["get"].get("parameters", []):
                if p.get("in") == "path":
                    path = path.replace("{" + p["name"] + "}", evil)
            r = world.call(auth, "GET", path)
            problems += [f"GET {path}: contains {leak}" for leak in world.leaks(r.text)]
            if r.status_code >= 500 or r.status_code == 200 and "passwd" in r.text:
                problems.append(f"GET {path}: {r.status_code} {r.text[:200]}")
    assert not problems, "\n".join(problems)


def test_no_job_or_run_of_the_fuzzing_carries_file_contents(world, b_files):
    """Afterwards: every job, run and import report tenant b and the operator can read."""
    time.sleep(0.5)  # the last accepted jobs settle
    problems = []
    for who, auth in (("tenant b's operator", world.b.headers["operator"]), ("operator key", world.operator)):
        jobs = world.call(auth, "GET", "/jobs", params={"limit": 1000})
        problems += [f"GET /jobs as {who}: contains {leak}" for leak in world.leaks(jobs.text)]
        for job in jobs.json() if jobs.status_code == 200 else []:
            problems += [f"job {job['id']} as {who}: contains {leak}" for leak in world.leaks(str(job))]
    imports = world.op("GET", "/imports", params={"limit": 1000})
    problems += [f"GET /imports: contains {leak}" for leak in world.leaks(imports.text)]
    logs = world.op("GET", "/logs", params={"limit": 5000})
    problems += [f"GET /logs: contains {leak}" for leak in world.leaks(logs.text)]
    assert not problems, "\n".join(problems)
