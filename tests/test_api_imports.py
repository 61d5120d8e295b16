"""The API process starts without polars, pyarrow, numpy or pandas (issue 17: its idle memory, and so
the peak of a 5M-row download, under 300 MB; they were ~100 MB of it). Its routes import the modules
that need them where they run. Built in a fresh process as `huiliu api` builds it (the CLI module, its
callback, the control DB's migration, create_app), only not served; a runner's processor, imported
in the same process afterwards, still loads them at its own start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("polars", "pyarrow", "numpy", "pandas")
ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import json, sys
import uvicorn

built = []
uvicorn.run = lambda app, **options: built.append(app)  # `huiliu api` up to serving, not serving
from api.cli import app
app(["api"], standalone_mode=False)
loaded = {{name: name in sys.modules for name in {heavy!r}}}
import streams.processor  # a runner's hot path: its heavy imports stay at its own start
runner = {{name: name in sys.modules for name in {heavy!r}}}
print(json.dumps({{"paths": len(built[0].openapi()["paths"]), "api": loaded, "runner": runner}}))
"""


def test_api_builds_without_polars_pyarrow_numpy_or_pandas(tmp_path):
    env = {**os.environ, "HUILIU_STATE_DIR": str(tmp_path / "state"), "HUILIU_API_WORKERS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", BUILD.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["paths"] > 100  # the whole app was built
    assert result["api"] == {name: False for name in HEAVY}, "imported at API start: move the import to its use"
    assert result["runner"] == {"polars": True, "pyarrow": True, "numpy": True, "pandas": False}
