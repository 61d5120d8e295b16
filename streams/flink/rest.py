"""A Flink cluster's REST API, the little of it a runner needs (plain urllib: no extra client).

    overview(rest_url)                     -> [{"jid", "name", "state", "start-time", ...}]
    job_named(rest_url, name)              -> the newest job of that name, or None
    submit_python(rest_url, jar, module, args, parallelism) -> job id (upload a jar, run PythonDriver)
    cancel(rest_url, job_id)

A Python job reaches a session cluster as a jar run whose entry class is Flink's PythonDriver
(`-pym module args...`): the jar uploaded is the Kafka connector the job needs anyway, the
PythonDriver class comes from flink-python in the cluster's lib/, and the job's Python code must
be importable on the JobManager and TaskManagers (deploy/production: the image carries the repo and
the PyFlink venv).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"


class FlinkRestError(RuntimeError):
    pass


def _call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout=10.0):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise FlinkRestError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FlinkRestError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None
    return json.loads(raw) if raw else {}


def overview(rest_url: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    return _call(f"{rest_url.rstrip('/')}/jobs/overview", timeout=timeout).get("jobs", [])


def job_named(rest_url: str, name: str, timeout: float = 5.0) -> dict[str, Any] | None:
    jobs = [j for j in overview(rest_url, timeout) if j.get("name") == name]
    return max(jobs, key=lambda j: j.get("start-time", 0)) if jobs else None


def submit_python(rest_url: str, jar: Path, module: str, args: list[str], parallelism: int) -> str:
    base = rest_url.rstrip("/")
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="jarfile"; filename="{jar.name}"\r\n'
            "Content-Type: application/x-java-archive\r\n\r\n"
        ).encode()
        + jar.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    uploaded = _call(
        f"{base}/jars/upload",
        "POST",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    jar_id = uploaded["filename"].rsplit("/", 1)[-1]
    run = {"entryClass": PYTHON_DRIVER, "programArgsList": ["-pym", module, *args], "parallelism": parallelism}
    started = _call(
        f"{base}/jars/{jar_id}/run", "POST", json.dumps(run).encode(), {"Content-Type": "application/json"}, 300
    )
    return started["jobid"]


def cancel(rest_url: str, job_id: str) -> None:
    _call(f"{rest_url.rstrip('/')}/jobs/{job_id}?mode=cancel", "PATCH")
