"""Rewrite deploy/audit/snapshot.json: the advisories of the PyPA Advisory Database that concern uv.lock.

    git clone https://github.com/pypa/advisory-database /tmp/advisory-database
    .venv/bin/python -m deploy.audit.snapshot --from /tmp/advisory-database
    .venv/bin/python -m deploy.audit.check        # then review the diff and commit it

CI reaches no advisory service, so the lock is audited against this vendored snapshot; a machine
with the network refreshes it. `--from` takes a clone (its commit and date are read with git) or
any folder or .zip of OSV records in YAML or JSON, e.g. osv.dev's PyPI `all.zip` (then say
`--repository`, `--commit` if any and `--date`). Kept: the records naming a package of uv.lock
(every one, test extras and all Python versions included), not withdrawn; of each only the id,
aliases, a summary (200 characters), dates and the `affected` entries of those packages with their ECOSYSTEM ranges,
and of the explicit `versions` list only the versions the ranges do not already cover, so the
matching answers exactly as on the whole record while the file stays small enough to review.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from deploy.audit.osv import Unevaluable, entry_intervals, package_entries
from deploy.upgrade_check import REPO, locked_versions

SNAPSHOT = REPO / "deploy" / "audit" / "snapshot.json"
SUMMARY_CHARS = 200
_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 7,000 files


def read_records(source: Path) -> Iterator[dict]:
    """Every OSV record in a folder tree or a .zip (YAML as the PyPA database, JSON as osv.dev).

    Other YAML and JSON files of a clone (CI workflows, triage lists) have no `id` and are dropped
    by `trimmed`; hidden folders (.git, .github) are not read at all."""
    if source.is_dir():
        paths = (p for p in sorted(source.rglob("*")) if p.is_file())
        visible = (p for p in paths if not any(part.startswith(".") for part in p.relative_to(source).parts))
        files = ((p.name, p.read_bytes) for p in visible)
    else:
        archive = zipfile.ZipFile(source)
        files = ((n, lambda n=n: archive.read(n)) for n in sorted(archive.namelist()))
    for name, read in files:
        if name.endswith((".yaml", ".yml")):
            record = yaml.load(read(), Loader=_YAML)
        elif name.endswith(".json"):
            record = json.loads(read())
        else:
            continue
        if isinstance(record, dict):
            yield record


def _covered(entry: dict, record_id: str) -> set[str]:
    """The listed versions that the entry's ranges already mark affected (redundant in the list)."""
    try:
        spans = entry_intervals(entry, record_id)
    except Unevaluable:
        return set()  # keep the whole list: the check reports the range it cannot read
    covered = set()
    for text in entry.get("versions", []):
        try:
            if any(span.holds(Version(text)) for span in spans):
                covered.add(text)
        except InvalidVersion:
            pass
    return covered


def _summary(record: dict) -> str:
    text = " ".join((record.get("summary") or record.get("details") or "").split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _iso(value: object) -> str:
    """YAML reads unquoted dates as datetimes, JSON leaves strings: both written as ISO 8601."""
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def trimmed(record: dict, packages: set[str]) -> dict | None:
    """The part of `record` that the check reads for `packages`, or None if it names none of them."""
    if record.get("withdrawn") or "id" not in record:
        return None
    entries = package_entries(record, packages)
    if not entries:
        return None
    affected = []
    for entry in entries:
        redundant = _covered(entry, record["id"])
        affected.append(
            {
                "package": {"ecosystem": "PyPI", "name": canonicalize_name(entry["package"]["name"])},
                "ranges": [span for span in entry.get("ranges", []) if span.get("type") == "ECOSYSTEM"],
            }
        )
        if listed := [v for v in entry.get("versions", []) if v not in redundant]:
            affected[-1]["versions"] = listed
    dates = {key: _iso(record[key]) for key in ("published", "modified") if key in record}
    summary = _summary(record)
    return {"id": record["id"], "aliases": record.get("aliases", []), "summary": summary, **dates, "affected": affected}


def git_provenance(source: Path) -> tuple[str, str] | None:
    """(commit, commit date) of a clone, None for anything that is not a git work tree."""
    if not source.is_dir():
        return None
    done = subprocess.run(
        ["git", "-C", str(source), "log", "-1", "--format=%H %cI"], capture_output=True, text=True, check=False
    )
    return tuple(done.stdout.split()) if done.returncode == 0 and done.stdout.strip() else None


def build(source: Path, lock: Path, repository: str, commit: str | None, date: str) -> dict:
    packages = {canonicalize_name(name) for name in locked_versions(lock)}
    advisories = [kept for record in read_records(source) if (kept := trimmed(record, packages))]
    advisories.sort(key=lambda a: (a["affected"][0]["package"]["name"], a["id"]))
    return {
        "source": {"repository": repository, "commit": commit, "date": date},
        "refreshed": datetime.date.today().isoformat(),
        "refresh": "python -m deploy.audit.snapshot --from <clone of pypa/advisory-database>; see its docstring",
        "packages": sorted(packages),
        "advisories": advisories,
    }


def as_text(snapshot: dict) -> str:
    """JSON with one advisory a line, so a refresh's diff reads advisory by advisory."""
    head = json.dumps({k: v for k, v in snapshot.items() if k != "advisories"}, indent=1, ensure_ascii=False)
    lines = ",\n".join("  " + json.dumps(advisory, ensure_ascii=False) for advisory in snapshot["advisories"])
    return head.removesuffix("\n}") + ',\n "advisories": [\n' + lines + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="clone, folder or .zip of OSV records")
    parser.add_argument("--lock", type=Path, default=REPO / "uv.lock")
    parser.add_argument("--out", type=Path, default=SNAPSHOT)
    parser.add_argument("--repository", default="pypa/advisory-database", help="where the records came from")
    parser.add_argument("--commit", help="the source's commit (read from git for a clone)")
    parser.add_argument("--date", help="the source's date, ISO 8601 (read from git for a clone)")
    args = parser.parse_args(argv)
    commit, date = git_provenance(args.source) or (args.commit, args.date)
    commit, date = args.commit or commit, args.date or date
    if not date:
        parser.error(f"{args.source} is not a git clone: give --date (and --commit if it has one)")
    snapshot = build(args.source, args.lock, args.repository, commit, date)
    args.out.write_text(as_text(snapshot))
    print(
        f"{args.out}: {len(snapshot['advisories'])} advisories for {len(snapshot['packages'])} locked packages "
        f"from {args.repository}@{commit or '?'} ({date})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
