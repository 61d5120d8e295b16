"""Third-party connector plugins through the `huiliu.plugins` entry-point group: a distribution
installed on the path (its dist-info with entry_points.txt, found by importlib.metadata as pip
would leave it) adds a source that connector documents can name, without editing the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent(
    """
    from pydantic import BaseModel, ConfigDict

    from connectors.base import SourceTask
    from connectors.plugins import source_plugin


    class CounterConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        system: str
        table: str = "numbers"
        upto: int = 3


    @source_plugin("example.counter", config_model=CounterConfig, description="counts to upto")
    class CounterTask(SourceTask):
        def __init__(self, config):
            self.config = config
    """
)

BROKEN = "raise RuntimeError('this plugin is broken')\n"


def install(site: Path) -> None:
    """What pip leaves for a distribution `huiliu-example` declaring two entry points."""
    (site / "huiliu_example_plugin.py").write_text(PLUGIN)
    (site / "huiliu_broken_plugin.py").write_text(BROKEN)
    info = site / "huiliu_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: huiliu-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[huiliu.plugins]\nexample.counter = huiliu_example_plugin\nexample.broken = huiliu_broken_plugin\n"
    )


@pytest.mark.slow  # builds and installs a distribution into a scratch venv
def test_an_installed_distribution_adds_a_plugin_and_a_broken_one_is_reported(tmp_path):
    install(tmp_path)
    script = textwrap.dedent(
        """
        import json
        from connectors import plugins
        from connectors.document import parse
        spec, errors = parse("counting", {"connector.class": "example.counter", "system": "demo", "upto": 5})
        bad, bad_errors = parse("counting", {"connector.class": "example.counter", "system": "demo", "nope": 1})
        print(json.dumps({
            "kind": plugins.get("example.counter").kind,
            "upto": spec.plugin_config.upto if spec else None,
            "errors": [e.field for e in bad_errors],
            "unavailable": plugins.unavailable(),
            "listed": [p.name for p in plugins.available()],
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["kind"] == "source" and got["upto"] == 5 and got["errors"] == ["nope"]
    assert "example.counter" in got["listed"]
    assert "this plugin is broken" in got["unavailable"]["example.broken"]
