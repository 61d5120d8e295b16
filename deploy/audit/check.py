"""Audit uv.lock against the vendored advisory snapshot: fail on a known vulnerability that has a fix.

    make audit                                  # = .venv/bin/python -m deploy.audit.check
    .venv/bin/python -m deploy.audit.check --lock uv.lock --snapshot deploy/audit/snapshot.json \\
        --allowlist deploy/audit/allowlist.toml

Every package version in uv.lock (test extras and every Python version's pick included) is matched
against the OSV records of `snapshot.json` (see `deploy.audit.snapshot` for where they come from
and how to refresh them; CI reaches no advisory service). Exit status 1 names each locked version
that an advisory marks affected and whose fix is released: package, locked version, advisory id
(aliases) and the version to upgrade to. Affected versions without a released fix are printed as
warnings, and so are locked packages the snapshot was not filtered for (refresh it). An advisory
can be accepted in `allowlist.toml` ([[accepted]] id = "...", reason = "..."; the id or any of its
aliases): it is then listed with its reason instead of failing. Exit status 2: unreadable input.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from deploy.audit.osv import Unevaluable, affects, first_fix
from deploy.audit.snapshot import SNAPSHOT
from deploy.upgrade_check import REPO, locked_versions

ALLOWLIST = REPO / "deploy" / "audit" / "allowlist.toml"


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: dict
    fix: str | None

    @property
    def ids(self) -> set[str]:
        return {self.advisory["id"], *self.advisory.get("aliases", [])}

    def __str__(self) -> str:
        aliases = ", ".join(self.advisory.get("aliases", []))
        named = self.advisory["id"] + (f" ({aliases})" if aliases else "")
        fixed = f": fixed in {self.fix}" if self.fix else ": no fixed release"
        return f"{self.package} {self.version}: {named}{fixed} -- {self.advisory.get('summary', '')}"


def read_allowlist(path: Path) -> dict[str, str]:
    """Accepted advisory id -> reason; an entry without a reason is refused."""
    if not path.exists():
        return {}
    accepted = {}
    for entry in tomllib.loads(path.read_text()).get("accepted", []):
        if not str(entry.get("id", "")).strip() or not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path}: every [[accepted]] entry needs an id and a reason: {entry}")
        accepted[entry["id"]] = entry["reason"]
    return accepted


def audit(locked: dict[str, set[str]], advisories: list[dict]) -> tuple[list[Finding], list[str]]:
    """The findings for every locked version, and the advisories whose ranges cannot be compared."""
    by_package: dict[str, list[dict]] = {}
    for advisory in advisories:
        for name in {canonicalize_name(entry["package"]["name"]) for entry in advisory["affected"]}:
            by_package.setdefault(name, []).append(advisory)
    findings, unreadable = [], []
    for package in sorted(locked):
        for version in sorted(locked[package]):
            for advisory in by_package.get(package, []):
                try:
                    if affects(advisory, package, version):
                        findings.append(Finding(package, version, advisory, first_fix(advisory, package, version)))
                except Unevaluable as error:
                    unreadable.append(f"{package} {version}: {error}")
    return findings, unreadable


def report(findings: list[Finding], accepted: dict[str, str]) -> tuple[list[str], int]:
    """The report's lines and the number of failures (affected, fix released, not accepted)."""
    failing, unfixed, allowed = [], [], []
    for finding in findings:
        if accepted_as := next((i for i in sorted(finding.ids) if i in accepted), None):
            allowed.append((finding, accepted_as))
        else:
            (failing if finding.fix else unfixed).append(finding)
    lines = [f"FAIL {f}" for f in failing]
    lines += [f"warning: affected, no fix released yet: {f}" for f in unfixed]
    lines += [f"accepted ({accepted[i]}): {f}" for f, i in allowed]
    matched = {i for f in findings for i in f.ids}
    lines += [f"note: allowlist entry {i} matches nothing in the lock: remove it" for i in accepted if i not in matched]
    lines.append(f"result: {len(failing)} to upgrade, {len(unfixed)} without a fix, {len(allowed)} accepted")
    return lines, len(failing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=REPO / "uv.lock")
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    args = parser.parse_args(argv)
    try:
        locked = {canonicalize_name(name): versions for name, versions in locked_versions(args.lock).items()}
        snapshot = json.loads(args.snapshot.read_text())
        accepted = read_allowlist(args.allowlist)
    except (OSError, ValueError) as error:  # tomllib's and json's decode errors are ValueErrors
        print(f"lock audit: {error}", file=sys.stderr)
        return 2
    source = snapshot["source"]
    age = (datetime.date.today() - datetime.date.fromisoformat(source["date"][:10])).days
    print(
        f"lock audit: {sum(map(len, locked.values()))} versions of {len(locked)} packages in {args.lock.name} against "
        f"{len(snapshot['advisories'])} advisories of {source['repository']}@{(source.get('commit') or '?')[:12]} "
        f"({source['date'][:10]}, {age} days old)"
    )
    findings, unreadable = audit(locked, snapshot["advisories"])
    lines, failures = report(findings, accepted)
    lines[-1:-1] = [f"warning: cannot compare, check by hand: {line}" for line in unreadable]
    missing = sorted(set(locked) - set(snapshot["packages"]))
    if missing:
        lines.insert(-1, f"warning: not in the snapshot, refresh it (deploy.audit.snapshot): {', '.join(missing)}")
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
