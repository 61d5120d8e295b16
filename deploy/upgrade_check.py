"""Try the newest versions pyproject.toml allows, in a scratch environment, and report what broke.

    make upgrade-check                      # = python3 deploy/upgrade_check.py --uv .tools/bin/uv
    python3 deploy/upgrade_check.py --uv .tools/bin/uv -- -x tests/test_files_formats.py

Installs are locked (uv.lock); this is how an upgrade is made deliberately: it resolves the
newest allowed versions, lists every package whose version differs from the lock, installs them
in a throw-away virtualenv, runs the tests there (pytest arguments after `--`; default: the
whole suite) and prints which tests failed. The lock and .venv are not touched. If everything
passes, `uv lock --upgrade` (or `--upgrade-package NAME`) and `make test` make it the new lock.
Exit status: 0 all passed, 1 tests failed, 2 the newest versions do not even install.
Standard library only, so any Python 3.11 runs it (CI's weekly job `.ci/upgrade-check` does).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def locked_versions(lock_file: Path = REPO / "uv.lock") -> dict[str, set[str]]:
    """Name -> versions: a universal lock may hold two versions of one package (per Python version)."""
    lock = tomllib.loads(lock_file.read_text())
    found: dict[str, set[str]] = {}
    for package in lock["package"]:
        if "version" in package and package["name"] != "huiliu":
            found.setdefault(package["name"].lower().replace("_", "-"), set()).add(package["version"])
    return found


def newest_versions(uv: str, out: Path) -> dict[str, str]:
    cmd = [uv, "pip", "compile", str(REPO / "pyproject.toml"), "--extra", "test", "--upgrade"]
    subprocess.run([*cmd, "--no-header", "-q", "-o", str(out)], check=True, cwd=REPO)
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", out.read_text(), re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def changes(locked: dict[str, set[str]], newest: dict[str, str]) -> list[tuple[str, str, str]]:
    return sorted(
        (name, "/".join(sorted(locked.get(name, {"-"}))), version)
        for name, version in newest.items()
        if version not in locked.get(name, set()) and name != "huiliu"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uv", default="uv", help="the uv executable (make installs one into .tools/)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--port-base", default="28000", help="HUILIU_TEST_PORT_BASE for the scratch run")
    ap.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="huiliu-upgrade-") as tmp:
        work = Path(tmp)
        newest = newest_versions(args.uv, work / "newest.txt")
        diff = changes(locked_versions(), newest)
        print(f"{len(diff)} package(s) newer than the lock:")
        for name, old, new in diff:
            print(f"  {name:32} {old:>14} -> {new}")
        venv = work / "venv"
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        try:
            subprocess.run([args.uv, "venv", "-q", "--python", args.python, str(venv)], check=True)
            subprocess.run([args.uv, "pip", "install", "-q", "-r", str(work / "newest.txt")], check=True, env=env)
        except subprocess.CalledProcessError as exc:
            print(f"the newest allowed versions do not install: {exc}")
            return 2
        report = work / "report.txt"
        test_env = {**env, "HUILIU_TEST_PORT_BASE": args.port_base, "PYTHONPATH": str(REPO)}
        cmd = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider"]
        cmd += [f"--basetemp={work / 'pytest'}", *(args.pytest_args or ["tests"])]
        with open(report, "w") as out:
            code = subprocess.run(cmd, cwd=REPO, env=test_env, stdout=out, stderr=subprocess.STDOUT).returncode
        failed = [line for line in report.read_text().splitlines() if line.startswith(("FAILED", "ERROR"))]
        print("\n".join(report.read_text().splitlines()[-1:]))
        if code == 0:
            print("all tests passed on the newest versions: `.tools/bin/uv lock --upgrade` to take them")
            return 0
        print(f"{len(failed)} test(s) broke on the newest versions:")
        print("\n".join("  " + line for line in failed))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
