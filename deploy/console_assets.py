"""The web console's front-end libraries, vendored from the npm registry at pinned versions.

    python -m deploy.console_assets           # re-fetch every library (`make console-assets`)
    python -m deploy.console_assets --check   # verify the vendored files against the manifest

Each library is fetched with `npm pack <name>@<version>`; the tarball's sha512 must equal the
integrity written below (what the registry reported when the version was pinned), then its minified
dist file and licence are copied into `api/console/static/vendor/<name>/` and
`api/console/static/vendor/manifest.json` records name, version, integrity, files and their sha256.
The files are committed, so a fresh machine (and the wheel) needs no npm; only upgrading does:
change a version and its integrity here (`npm view <name>@<version> dist.integrity`), run this.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "api" / "console" / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    integrity: str  # npm's dist.integrity of the tarball
    files: dict[str, str]  # path inside the package -> file name under vendor/<name>/


LIBRARIES = (
    Library(
        "htmx.org",
        "2.0.11",
        "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        {"dist/htmx.min.js": "htmx.min.js", "LICENSE": "LICENSE"},
    ),
    Library(
        "echarts",
        "6.1.0",
        "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==",
        {"dist/echarts.min.js": "echarts.min.js", "LICENSE": "LICENSE", "NOTICE": "NOTICE"},
    ),
    Library(
        "cytoscape",
        "3.35.0",
        "sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g==",
        {"dist/cytoscape.min.js": "cytoscape.min.js", "LICENSE": "LICENSE"},
    ),
)


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(lib: Library, work: Path) -> dict:
    """npm pack the pinned version, check its integrity, copy the listed files; the manifest entry."""
    done = subprocess.run(
        ["npm", "pack", f"{lib.name}@{lib.version}", "--json", "--pack-destination", str(work)],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    reported = json.loads(done.stdout)[0]
    tarball = work / reported["filename"]
    actual = sri_sha512(tarball.read_bytes())
    if actual != lib.integrity or reported.get("integrity") != lib.integrity:
        raise SystemExit(
            f"{lib.name}@{lib.version}: integrity {actual} (npm says {reported.get('integrity')}), pinned {lib.integrity}"
        )
    target = VENDOR / lib.name
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for inner, name in lib.files.items():
            member = tar.extractfile(f"package/{inner}")
            if member is None:
                raise SystemExit(f"{lib.name}@{lib.version}: {inner} is not in the package")
            (target / name).write_bytes(member.read())
    return {
        "name": lib.name,
        "version": lib.version,
        "integrity": lib.integrity,
        "files": {name: _sha256(target / name) for name in lib.files.values()},
    }


def check() -> list[str]:
    """Problems of the vendored files: missing, changed, or not the pinned versions."""
    if not MANIFEST.exists():
        return [f"{MANIFEST} is missing"]
    entries = {e["name"]: e for e in json.loads(MANIFEST.read_text())["libraries"]}
    problems = []
    for lib in LIBRARIES:
        entry = entries.get(lib.name)
        if entry is None or entry["version"] != lib.version or entry["integrity"] != lib.integrity:
            problems.append(f"{lib.name}: manifest does not record {lib.version} with the pinned integrity")
            continue
        for name, digest in entry["files"].items():
            path = VENDOR / lib.name / name
            if not path.exists() or _sha256(path) != digest:
                problems.append(f"{lib.name}: {name} is missing or differs from the manifest")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the vendored files, fetch nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "vendored console libraries match the manifest")
        return 1 if problems else 0
    with tempfile.TemporaryDirectory() as tmp:
        entries = [fetch(lib, Path(tmp)) for lib in LIBRARIES]
    MANIFEST.write_text(json.dumps({"source": "npm registry (npm pack)", "libraries": entries}, indent=2) + "\n")
    names = ", ".join(f"{e['name']}@{e['version']}" for e in entries)
    print(f"vendored {names} into {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
