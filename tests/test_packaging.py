"""Huiliu as a distribution: a wheel built from the checkout's tracked files installs into a fresh
virtualenv from the lock, and `huiliu --help`, `huiliu stack up` and `huiliu demo` work from it
(run outside the repository, so nothing is imported from the checkout)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PORT_BASE

pytestmark = pytest.mark.integration  # builds and installs a wheel, starts a stack

REPO = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(REPO / ".tools" / "bin")) or shutil.which("uv")
BASE = PORT_BASE + 600  # the demo and stack below run on a port block of their own


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from the files git tracks or would track (a clean clone after commit), not from build leftovers."""
    assert UV, "uv not found: `make install-test` installs it into .tools/"
    src = tmp_path_factory.mktemp("clean-clone")
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    run([UV, "build", "--wheel", "--out-dir", str(out), str(src)], timeout=300)
    (built,) = out.glob("huiliu-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the lock's versions (hashes checked) and the wheel, extras `stack`."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    run([UV, "venv", "--python", os.environ.get("PYTHON", "python3"), str(venv)], timeout=120)
    locked = venv / "requirements.txt"
    run(
        [
            UV,
            "export",
            "--frozen",
            "--extra",
            "stack",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "-o",
            str(locked),
        ],
        cwd=REPO,
    )
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    run([UV, "pip", "install", "--require-hashes", "-r", str(locked)], env=env, timeout=900)
    run([UV, "pip", "install", "--no-deps", str(wheel)], env=env, timeout=300)
    return venv


def test_wheel_ships_package_code_and_its_data_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("huiliu-")}
    assert tops == {"api", "connectors", "deploy", "quality_stream", "schemas", "sinks", "streams"}
    assert "quality_stream/data/gb2260_divisions.csv" in names and "deploy/demo/population.yaml" in names
    leaked = [n for n in names if n.startswith(("tests/", "deploy/production/", "deploy/flink/"))]
    assert leaked == []


def test_version_has_one_source(installed):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = run([str(installed / "bin" / "huiliu"), "--version"], cwd=installed).stdout
    assert out.strip() == f"huiliu {version}"


def test_a_missing_extra_is_named(installed):
    """The wheel was installed with `stack` only: the HBase sink says which extra it needs."""
    code = (
        "from connectors.plugins import get, UnknownPlugin\n"
        "try:\n    get('hbase')\nexcept UnknownPlugin as exc:\n    print(exc)\n"
    )
    out = run([str(installed / "bin" / "python"), "-c", code], cwd=installed).stdout
    assert "huiliu[hbase]" in out


@pytest.mark.long  # a wheel's stack and demo (about a minute): `make test-long`
def test_huiliu_stack_and_demo_from_the_wheel(installed, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUILIU_", "VIRTUAL_ENV", "PYTHONPATH"))},
        "HUILIU_STATE_DIR": str(tmp_path / "state"),
        "HUILIU_KAFKA_BOOTSTRAP": f"127.0.0.1:{BASE + 92}",
        "HUILIU_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{BASE + 81}",
        "HUILIU_CLICKHOUSE_URL": f"clickhouse://default:@127.0.0.1:{BASE}/default",
        "HUILIU_CLICKHOUSE_HTTP_PORT": str(BASE + 123),
        "HUILIU_API_PORT": str(BASE + 100),
        "HUILIU_DEMO_SOURCE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",  # embedded SQLite
        "COLUMNS": "200",
    }
    huiliu = str(installed / "bin" / "huiliu")
    assert "stack" in run([huiliu, "--help"], cwd=tmp_path, env=env).stdout
    try:
        run([huiliu, "stack", "up"], cwd=tmp_path, env=env, timeout=300)
        status = run([huiliu, "stack", "status"], cwd=tmp_path, env=env).stdout
        assert "broker" in status and "clickhouse" in status.lower()
    finally:
        run([huiliu, "stack", "down"], cwd=tmp_path, env=env, timeout=120)
    out = run([huiliu, "demo", "--rows", "200"], cwd=tmp_path, env=env, timeout=600).stdout
    captured = int(re.search(r"rows captured \(source\)\s*│\s*(\d+)", out).group(1))
    assert captured == 200
