"""The lock audit (`make audit`) through its command line: a small lock, a small advisory set."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.audit.snapshot import as_text

REPO = Path(__file__).resolve().parents[1]


def _range(*events: tuple[str, str]) -> dict:
    return {"type": "ECOSYSTEM", "events": [{kind: version} for kind, version in events]}


def advisory(id_: str, package: str, *ranges: dict, versions: tuple[str, ...] = (), **fields) -> dict:
    entry = {"package": {"ecosystem": "PyPI", "name": package}, "ranges": list(ranges)}
    if versions:
        entry["versions"] = list(versions)
    return {"id": id_, "aliases": [], "summary": f"{id_} summary", "affected": [entry]} | fields


# One package per edge case, each advisory on its own package so a finding names its case.
ADVISORIES = [
    advisory("TEST-1", "fixme", _range(("introduced", "0"), ("fixed", "2.0.0")), aliases=["CVE-2099-1"]),
    advisory(
        "TEST-2", "multi", _range(("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "2.0"), ("fixed", "2.3"))
    ),
    advisory("TEST-3", "lastaff", _range(("introduced", "1.0"), ("last_affected", "1.4"))),
    advisory("TEST-4", "listed", versions=("0.9", "1.0.0rc1")),
    advisory("TEST-5", "gone", _range(("introduced", "0"), ("fixed", "9.0")), withdrawn="2024-01-01T00:00:00Z"),
    advisory("TEST-6", "open", _range(("introduced", "3.0"))),
]


def lock_file(path: Path, packages: dict[str, str]) -> Path:
    entries = [
        f'[[package]]\nname = "{name}"\nversion = "{version}"\nsource = {{ registry = "https://pypi.org/simple" }}\n'
        for name, version in packages.items()
    ]
    path.write_text("version = 1\n\n" + "\n".join(entries))
    return path


def snapshot_file(path: Path, advisories: list[dict], packages: list[str]) -> Path:
    source = {"repository": "test/advisories", "commit": "0123456789abcdef", "date": "2026-07-23T00:00:00+00:00"}
    path.write_text(as_text({"source": source, "packages": packages, "advisories": advisories}))
    return path


def audit(tmp_path: Path, locked: dict[str, str], allowlist: str = "", advisories=ADVISORIES, known=None):
    lock = lock_file(tmp_path / "uv.lock", locked)
    snapshot = snapshot_file(tmp_path / "snapshot.json", advisories, sorted(known or locked))
    accepted = tmp_path / "allowlist.toml"
    accepted.write_text(allowlist)
    cmd = [sys.executable, "-m", "deploy.audit.check", "--lock", lock, "--snapshot", snapshot, "--allowlist", accepted]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_affected_version_with_a_fix_fails_naming_package_version_advisory_and_fix(tmp_path):
    done = audit(tmp_path, {"fixme": "1.9.9", "multi": "2.2"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL fixme 1.9.9: TEST-1 (CVE-2099-1): fixed in 2.0.0" in done.stdout
    # The fix of the interval the locked version is in, not the older branch's.
    assert "FAIL multi 2.2: TEST-2: fixed in 2.3" in done.stdout
    assert "result: 2 to upgrade, 0 without a fix, 0 accepted" in done.stdout


def test_fixed_versions_pass(tmp_path):
    done = audit(tmp_path, {"fixme": "2.0.0", "multi": "1.2", "lastaff": "1.4.1", "listed": "1.0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "warning" not in done.stdout
    assert "4 versions of 4 packages" in done.stdout
    assert "test/advisories@0123456789ab (2026-07-23" in done.stdout


@pytest.mark.parametrize(
    ("package", "version", "verdict"),
    [
        ("multi", "0.9", "clean"),  # below the first "introduced"
        ("multi", "1.0", "FAIL multi 1.0: TEST-2: fixed in 1.2"),  # "introduced" is included
        ("multi", "1.2", "clean"),  # "fixed" is excluded
        ("multi", "1.5", "clean"),  # between two intervals
        ("multi", "2.3a1", "FAIL multi 2.3a1: TEST-2: fixed in 2.3"),  # a pre-release of the fix is before it
        ("fixme", "0a1", "FAIL fixme 0a1: TEST-1"),  # "introduced 0": from the first release, before "0" itself
        ("lastaff", "1.4", "warning: affected, no fix released yet: lastaff 1.4: TEST-3: no fixed release"),
        ("lastaff", "1.4.post1", "clean"),  # after "last_affected"
        ("listed", "1.0rc1", "warning: affected, no fix released yet: listed 1.0rc1: TEST-4"),  # the versions list
        ("gone", "1.0", "clean"),  # a withdrawn advisory
        ("open", "7.1", "warning: affected, no fix released yet: open 7.1: TEST-6"),  # never closed
    ],
)
def test_range_edges(tmp_path, package, version, verdict):
    done = audit(tmp_path, {package: version})
    assert done.returncode == (1 if verdict.startswith("FAIL") else 0), done.stdout + done.stderr
    if verdict == "clean":
        assert "result: 0 to upgrade, 0 without a fix, 0 accepted" in done.stdout
    else:
        assert verdict in done.stdout


def test_names_match_in_any_spelling(tmp_path):
    renamed = [advisory("TEST-7", "Some_Package", _range(("introduced", "0"), ("fixed", "1.1")))]
    done = audit(tmp_path, {"some-package": "1.0"}, advisories=renamed)
    assert done.returncode == 1 and "FAIL some-package 1.0: TEST-7: fixed in 1.1" in done.stdout


def test_allowlisted_advisory_is_listed_with_its_reason_and_passes(tmp_path):
    allow = '[[accepted]]\nid = "CVE-2099-1"\nreason = "to be upgraded, issue 19"\n'
    allow += '[[accepted]]\nid = "TEST-99"\nreason = "an old one"\n'
    done = audit(tmp_path, {"fixme": "1.0", "multi": "1.1"}, allowlist=allow)
    assert done.returncode == 1  # multi is not accepted
    assert "accepted (to be upgraded, issue 19): fixme 1.0: TEST-1 (CVE-2099-1): fixed in 2.0.0" in done.stdout
    assert "note: allowlist entry TEST-99 matches nothing in the lock: remove it" in done.stdout
    done = audit(tmp_path, {"fixme": "1.0"}, allowlist=allow)
    assert done.returncode == 0 and "result: 0 to upgrade, 0 without a fix, 1 accepted" in done.stdout


def test_allowlist_entry_without_a_reason_is_refused(tmp_path):
    done = audit(tmp_path, {"fixme": "1.0"}, allowlist='[[accepted]]\nid = "TEST-1"\n')
    assert done.returncode == 2 and "needs an id and a reason" in done.stderr


def test_locked_package_the_snapshot_was_not_filtered_for_is_a_warning(tmp_path):
    done = audit(tmp_path, {"fixme": "2.0.0", "newcomer": "1.0"}, known=["fixme"])
    assert done.returncode == 0
    assert "warning: not in the snapshot, refresh it (deploy.audit.snapshot): newcomer" in done.stdout


def test_unreadable_range_is_a_warning_to_check_by_hand(tmp_path):
    odd = [advisory("TEST-8", "odd", _range(("introduced", "0"), ("fixed", "2019-09-12")))]
    done = audit(tmp_path, {"odd": "1.0"}, advisories=odd)
    assert done.returncode == 0
    assert "warning: cannot compare, check by hand: odd 1.0: TEST-8: '2019-09-12' is not a PEP 440" in done.stdout


def test_snapshot_from_a_clone_keeps_what_concerns_the_lock_with_its_provenance(tmp_path):
    clone = tmp_path / "advisory-database"
    (clone / "vulns" / "fixme").mkdir(parents=True)
    (clone / "vulns" / "other").mkdir()
    record = advisory(
        "TEST-1", "fixme", _range(("introduced", "1.0"), ("fixed", "2.0")), versions=("1.0", "1.5", "0.1-odd")
    )
    record["affected"][0]["ranges"].append({"type": "GIT", "repo": "https://example.invalid", "events": []})
    record["affected"].append(advisory("x", "other", _range(("introduced", "0")))["affected"][0])
    record["details"] = "word " * 100
    del record["summary"]
    (clone / "vulns" / "fixme" / "TEST-1.json").write_text(json.dumps(record))
    (clone / "vulns" / "other" / "TEST-9.yaml").write_text(
        "id: TEST-9\naffected:\n- package: {ecosystem: PyPI, name: other}\n"
    )
    withdrawn = advisory("TEST-5", "fixme", _range(("introduced", "0")), withdrawn="2024-01-01T00:00:00Z")
    (clone / "vulns" / "fixme" / "TEST-5.yaml").write_text(json.dumps(withdrawn))  # JSON is YAML too
    git = ["git", "-C", clone, "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "advisories"], check=True)
    commit = subprocess.run([*git[:3], "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    lock = lock_file(tmp_path / "uv.lock", {"fixme": "1.5", "bystander": "3.0"})
    out = tmp_path / "snapshot.json"
    cmd = [sys.executable, "-m", "deploy.audit.snapshot", "--from", clone, "--lock", lock, "--out", out]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(out.read_text())
    assert snapshot["source"]["repository"] == "pypa/advisory-database"
    assert snapshot["source"]["commit"] == commit and snapshot["source"]["date"]
    assert snapshot["packages"] == ["bystander", "fixme"]
    [kept] = snapshot["advisories"]  # TEST-9 names no locked package, TEST-5 is withdrawn
    assert kept["id"] == "TEST-1" and kept["summary"].startswith("word word") and len(kept["summary"]) == 200
    [entry] = kept["affected"]  # only the locked package's entry, only its ECOSYSTEM range,
    assert entry["ranges"] == [_range(("introduced", "1.0"), ("fixed", "2.0"))]
    assert entry["versions"] == ["0.1-odd"]  # and only the listed versions the range does not cover

    check = [sys.executable, "-m", "deploy.audit.check", "--lock", lock, "--snapshot", out]
    done = subprocess.run([*check, "--allowlist", tmp_path / "none.toml"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "FAIL fixme 1.5: TEST-1: fixed in 2.0" in done.stdout


def test_snapshot_from_an_osv_zip_needs_its_date_and_names_its_source(tmp_path):
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        archive.writestr("TEST-1.json", json.dumps(ADVISORIES[0]))
        archive.writestr("TEST-2.json", json.dumps(ADVISORIES[1]))
    lock = lock_file(tmp_path / "uv.lock", {"fixme": "2.0.0"})
    cmd = [sys.executable, "-m", "deploy.audit.snapshot", "--from", tmp_path / "all.zip", "--lock", lock]
    cmd += ["--out", tmp_path / "snapshot.json"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "give --date" in done.stderr
    cmd += ["--repository", "osv.dev PyPI all.zip", "--date", "2026-12-01"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    snapshot = json.loads((tmp_path / "snapshot.json").read_text())
    assert snapshot["source"] == {"repository": "osv.dev PyPI all.zip", "commit": None, "date": "2026-12-01"}
    assert [a["id"] for a in snapshot["advisories"]] == ["TEST-1"]
