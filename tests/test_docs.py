"""The READMEs name modules and files that exist: a rename that forgets the docs turns this red."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOPS = ("api", "connectors", "deploy", "quality_stream", "schemas", "sinks", "streams", "tests")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FILE_PATH = re.compile(rf"^(?:{'|'.join(TOPS)})/[\w./*-]*$")
DOTTED = re.compile(rf"^(?:{'|'.join(TOPS)})(?:\.\w+)+$")


def readmes() -> list[Path]:
    tracked = [REPO / "README.md", *sorted(REPO.glob("*/README.md")), *sorted(REPO.glob("*/*/README.md"))]
    return [p for p in tracked if ".venv" not in p.parts and p.exists()]


def dotted_exists(name: str) -> bool:
    """`a.b.c` names a module or package, or an attribute defined in one (`a.b.func`)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if not base.is_dir() else base / "__init__.py"
        if module.exists():
            rest = parts[cut:]
            return not rest or re.search(rf"\b{re.escape(rest[0])}\b", module.read_text()) is not None
    return False


def referenced(readme: Path) -> list[str]:
    found = []
    for span in CODE_SPAN.findall(readme.read_text()):
        token = span.split()[0].rstrip(",:;)") if span.split() else ""
        if token.rsplit("/", 1)[-1].startswith("."):
            continue  # a file the operator makes (e.g. deploy/production/.env, not committed)
        if FILE_PATH.match(token) or DOTTED.match(token):
            found.append(token)
    return found


def test_every_module_path_a_readme_names_exists():
    missing = []
    for readme in readmes():
        for token in referenced(readme):
            if "/" in token:
                path = token.rstrip("/")
                ok = any(REPO.glob(path)) if "*" in path else (REPO / path).exists()
            else:
                ok = dotted_exists(token)
            if not ok:
                missing.append(f"{readme.relative_to(REPO)}: {token}")
    assert missing == []


def test_the_check_sees_references():
    assert len([t for r in readmes() for t in referenced(r)]) > 50
